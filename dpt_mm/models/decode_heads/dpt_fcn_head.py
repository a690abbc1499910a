"""mmseg's FCN head with the chunked cross-entropy."""
from mmseg.models.decode_heads import FCNHead
from mmseg.registry import MODELS
from .fused_loss import ChunkedLossMixin

__all__ = ['DPTFCNHead']


@MODELS.register_module()
class DPTFCNHead(ChunkedLossMixin, FCNHead):
    """mmseg's ``FCNHead`` whose loss never holds full-resolution logits.

    The same layers, parameters and state-dict keys as ``FCNHead`` (its
    checkpoints load unchanged) and the same losses and gradients; only
    ``loss_by_feat`` goes through :class:`ChunkedLossMixin`. The auxiliary
    head of the DPT segmentation configs: its 1/2- or 1/4-resolution logits
    would otherwise be resized to full resolution for the loss.

    Args:
        chunked_loss (bool): See :class:`ChunkedLossMixin` (default True).
        **kwargs: ``FCNHead`` arguments.
    """

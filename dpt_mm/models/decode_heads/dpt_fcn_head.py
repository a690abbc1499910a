"""mmseg's FCN head with the chunked cross-entropy and optional checkpointing.
"""
from typing import Sequence

from torch import Tensor

from mmseg.models.decode_heads import FCNHead
from mmseg.registry import MODELS
from ..layers import checkpoint_if, conv_classifier
from .fused_loss import ChunkedLossMixin

__all__ = ['DPTFCNHead']


@MODELS.register_module()
class DPTFCNHead(ChunkedLossMixin, FCNHead):
    """mmseg's ``FCNHead`` whose loss never holds full-resolution logits.

    The same layers, parameters and state-dict keys as ``FCNHead`` (its
    checkpoints load unchanged) and the same outputs, losses and gradients;
    ``loss_by_feat`` goes through :class:`ChunkedLossMixin`. The auxiliary
    head of the DPT segmentation configs: its 1/2- or 1/4-resolution logits
    would otherwise be resized to full resolution for the loss.

    Args:
        with_cp (bool): Gradient checkpointing of the whole head in
            training: its convolutions' activations are recomputed in
            backward. With one conv and no ``concat_input`` (the DPT
            configs) through
            :func:`~dpt_mm.models.layers.checkpoint_conv_classifier`,
            which keeps only the input map and moves BatchNorm's running
            statistics once per step. Defaults to False.
        chunked_loss (bool): See :class:`ChunkedLossMixin` (default True).
        conv_cfg (dict, optional): The convs' type; by default ``DPTConv2d``
            (:class:`~dpt_mm.models.layers.Conv2d`, whose CPU weight
            gradient is faster), ``dict(type='Conv2d')`` for ``nn.Conv2d``.
        **kwargs: ``FCNHead`` arguments.
    """

    def __init__(self, *args, with_cp: bool = False, **kwargs) -> None:
        kwargs['conv_cfg'] = kwargs.get('conv_cfg') or dict(type='DPTConv2d')
        super().__init__(*args, **kwargs)
        self.with_cp = with_cp

    def forward(self, inputs: Sequence[Tensor]) -> Tensor:
        """Args: inputs (Sequence[Tensor]): Neck outputs.

        Returns:
            Tensor: B×num_classes×h×w logits.
        """
        with_cp = self.with_cp and self.training
        if self.num_convs == 1 and not self.concat_input:
            return conv_classifier(self.convs[0], self.dropout,
                                   self.conv_seg,
                                   self._transform_inputs(inputs), with_cp)
        return checkpoint_if(with_cp, super().forward, inputs, norms=self)

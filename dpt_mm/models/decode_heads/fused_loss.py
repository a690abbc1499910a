"""Decode-head mixin: mmseg's resize + cross-entropy without full-res logits.

:class:`ChunkedLossMixin` goes before an mmseg decode head in the bases
(``class Head(ChunkedLossMixin, FCNHead)``). Its ``loss_by_feat`` gives the
loss dict of :meth:`BaseDecodeHead.loss_by_feat` (same keys, same values and
gradients up to float rounding) through
:func:`~dpt_mm.models.losses.resize_cross_entropy`, whenever that is exact:
no pixel sampler and only softmax ``CrossEntropyLoss`` terms with mean
reduction. Any other set-up goes to mmseg's own ``loss_by_feat`` unchanged.
"""
from typing import Dict, List, Optional

import torch.nn as nn
from torch import Tensor

from mmseg.models.losses import CrossEntropyLoss
from mmseg.utils import SampleList
from ..losses import resize_cross_entropy

__all__ = ['ChunkedLossMixin']


class ChunkedLossMixin:
    """Chunked resize + cross-entropy + accuracy for an mmseg decode head.

    Saves the B×C×H×W logits at the label size, ``log_softmax``'s output
    and their gradients (each B·C·H·W floats) from the training peak, for
    one more resize and softmax of the logits in backward.

    Args:
        *args: The decode head's positional arguments.
        chunked_loss (bool): Use the chunked loss when it is exact. False
            gives mmseg's ``loss_by_feat`` always (for comparisons).
            Defaults to True.
        **kwargs: The decode head's other arguments.
    """

    def __init__(self, *args, chunked_loss: bool = True, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.chunked_loss = chunked_loss

    def chunked_ce_losses(self) -> Optional[List[CrossEntropyLoss]]:
        """The loss terms, if the chunked loss computes them exactly.

        Returns:
            list[CrossEntropyLoss] | None: ``self.loss_decode`` as a list
            when ``chunked_loss`` is on, there is no sampler and every term
            is exactly mmseg's softmax ``CrossEntropyLoss`` (a subclass may
            change ``forward``) with ``reduction='mean'``; None otherwise.
        """
        if not self.chunked_loss or self.sampler is not None:
            return None
        losses = (list(self.loss_decode) if isinstance(
            self.loss_decode, nn.ModuleList) else [self.loss_decode])
        for loss in losses:
            if (type(loss) is not CrossEntropyLoss or loss.use_sigmoid
                    or loss.use_mask or loss.reduction != 'mean'):
                return None
        return losses

    def chunked_loss_by_feat(self, seg_logits: Tensor, seg_label: Tensor,
                             losses: List[CrossEntropyLoss],
                             align_corners: bool) -> Dict[str, Tensor]:
        """mmseg's loss dict from low-resolution logits.

        Args:
            seg_logits (Tensor): B×C×h×w logits.
            seg_label (Tensor): B×H×W labels.
            losses (list[CrossEntropyLoss]): From :meth:`chunked_ce_losses`.
            align_corners (bool): Mode of the bilinear resize to H×W.

        Returns:
            dict[str, Tensor]: Each ``loss_name`` (terms with one name
            summed) and ``acc_seg``, in mmseg's order.
        """
        loss: Dict[str, Tensor] = {}
        acc = None
        for loss_decode in losses:
            value, acc = resize_cross_entropy(
                seg_logits, seg_label, align_corners=align_corners,
                class_weight=loss_decode.class_weight,
                ignore_index=self.ignore_index,
                avg_non_ignore=loss_decode.avg_non_ignore,
                loss_weight=loss_decode.loss_weight)
            name = loss_decode.loss_name
            loss[name] = loss[name] + value if name in loss else value
        loss['acc_seg'] = acc
        return loss

    def loss_by_feat(self, seg_logits: Tensor,
                     batch_data_samples: SampleList) -> Dict[str, Tensor]:
        """mmseg's ``loss_by_feat``, chunked when that is exact.

        Args:
            seg_logits (Tensor): B×C×h×w output of ``forward``.
            batch_data_samples (list[SegDataSample]): With ``gt_sem_seg``.

        Returns:
            dict[str, Tensor]: mmseg's loss dict.
        """
        losses = self.chunked_ce_losses()
        if losses is None:
            return super().loss_by_feat(seg_logits, batch_data_samples)
        seg_label = self._stack_batch_gt(batch_data_samples).squeeze(1)
        return self.chunked_loss_by_feat(seg_logits, seg_label, losses,
                                         self.align_corners)

"""Decode-head mixin: mmseg's resize + cross-entropy without label-size
logits held.

:class:`ChunkedLossMixin` goes before an mmseg decode head in the bases
(``class Head(ChunkedLossMixin, BaseDecodeHead)``). Its ``loss_by_feat``
gives the loss dict of :meth:`BaseDecodeHead.loss_by_feat` (same keys, same
values and gradients up to float rounding) through
:func:`~dpt_mm.models.losses.resize_cross_entropy`, whenever that is exact:
no pixel sampler and only softmax ``CrossEntropyLoss`` terms with mean
reduction. Any other set-up goes to mmseg's own ``loss_by_feat`` unchanged.
"""
from typing import Dict, List, Optional

import torch
import torch.nn as nn
from torch import Tensor

from mmseg.models.losses import CrossEntropyLoss
from mmseg.utils import SampleList
from ..losses import resize_cross_entropy

__all__ = ['ChunkedLossMixin']


class ChunkedLossMixin:
    """Chunked resize + cross-entropy + accuracy for an mmseg decode head.

    ``loss_by_feat`` is the one method overridden: mmseg's resizes the
    logits to the label size and hands them whole to each loss term, which
    is exactly the B×C×H×W tensor (with ``log_softmax``'s output and both
    gradients) this mixin avoids holding; a registered loss cannot, as it
    only ever sees the resized logits.

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

    def check_labels(self, seg_label: Tensor,
                     batch_data_samples: SampleList) -> None:
        """Raise, naming the annotation file, on a label out of range.

        A label outside ``[0, num_classes)`` that is not the ignore index
        would crash deep inside the loss (a device assert on CUDA) without
        saying where it came from. One host synchronisation per batch.

        Args:
            seg_label (Tensor): B×H×W stacked labels.
            batch_data_samples (list[SegDataSample]): Their samples.
        """
        bad = ((seg_label < 0) | (seg_label >= self.num_classes)) & (
            seg_label != self.ignore_index)
        if not bool(bad.any()):
            return
        for labels, sample_bad, sample in zip(seg_label, bad,
                                              batch_data_samples):
            if not bool(sample_bad.any()):
                continue
            values = torch.unique(labels[sample_bad]).tolist()
            source = sample.metainfo.get(
                'seg_map_path', sample.metainfo.get('img_path', '?'))
            raise ValueError(
                f'{source}: label values {values[:10]} are outside '
                f'[0, {self.num_classes}) and not the ignore index '
                f'{self.ignore_index} (check num_classes, '
                'reduce_zero_label and the annotation file; '
                'tools/misc/check_dataset.py lists every such file)')

    def loss_by_feat(self, seg_logits: Tensor,
                     batch_data_samples: SampleList) -> Dict[str, Tensor]:
        """mmseg's ``loss_by_feat``, chunked when that is exact.

        Args:
            seg_logits (Tensor): B×C×h×w output of ``forward``.
            batch_data_samples (list[SegDataSample]): With ``gt_sem_seg``.

        Returns:
            dict[str, Tensor]: Each ``loss_name`` (terms with one name
            summed) and ``acc_seg``, in mmseg's order.
        """
        seg_label = self._stack_batch_gt(batch_data_samples).squeeze(1)
        self.check_labels(seg_label, batch_data_samples)
        losses = self.chunked_ce_losses()
        if losses is None:
            return super().loss_by_feat(seg_logits, batch_data_samples)
        loss: Dict[str, Tensor] = {}
        acc = None
        for loss_decode in losses:
            value, acc = resize_cross_entropy(
                seg_logits, seg_label, align_corners=self.align_corners,
                class_weight=loss_decode.class_weight,
                ignore_index=self.ignore_index,
                avg_non_ignore=loss_decode.avg_non_ignore,
                loss_weight=loss_decode.loss_weight)
            name = loss_decode.loss_name
            loss[name] = loss[name] + value if name in loss else value
        loss['acc_seg'] = acc
        return loss

"""Decode-head mixin: mmseg's resize + cross-entropy without label-size
logits held.

:class:`ChunkedLossMixin` goes before an mmseg decode head in the bases
(``class Head(ChunkedLossMixin, BaseDecodeHead)``). Its ``loss_by_feat``
gives the loss dict of :meth:`BaseDecodeHead.loss_by_feat` (same keys, same
values and gradients up to float rounding) through
:func:`~dpt_mm.models.losses.resize_cross_entropy`, whenever that is exact:
no pixel sampler and only softmax ``CrossEntropyLoss`` terms with mean
reduction. Any other set-up goes to mmseg's own ``loss_by_feat`` unchanged.
Heads that are not this mixin (mmseg's ``FCNHead`` as the auxiliary head)
get the same loss from :func:`head_loss`, which the segmentors call.
"""
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn as nn
from torch import Tensor

from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.models.losses import CrossEntropyLoss
from mmseg.utils import ConfigType, SampleList
from ..losses import resize_cross_entropy_of

__all__ = ['ChunkedLossMixin', 'check_labels', 'chunked_ce_losses',
           'chunked_loss_by_feat', 'head_loss']


def chunked_ce_losses(
        head: BaseDecodeHead,
        enabled: bool = True) -> Optional[List[CrossEntropyLoss]]:
    """A head's loss terms, if the chunked loss computes them exactly.

    Args:
        head (BaseDecodeHead): Any mmseg decode head.
        enabled (bool): False gives None (mmseg's loss always).

    Returns:
        list[CrossEntropyLoss] | None: ``head.loss_decode`` as a list when
        there is no sampler and every term is exactly mmseg's softmax
        ``CrossEntropyLoss`` (a subclass may change ``forward``) with
        ``reduction='mean'`` (a subclass that keeps mmseg's ``forward``,
        such as the accelerator's, counts as it); None otherwise.
    """
    if not enabled or head.sampler is not None:
        return None
    losses = (list(head.loss_decode) if isinstance(
        head.loss_decode, nn.ModuleList) else [head.loss_decode])
    for loss in losses:
        # A subclass may change forward; the accelerator's only adds a
        # resize_cross_entropy method.
        if (not isinstance(loss, CrossEntropyLoss)
                or type(loss).forward is not CrossEntropyLoss.forward
                or loss.use_sigmoid or loss.use_mask
                or loss.reduction != 'mean'):
            return None
    return losses


def check_labels(head: BaseDecodeHead, seg_label: Tensor,
                 batch_data_samples: SampleList) -> None:
    """Raise, naming the annotation file, on a label out of range.

    A label outside ``[0, num_classes)`` that is not the ignore index
    would crash deep inside the loss (a device assert on CUDA) without
    saying where it came from. One host synchronisation per batch.

    Args:
        head (BaseDecodeHead): The head whose classes the labels index.
        seg_label (Tensor): B×H×W stacked labels.
        batch_data_samples (list[SegDataSample]): Their samples.
    """
    bad = ((seg_label < 0) | (seg_label >= head.num_classes)) & (
        seg_label != head.ignore_index)
    if not bool(bad.any()):
        return
    for labels, sample_bad, sample in zip(seg_label, bad, batch_data_samples):
        if not bool(sample_bad.any()):
            continue
        values = torch.unique(labels[sample_bad]).tolist()
        source = sample.metainfo.get('seg_map_path',
                                     sample.metainfo.get('img_path', '?'))
        raise ValueError(
            f'{source}: label values {values[:10]} are outside '
            f'[0, {head.num_classes}) and not the ignore index '
            f'{head.ignore_index} (check num_classes, '
            'reduce_zero_label and the annotation file; '
            'tools/misc/check_dataset.py lists every such file)')


def chunked_loss_by_feat(
        head: BaseDecodeHead,
        seg_logits: Tensor,
        batch_data_samples: SampleList,
        enabled: bool = True,
        align_corners: Optional[bool] = None) -> Optional[Dict[str, Tensor]]:
    """mmseg's ``head.loss_by_feat``, chunked, or None where not exact.

    Args:
        head (BaseDecodeHead): Any mmseg decode head (its ``loss_decode``,
            ``ignore_index``, ``align_corners`` and ``num_classes``).
        seg_logits (Tensor): B×C×h×w output of ``head.forward``.
        batch_data_samples (list[SegDataSample]): With ``gt_sem_seg``.
        enabled (bool): False gives None.
        align_corners (bool, optional): The resize to the label size;
            default the head's (mmseg's ``loss_by_feat``).

    Returns:
        dict[str, Tensor] | None: Each ``loss_name`` (terms with one name
        summed) and ``acc_seg``, in mmseg's order; None when
        :func:`chunked_ce_losses` is None (call mmseg's then).
    """
    losses = chunked_ce_losses(head, enabled)
    if losses is None:
        return None
    seg_label = head._stack_batch_gt(batch_data_samples).squeeze(1)
    check_labels(head, seg_label, batch_data_samples)
    loss: Dict[str, Tensor] = {}
    acc = None
    for loss_decode in losses:
        # The accelerator's loss terms bring their own kernel.
        value, acc = resize_cross_entropy_of(loss_decode)(
            seg_logits, seg_label,
            align_corners=head.align_corners if align_corners is None
            else align_corners,
            class_weight=loss_decode.class_weight,
            ignore_index=head.ignore_index,
            avg_non_ignore=loss_decode.avg_non_ignore,
            loss_weight=loss_decode.loss_weight)
        name = loss_decode.loss_name
        loss[name] = loss[name] + value if name in loss else value
    loss['acc_seg'] = acc
    return loss


def head_loss(head: BaseDecodeHead, inputs: Sequence[Tensor],
              batch_data_samples: SampleList, train_cfg: ConfigType,
              enabled: bool = True) -> Dict[str, Tensor]:
    """``head.loss(...)`` with the chunked loss wherever it is exact.

    For heads that are not a :class:`ChunkedLossMixin`, such as mmseg's
    ``FCNHead`` as the auxiliary head: the segmentor calls this instead of
    ``head.loss``.

    Args:
        head (BaseDecodeHead): Any mmseg decode head.
        inputs (Sequence[Tensor]): Neck outputs.
        batch_data_samples (list[SegDataSample]): With ``gt_sem_seg``.
        train_cfg (dict): The segmentor's training config.
        enabled (bool): False gives ``head.loss`` always.

    Returns:
        dict[str, Tensor]: The head's loss dict.
    """
    if isinstance(head, ChunkedLossMixin) or chunked_ce_losses(
            head, enabled) is None:
        return head.loss(inputs, batch_data_samples, train_cfg)
    return chunked_loss_by_feat(head, head.forward(inputs),
                                batch_data_samples)


class ChunkedLossMixin:
    """Chunked resize + cross-entropy + accuracy for an mmseg decode head.

    ``loss_by_feat`` is overridden: mmseg's resizes the logits to the
    label size and hands them whole to each loss term, which is exactly
    the B×C×H×W tensor (with ``log_softmax``'s output and both gradients)
    this mixin avoids holding; a registered loss cannot, as it only ever
    sees the resized logits.

    So is ``loss``, for a head whose ``forward`` is
    ``self.upsample(self.logits(inputs))`` with a bilinear ``nn.Upsample``
    (DPT's seg head ends in a ×2 upsample): when that upsample gives the
    label size, mmseg's resize after it is the identity, and the loss takes
    ``self.logits(inputs)`` and does the upsample band by band itself. The
    same numbers, without the label-size logits of ``forward``.

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
        """See :func:`chunked_ce_losses` (with ``chunked_loss``)."""
        return chunked_ce_losses(self, self.chunked_loss)

    def loss(self, inputs: Sequence[Tensor], batch_data_samples: SampleList,
             train_cfg: ConfigType) -> Dict[str, Tensor]:
        """mmseg's ``loss``; a final upsample folded into the chunked loss
        where that is exact (see the class notes).

        Args:
            inputs (Sequence[Tensor]): Neck outputs.
            batch_data_samples (list[SegDataSample]): With ``gt_sem_seg``.
            train_cfg (dict): The segmentor's training config.

        Returns:
            dict[str, Tensor]: See :func:`chunked_loss_by_feat`.
        """
        upsample = getattr(self, 'upsample', None)
        if (isinstance(upsample, nn.Upsample) and upsample.mode == 'bilinear'
                and upsample.size is None and batch_data_samples
                and self.chunked_ce_losses() is not None):
            logits = self.logits(inputs)
            label_size = tuple(batch_data_samples[0].gt_sem_seg.shape)
            scale = upsample.scale_factor
            scale = scale if isinstance(scale, tuple) else (scale, scale)
            if label_size == tuple(int(n * f) for n, f in zip(
                    logits.shape[2:], scale)):
                return chunked_loss_by_feat(
                    self, logits, batch_data_samples,
                    align_corners=bool(upsample.align_corners))
            return self.loss_by_feat(upsample(logits), batch_data_samples)
        return super().loss(inputs, batch_data_samples, train_cfg)

    def loss_by_feat(self, seg_logits: Tensor,
                     batch_data_samples: SampleList) -> Dict[str, Tensor]:
        """mmseg's ``loss_by_feat``, chunked when that is exact.

        Args:
            seg_logits (Tensor): B×C×h×w output of ``forward``.
            batch_data_samples (list[SegDataSample]): With ``gt_sem_seg``.

        Returns:
            dict[str, Tensor]: See :func:`chunked_loss_by_feat`.
        """
        loss = chunked_loss_by_feat(self, seg_logits, batch_data_samples,
                                    self.chunked_loss)
        if loss is None:
            seg_label = self._stack_batch_gt(batch_data_samples).squeeze(1)
            check_labels(self, seg_label, batch_data_samples)
            loss = super().loss_by_feat(seg_logits, batch_data_samples)
        return loss

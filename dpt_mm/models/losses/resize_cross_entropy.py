"""Cross-entropy of bilinearly resized logits, one band of rows at a time.

mmseg resizes a head's logits to the label size and then applies
``CrossEntropyLoss`` and ``accuracy``; the logits at the label size,
``log_softmax``'s saved output and their gradients dominate the training
peak of a segmentation model (B·C·H·W floats each: 315 MB for ADE20K at
batch 2, 512², 150 classes). :func:`resize_cross_entropy` computes the same
loss, accuracy and gradient holding one band of output rows at a time: each
band is a ``torch.utils.checkpoint`` segment (resize of the band's input
rows → cross-entropy → sums), so forward keeps only the logits and labels,
and backward recomputes one band after another. Plain PyTorch ops only: it
runs on any device, under autocast and under ``torch.compile``, with no
host synchronisation.
"""
import math
from contextlib import nullcontext
from typing import (Callable, ContextManager, NamedTuple, Optional,
                    Sequence, Tuple, Union)

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from torch import Tensor

__all__ = [
    'BandPlan', 'plan_bands', 'reduce_bands', 'resize_cross_entropy',
    'resize_cross_entropy_of'
]

# Default band: about this many bytes of float32 B×C×rows×W logits. The
# transients of one band (resized logits, log-softmax, their gradients) are
# a few times this.
CHUNK_BYTES = 16 * 2**20
# mmseg's weight_reduce_loss and accuracy add this to their denominators.
_EPS = torch.finfo(torch.float32).eps

ClassWeight = Optional[Union[Sequence[float], Tensor]]


def _no_autocast(device_type: str) -> ContextManager:
    """Autocast off on ``device_type`` (nothing to do where it has none)."""
    if not torch.amp.is_autocast_available(device_type):
        return nullcontext()
    return torch.autocast(device_type, enabled=False)


def _compute_dtype(resize_dtype: torch.dtype) -> torch.dtype:
    """The dtype the resize and the loss are computed in: float64 for
    double logits, float32 otherwise (ATen's resize rounds once)."""
    return torch.float64 if resize_dtype == torch.float64 else torch.float32


def _height_taps(in_size: int, out_size: int, align_corners: bool,
                 dtype: torch.dtype, device: torch.device) -> Tensor:
    """The bilinear resize in height as an out×in matrix.

    Computed by the resize itself, applied to the identity (one channel per
    input row), so its weights are ATen's on any device: row ``r`` holds
    λ0 and λ1 at the two input rows output row ``r`` reads, zeros elsewhere.
    """
    eye = torch.eye(in_size, dtype=dtype, device=device)[None, :, :, None]
    taps = F.interpolate(eye, size=(out_size, 1), mode='bilinear',
                         align_corners=align_corners)
    return taps[0, :, :, 0].t()


def _source_span(r0: int, r1: int, in_size: int, out_size: int,
                 align_corners: bool) -> Tuple[int, int]:
    """Input rows ``[a, b)`` holding every row that output rows
    ``[r0, r1)`` read, with one row of margin on each side for rounding
    (the extra rows meet zero taps)."""
    if in_size == out_size:
        return r0, r1
    if align_corners:
        scale = (in_size - 1) / (out_size - 1) if out_size > 1 else 0.0
        first, last = r0 * scale, (r1 - 1) * scale
    else:
        scale = in_size / out_size
        first = max((r0 + 0.5) * scale - 0.5, 0.0)
        last = max((r1 - 0.5) * scale - 0.5, 0.0)
    return (max(math.floor(first) - 1, 0),
            min(math.floor(last) + 3, in_size))


def _resize_rows(x: Tensor, taps: Optional[Tensor], width: int,
                align_corners: bool, resize_dtype: torch.dtype) -> Tensor:
    """One band of mmseg's bilinear resize to the label size.

    Args:
        x (Tensor): B×C×rows×w input rows of the band.
        taps (Tensor, optional): n×rows height taps of the band; None if
            the height is not resized.
        width (int): Output width W.
        align_corners (bool): Resize mode.
        resize_dtype (torch.dtype): The dtype mmseg's resize would return
            (the result is computed in float32 or float64 and rounded to
            it once, as ATen's kernel does).

    Returns:
        Tensor: B×C×n×W resized logits of the band.
    """
    compute = _compute_dtype(resize_dtype)
    with _no_autocast(x.device.type):
        x = x.to(compute)
        if x.shape[-1] != width:
            # Same height: ATen's height taps are then (row, λ=0), exact.
            x = F.interpolate(x, size=(x.shape[2], width), mode='bilinear',
                              align_corners=align_corners)
        if taps is not None:
            x = torch.matmul(taps.to(compute), x)
        return x.to(resize_dtype)


def _top1_correct(x: Tensor, label: Tensor, ignore_index: int) -> Tensor:
    """Pixels of a band whose label's logit is the maximum (mmseg's top-1
    accuracy numerator).

    Args:
        x (Tensor): B×C×n×W resized logits (not differentiated).
        label (Tensor): B×n×W labels.
        ignore_index (int): Label that never counts.

    Returns:
        Tensor: 0-dim long count.
    """
    x = x.detach()
    valid = label != ignore_index
    target = label.masked_fill(~valid, 0).unsqueeze(1)
    # amax is a vectorised reduction, argmax over C is not (20× slower on
    # CPU).
    top1 = (x.gather(1, target) >= x.amax(1, keepdim=True)).squeeze(1)
    return (top1 & valid).sum()


def _band(label: Tensor, taps: Optional[Tensor],
          class_weight: Optional[Tensor], offset: int, rows: int,
          width: int, align_corners: bool, ignore_index: int,
          resize_dtype: torch.dtype, *pieces: Tensor) -> Tuple[Tensor, Tensor]:
    """Summed NLL and correct-pixel count of one band of output rows.

    Args:
        label (Tensor): B×n×W labels of the band.
        taps (Tensor, optional): See :func:`_resize_rows`.
        class_weight (Tensor, optional): C class weights.
        offset (int): First input row of the band within ``pieces``.
        rows (int): Input rows the band reads.
        width (int): Output width W.
        align_corners (bool): Resize mode.
        ignore_index (int): Label without loss.
        resize_dtype (torch.dtype): See :func:`_resize_rows`.
        *pieces (Tensor): Consecutive B×C×·×w row pieces of the logits
            holding the band's input rows.

    Returns:
        tuple[Tensor, Tensor]: Float64 NLL sum and long count.
    """
    x = pieces[0] if len(pieces) == 1 else torch.cat(pieces, dim=2)
    x = _resize_rows(x[:, :, offset:offset + rows], taps, width,
                    align_corners, resize_dtype)
    # The cross-entropy under the caller's autocast, as mmseg's.
    weight = None if class_weight is None else class_weight.to(x.dtype)
    nll = F.cross_entropy(x, label, weight=weight, reduction='none',
                          ignore_index=ignore_index)
    # The accuracy saves nothing for backward (detached), so the backward's
    # recomputation stops after the cross-entropy (checkpoint early stop).
    return (nll.sum(dtype=torch.float64),
            _top1_correct(x, label, ignore_index))


def _check_inputs(logits: Tensor, label: Tensor,
                  class_weight: Optional[Tensor],
                  chunk_rows: Optional[int]) -> None:
    if logits.dim() != 4 or label.dim() != 3 or \
            label.shape[0] != logits.shape[0]:
        raise ValueError(
            'resize_cross_entropy expects B×C×h×w logits and B×H×W labels, '
            f'got logits {tuple(logits.shape)} and label '
            f'{tuple(label.shape)}')
    if not logits.is_floating_point():
        raise TypeError(f'logits must be floating point, got {logits.dtype}')
    if label.dtype != torch.long:
        raise TypeError('label must be torch.long (class indices), got '
                        f'{label.dtype}')
    if label.device != logits.device:
        raise ValueError(f'logits on {logits.device} but label on '
                         f'{label.device}')
    num_classes = logits.shape[1]
    if class_weight is not None and class_weight.shape != (num_classes, ):
        raise ValueError(
            f'class_weight has shape {tuple(class_weight.shape)}, expected '
            f'({num_classes},) for {num_classes}-class logits')
    if chunk_rows is not None and (isinstance(chunk_rows, bool) or
                                   not isinstance(chunk_rows, int) or
                                   chunk_rows < 1):
        raise ValueError(
            f'chunk_rows must be a positive int or None, got {chunk_rows!r}')


def _denominator(label: Tensor, class_weight: Optional[Tensor],
                 ignore_index: int, avg_non_ignore: bool) -> Tensor:
    """mmseg's ``avg_factor`` for ``reduction='mean'``, 0-dim float64."""
    valid = label != ignore_index
    if class_weight is None:
        if avg_non_ignore:
            return valid.sum(dtype=torch.float64)
        return torch.full((), label.numel(), dtype=torch.float64,
                          device=label.device)
    # mmseg indexes class_weight by every label, ignored ones too (then
    # zeroed if avg_non_ignore): an ignore index outside the classes makes
    # mmseg raise IndexError, so its weight is taken as 0 here.
    num_classes = class_weight.shape[0]
    in_range = (label >= 0) & (label < num_classes)
    weights = class_weight.double()[label.clamp(0, num_classes - 1)]
    weights = weights * (valid if avg_non_ignore else in_range)
    return weights.sum()


class BandPlan(NamedTuple):
    """How :func:`resize_cross_entropy` cuts a loss into bands.

    Attributes:
        resize_dtype (torch.dtype): The dtype of mmseg's resized logits.
        class_weight (Tensor, optional): C class weights in that dtype.
        taps (Tensor, optional): H×h height taps; None if the height is
            not resized.
        bands (tuple): Per band ``(r0, r1, a, b)``: output rows
            ``[r0, r1)`` read input rows ``[a, b)``.
    """
    resize_dtype: torch.dtype
    class_weight: Optional[Tensor]
    taps: Optional[Tensor]
    bands: Tuple[Tuple[int, int, int, int], ...]


def plan_bands(logits: Tensor, label: Tensor, align_corners: bool,
               class_weight: ClassWeight,
               chunk_rows: Optional[int]) -> BandPlan:
    """Check the inputs and cut the loss into bands of output rows.

    Args:
        logits (Tensor): B×C×h×w logits.
        label (Tensor): B×H×W labels.
        align_corners (bool): Resize mode.
        class_weight (Sequence[float] | Tensor, optional): C weights.
        chunk_rows (int, optional): Output rows per band; default about
            :data:`CHUNK_BYTES` of float32 logits per band.

    Returns:
        BandPlan: The resize dtype, class weights, taps and bands.
    """
    if logits.dim() != 4 or not logits.is_floating_point():
        _check_inputs(logits, label, None, chunk_rows)
    # The dtype mmseg's F.interpolate returns here: autocast runs it in
    # float32 on CUDA and in the input's dtype on CPU. A one-pixel resize
    # asks autocast itself instead of copying its op lists.
    resize_dtype = F.interpolate(
        logits[:1, :1, :1, :1].detach(), size=(1, 1), mode='bilinear',
        align_corners=align_corners).dtype
    if class_weight is not None:
        # mmseg: cls_score.new_tensor(class_weight), the resized logits'.
        class_weight = torch.as_tensor(class_weight).to(
            dtype=resize_dtype, device=logits.device).detach()
    _check_inputs(logits, label, class_weight, chunk_rows)
    batch, num_classes, height, _ = logits.shape
    out_h, out_w = label.shape[1:]
    taps = None
    if height != out_h:
        with _no_autocast(logits.device.type):
            taps = _height_taps(height, out_h, align_corners,
                                _compute_dtype(resize_dtype), logits.device)
    if chunk_rows is None:
        chunk_rows = max(1, CHUNK_BYTES // (batch * num_classes * out_w * 4))
    bands = tuple(
        (r0, r1, *_source_span(r0, r1, height, out_h, align_corners))
        for r0, r1 in ((r0, min(r0 + chunk_rows, out_h))
                       for r0 in range(0, out_h, chunk_rows)))
    return BandPlan(resize_dtype, class_weight, taps, bands)


def reduce_bands(nll: Tensor, correct: Tensor, label: Tensor,
                 plan: BandPlan, ignore_index: int, avg_non_ignore: bool,
                 loss_weight: float) -> Tuple[Tensor, Tensor]:
    """mmseg's mean loss and accuracy from the bands' sums.

    Args:
        nll (Tensor): Float64 sum of the (class-weighted) NLL.
        correct (Tensor): Long count of correct valid pixels.
        label (Tensor): B×H×W labels.
        plan (BandPlan): The plan the sums were computed by.
        ignore_index (int): Label without loss or accuracy.
        avg_non_ignore (bool): Average over valid pixels only.
        loss_weight (float): Factor on the loss.

    Returns:
        Tuple[Tensor, Tensor]: See :func:`resize_cross_entropy`.
    """
    denominator = _denominator(label, plan.class_weight, ignore_index,
                               avg_non_ignore)
    loss = loss_weight * nll / (denominator + _EPS)
    loss = loss.to(_compute_dtype(plan.resize_dtype))
    total = (label != ignore_index).sum()
    # mmseg's accuracy: (correct + eps) · 100 / (valid + eps), shape (1,).
    acc = (correct.float() + _EPS) * (100.0 / (total.float() + _EPS))
    return loss, acc.view(1)


def resize_cross_entropy(
        logits: Tensor,
        label: Tensor,
        *,
        align_corners: bool,
        class_weight: ClassWeight = None,
        ignore_index: int = 255,
        avg_non_ignore: bool = False,
        loss_weight: float = 1.0,
        chunk_rows: Optional[int] = None) -> Tuple[Tensor, Tensor]:
    """mmseg's resize → ``CrossEntropyLoss`` → ``accuracy``, band by band.

    Equal (up to float rounding of the sums) to::

        x = F.interpolate(logits, size=label.shape[1:], mode='bilinear',
                          align_corners=align_corners)
        loss = CrossEntropyLoss(loss_weight=loss_weight,
                                class_weight=class_weight,
                                avg_non_ignore=avg_non_ignore)(
            x, label, ignore_index=ignore_index)
        acc = accuracy(x, label, ignore_index=ignore_index)

    in float32 and under autocast alike (the resized logits get the dtype
    autocast gives ``F.interpolate`` on that device; the cross-entropy runs
    under the caller's autocast), and so is the gradient; no B×C×H×W
    tensor is ever held. As in mmseg, the loss is the sum of
    ``class_weight[y]·nll`` over valid pixels divided by ``avg_factor +
    eps``, where ``avg_factor`` is B·H·W (or the number of valid pixels
    with ``avg_non_ignore``), and with ``class_weight`` the sum of the
    weights of those pixels' labels; an all-ignored batch gives loss 0,
    gradient 0 and (mmseg's eps) accuracy 100. A pixel counts as correct
    when its label's logit equals the maximum; on an exact tie mmseg's
    ``topk`` picks one of the tied classes, which may not be the label.
    Labels are not range-checked here (that would synchronise with the
    device); the heads check them once per batch.

    Args:
        logits (Tensor): B×C×h×w logits.
        label (Tensor): B×H×W long class indices or ``ignore_index``.
        align_corners (bool): Resize mode, as in ``F.interpolate``.
        class_weight (Sequence[float] | Tensor, optional): C weights.
        ignore_index (int): Label without loss or accuracy. Defaults to 255.
        avg_non_ignore (bool): Average over valid pixels only. Defaults to
            False (mmseg's default: over all B·H·W pixels).
        loss_weight (float): Factor on the loss. Defaults to 1.0.
        chunk_rows (int, optional): Output rows per band; default about
            16 MB of float32 logits per band.

    Returns:
        Tuple[Tensor, Tensor]: The 0-dim loss (float32; float64 for double
        logits) and the accuracy in percent, shape (1,) as mmseg's.
    """
    plan = plan_bands(logits, label, align_corners, class_weight,
                      chunk_rows)
    height = logits.shape[2]
    out_w = label.shape[2]
    # Input rows cut where each band's span starts: a band reads its own
    # piece and, where spans overlap, the first rows of the next ones. The
    # split's backward assembles the logits' gradient once, where slicing
    # the whole tensor per band would write a full-size gradient per band.
    bounds = [0] + [a for _, _, a, _ in plan.bands[1:]] + [height]
    pieces = logits.split([b - a for a, b in zip(bounds, bounds[1:])], 2)
    nll = logits.new_zeros((), dtype=torch.float64)
    correct = label.new_zeros(())
    for k, (r0, r1, a, b) in enumerate(plan.bands):
        last = k
        while bounds[last + 1] < b:
            last += 1
        band_taps = None if plan.taps is None else plan.taps[r0:r1, a:b]
        band_nll, band_correct = cp.checkpoint(
            _band, label[:, r0:r1], band_taps, plan.class_weight,
            a - bounds[k], b - a, out_w, align_corners, ignore_index,
            plan.resize_dtype, *pieces[k:last + 1], use_reentrant=False)
        nll = nll + band_nll
        correct = correct + band_correct
    return reduce_bands(nll, correct, label, plan, ignore_index,
                        avg_non_ignore, loss_weight)


def resize_cross_entropy_of(loss: nn.Module) -> Callable[..., Tuple[Tensor,
                                                                Tensor]]:
    """The chunked loss a loss term computes with: its own
    ``resize_cross_entropy`` method (the accelerator's
    :class:`~dpt_mm.accel.FusedCrossEntropyLoss` has one), else
    :func:`resize_cross_entropy`.

    Args:
        loss (nn.Module): A ``CrossEntropyLoss`` term of a decode head.

    Returns:
        callable: With :func:`resize_cross_entropy`'s arguments and
        results.
    """
    return getattr(loss, 'resize_cross_entropy', resize_cross_entropy)

"""Shared math of the depth losses: validity masks, alignment, reductions.

The functions work on ``B×H×W`` tensors with a boolean validity mask of the
same shape. They follow the MiDaS loss code (the least-squares gist and the
median/MAD trimmed gist) except where a comment says otherwise. Invalid
pixels are removed with ``torch.where`` and never by multiplication, because
``0 * nan`` is ``nan`` and ``0 * inf`` is ``nan``, in the forward pass and in
the backward pass alike.
"""
from typing import Optional, Tuple

import torch
from torch import Tensor

__all__ = [
    'ALIGNMENTS', 'TARGET_SPACES', 'to_bhw', 'compute_valid_mask',
    'prepare_depth_inputs', 'inverse_depth', 'compute_scale_and_shift',
    'normalize_median_mad', 'align_prediction', 'aligned_disparity',
    'trimmed_sum', 'batch_based_reduction', 'check_ssi_options'
]

ALIGNMENTS = ('lstsq', 'median', 'none')
TARGET_SPACES = ('disparity', 'depth')


def to_bhw(x: Tensor, name: str) -> Tensor:
    """View a ``B×1×H×W`` or ``B×H×W`` map as ``B×H×W``.

    Args:
        x (Tensor): Map of shape ``B×1×H×W`` or ``B×H×W``.
        name (str): Name used in the error message.

    Returns:
        Tensor: The same data, ``B×H×W``.
    """
    if x.dim() == 4 and x.shape[1] == 1:
        return x[:, 0]
    if x.dim() == 3:
        return x
    raise ValueError(
        f'{name} must be B×1×H×W or B×H×W, got shape {tuple(x.shape)}')


def compute_valid_mask(target: Tensor,
                       min_value: Optional[float] = None,
                       max_value: Optional[float] = None) -> Tensor:
    """Pixels whose target is finite, positive and inside the bounds.

    Args:
        target (Tensor): Target map, any shape.
        min_value (float, optional): Inclusive lower bound. Defaults to None.
        max_value (float, optional): Inclusive upper bound. Defaults to None.

    Returns:
        Tensor: Boolean mask, same shape as ``target``.
    """
    mask = torch.isfinite(target) & (target > 0)
    if min_value is not None:
        mask &= target >= min_value
    if max_value is not None:
        mask &= target <= max_value
    return mask


def prepare_depth_inputs(
        pred: Tensor,
        target: Tensor,
        valid_mask: Optional[Tensor] = None,
        min_target: Optional[float] = None,
        max_target: Optional[float] = None) -> Tuple[Tensor, Tensor, Tensor]:
    """Check shapes, build the validity mask and zero invalid pixels.

    A given ``valid_mask`` is combined (AND) with the target's own validity,
    so a 0, NaN, inf or out-of-range target is masked whatever the caller
    passed.

    Args:
        pred (Tensor): Prediction, ``B×1×H×W`` or ``B×H×W``.
        target (Tensor): Target, ``B×1×H×W`` or ``B×H×W``.
        valid_mask (Tensor, optional): Extra mask, same shape as ``target``.
            Defaults to None.
        min_target (float, optional): Inclusive lower bound on the raw
            target. Defaults to None.
        max_target (float, optional): Inclusive upper bound on the raw
            target. Defaults to None.

    Returns:
        tuple[Tensor, Tensor, Tensor]: ``pred`` and ``target`` as float
        ``B×H×W`` with zeros on invalid pixels, and the boolean ``B×H×W``
        mask.
    """
    pred_bhw, target_bhw = to_bhw(pred, 'pred'), to_bhw(target, 'target')
    if pred_bhw.shape != target_bhw.shape:
        raise ValueError(
            f'pred shape {tuple(pred.shape)} and target shape '
            f'{tuple(target.shape)} differ; resize the prediction to the '
            'target size before the loss')
    mask = compute_valid_mask(target_bhw, min_target, max_target)
    if valid_mask is not None:
        valid_bhw = to_bhw(valid_mask, 'valid_mask')
        if valid_bhw.shape != target_bhw.shape:
            raise ValueError(
                f'valid_mask shape {tuple(valid_mask.shape)} does not match '
                f'target shape {tuple(target.shape)}')
        mask &= valid_bhw.bool()
    # Losses are computed in float32 at least, also under AMP.
    dtype = torch.promote_types(pred_bhw.dtype, torch.float32)
    pred_bhw = torch.where(mask, pred_bhw.to(dtype), 0.0)
    target_bhw = torch.where(mask, target_bhw.to(dtype), 0.0)
    return pred_bhw, target_bhw, mask


def inverse_depth(depth: Tensor, mask: Tensor) -> Tensor:
    """``1 / depth`` on valid pixels, 0 elsewhere.

    Args:
        depth (Tensor): Depth map, any shape.
        mask (Tensor): Boolean mask of valid (positive) depths, same shape.

    Returns:
        Tensor: Disparity map, same shape.
    """
    # The inner where keeps 1/0 out of the graph (its gradient would be nan).
    return torch.where(mask, 1.0 / torch.where(mask, depth, 1.0), 0.0)


def compute_scale_and_shift(pred: Tensor,
                            target: Tensor,
                            mask: Tensor,
                            rel_tol: float = 1e-10) -> Tuple[Tensor, Tensor]:
    """Per-image least-squares scale and shift from ``pred`` to ``target``.

    Minimises ``Σ_valid (s·pred + t − target)²`` for each image. This is
    the closed-form solution of the 2×2 normal equations of the MiDaS gist,
    written with the prediction centred on its valid mean: the same s and t,
    without the cancellation of ``M·Σp² − (Σp)²`` in float32.

    Like the gist, an image whose system is singular (no valid pixel, one
    pixel, or a constant prediction) gets ``s = t = 0``. The gist tests
    ``det != 0`` exactly; rounding gives a constant prediction a tiny
    determinant of random sign, so a relative tolerance is used instead.

    Args:
        pred (Tensor): Prediction, ``B×...``.
        target (Tensor): Target, ``B×...``.
        mask (Tensor): Boolean mask of the pixels to fit, ``B×...``.
        rel_tol (float): Singular when the prediction's valid variance is
            below ``rel_tol`` times its mean square. Defaults to 1e-10.

    Returns:
        tuple[Tensor, Tensor]: Scale and shift, each of shape ``B``.
    """
    dims = tuple(range(1, pred.dim()))
    pred = torch.where(mask, pred, 0.0)
    target = torch.where(mask, target, 0.0)
    count = mask.sum(dims).to(pred.dtype).clamp(min=1)
    view = (-1, ) + (1, ) * len(dims)
    mean_pred = pred.sum(dims) / count
    mean_target = target.sum(dims) / count
    pred_c = torch.where(mask, pred - mean_pred.view(view), 0.0)
    target_c = torch.where(mask, target - mean_target.view(view), 0.0)
    # The normal equations' determinant is M·var_sum.
    var_sum = (pred_c * pred_c).sum(dims)
    cov_sum = (pred_c * target_c).sum(dims)
    solvable = var_sum > rel_tol * (pred * pred).sum(dims)
    # Safe denominator: a where() over cov/0 would still backprop nan.
    scale = torch.where(solvable,
                        cov_sum / torch.where(solvable, var_sum, 1.0), 0.0)
    shift = torch.where(solvable, mean_target - scale * mean_pred, 0.0)
    return scale, shift


def normalize_median_mad(x: Tensor,
                         mask: Tensor,
                         min_mad: float = 1e-6) -> Tensor:
    """Subtract the median and divide by the mean absolute deviation.

    Both statistics are taken over the valid pixels of each image only. The
    posted MiDaS v2 code takes the median of ``mask * x`` over all pixels,
    so invalid pixels count as zeros (MiDaS issue #33); that bug is not
    reproduced here. The median is the lower one for an even count, as
    ``torch.median`` in the posted code.

    Args:
        x (Tensor): Map, ``B×H×W``.
        mask (Tensor): Boolean validity mask, ``B×H×W``.
        min_mad (float): Lower clamp of the deviation. Defaults to 1e-6.

    Returns:
        Tensor: Normalised map, ``B×H×W``, 0 on invalid pixels.
    """
    flat_mask = mask.flatten(1)
    count = flat_mask.sum(1)
    # NaN marks invalid pixels for nanmedian only; it stays out of the rest
    # of the graph so that no gradient is multiplied by it.
    median = torch.nanmedian(
        torch.where(flat_mask, x.flatten(1), float('nan')), dim=1).values
    median = torch.where(count > 0, median, 0.0)[:, None, None]
    centred = torch.where(mask, x - median, 0.0)
    mad = centred.abs().flatten(1).sum(1) / count.clamp(min=1)
    mad = mad.clamp(min=min_mad)[:, None, None]
    return centred / mad


def align_prediction(pred: Tensor, target: Tensor, mask: Tensor,
                     alignment: str) -> Tuple[Tensor, Tensor]:
    """Remove the unknown scale and shift between prediction and target.

    Args:
        pred (Tensor): Predicted disparity, ``B×H×W``.
        target (Tensor): Target disparity, ``B×H×W``.
        mask (Tensor): Boolean validity mask, ``B×H×W``.
        alignment (str): ``'lstsq'`` fits ``s·pred + t`` to the target;
            ``'median'`` normalises both by median and MAD; ``'none'``
            compares them as they are (a model whose output already has a
            fixed scale and shift, e.g. the metric NYU/KITTI fine-tuning).

    Returns:
        tuple[Tensor, Tensor]: Aligned prediction and target, ``B×H×W``.
    """
    if alignment == 'lstsq':
        scale, shift = compute_scale_and_shift(pred, target, mask)
        return scale[:, None, None] * pred + shift[:, None, None], target
    if alignment == 'median':
        return (normalize_median_mad(pred, mask),
                normalize_median_mad(target, mask))
    if alignment == 'none':
        return pred, target
    raise ValueError(f'alignment must be one of {ALIGNMENTS}, '
                     f'got {alignment!r}')


def aligned_disparity(
        pred: Tensor,
        target: Tensor,
        valid_mask: Optional[Tensor],
        alignment: str,
        target_space: str,
        min_target: Optional[float] = None,
        max_target: Optional[float] = None) -> Tuple[Tensor, Tensor, Tensor]:
    """The common front of the scale-and-shift-invariant losses.

    Masks the inputs, turns a depth target into disparity and aligns.

    Args:
        pred (Tensor): Predicted disparity, ``B×1×H×W`` or ``B×H×W``.
        target (Tensor): Target in ``target_space``, same shape.
        valid_mask (Tensor, optional): Extra validity mask, same shape.
        alignment (str): ``'lstsq'`` or ``'median'``.
        target_space (str): ``'disparity'`` or ``'depth'``.
        min_target (float, optional): Inclusive lower bound on the raw
            target (before any inversion). Defaults to None.
        max_target (float, optional): Inclusive upper bound on the raw
            target. Defaults to None.

    Returns:
        tuple[Tensor, Tensor, Tensor]: Aligned prediction and target
        disparity, ``B×H×W``, and the boolean ``B×H×W`` mask.
    """
    pred, target, mask = prepare_depth_inputs(pred, target, valid_mask,
                                              min_target, max_target)
    if target_space == 'depth':
        target = inverse_depth(target, mask)
    pred, target = align_prediction(pred, target, mask, alignment)
    return pred, target, mask


def trimmed_sum(error: Tensor, mask: Tensor, trim: float = 0.0) -> Tensor:
    """Per-image sum of the valid errors after dropping the largest ones.

    Per image, ``floor(trim·M)`` of its ``M`` valid errors are dropped,
    largest first (the MiDaS paper's trimming; the posted code trims over
    the whole batch at once instead).

    Args:
        error (Tensor): Non-negative per-pixel error, ``B×H×W``.
        mask (Tensor): Boolean validity mask, ``B×H×W``.
        trim (float): Fraction in [0, 1) to drop. Defaults to 0.

    Returns:
        Tensor: Sums, shape ``B``.
    """
    if trim <= 0:
        return torch.where(mask, error, 0.0).flatten(1).sum(1)
    flat_mask = mask.flatten(1)
    count = flat_mask.sum(1)
    keep = count - torch.floor(count.double() * trim).long()
    # Invalid pixels sort last as +inf and are never kept.
    ordered = torch.where(flat_mask, error.flatten(1),
                          float('inf')).sort(dim=1).values
    position = torch.arange(ordered.shape[1], device=error.device)
    kept = torch.where(position[None] < keep[:, None], ordered, 0.0)
    return kept.sum(1)


def batch_based_reduction(image_loss: Tensor, divisor: Tensor) -> Tensor:
    """MiDaS "batch-based" reduction: sum of losses over sum of divisors.

    Args:
        image_loss (Tensor): Per-image loss sums, shape ``B``.
        divisor (Tensor): Per-image divisors (e.g. ``2·M``), shape ``B``.

    Returns:
        Tensor: Scalar; 0 when the divisors sum to 0 (the losses are then 0
        too, as every pixel is masked).
    """
    return image_loss.sum() / divisor.sum().to(image_loss.dtype).clamp(min=1)


def check_ssi_options(alignment: str, target_space: str) -> None:
    """Raise a ValueError for an unknown alignment or target space.

    Args:
        alignment (str): Must be in :data:`ALIGNMENTS`.
        target_space (str): Must be in :data:`TARGET_SPACES`.
    """
    if alignment not in ALIGNMENTS:
        raise ValueError(f'alignment must be one of {ALIGNMENTS}, '
                         f'got {alignment!r}')
    if target_space not in TARGET_SPACES:
        raise ValueError(f'target_space must be one of {TARGET_SPACES}, '
                         f'got {target_space!r}')

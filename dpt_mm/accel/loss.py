"""The chunked resize + cross-entropy with each band's gradient computed
in its forward pass.

:func:`~dpt_mm.models.losses.resize_cross_entropy` checkpoints every band
of output rows: backward resizes the band and runs log-softmax and NLL a
second time, then their backward (NLL's writes a zero-filled gradient per
band). The gradient of softmax cross-entropy has a closed form,
``w[y]·(softmax − onehot(y))``, so :func:`fused_resize_cross_entropy`
computes it in the same pass as the loss: per band one resize (height by
a GEMM with the band's taps, width by ``F.interpolate``), one exponential
giving the softmax and its log, the band's gradient mapped back through
the resize (the taps' transpose, the upsample's own backward op), and
summed into one gradient of the logits, which is what the step holds for
backward instead of the logits. Same loss, accuracy and plan of bands;
gradients differ by rounding (~2e-7 relative). Whether it is faster on a
machine is measured there (:func:`~dpt_mm.accel.accel_decision`); figures
in ``docs/benchmark.md``.
"""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable

from mmseg.models.losses import CrossEntropyLoss
from ..models.losses.resize_cross_entropy import (ClassWeight, plan_bands,
                                                  reduce_bands,
                                                  resize_cross_entropy)
from .gate import cpu_float32, is_eager

__all__ = ['FusedCrossEntropyLoss', 'fused_resize_cross_entropy']


class _FusedBands(torch.autograd.Function):
    """Summed NLL and correct count of every band; backward scales the
    logits' gradient computed in forward.

    Works on the logits as B×h×w×C (a view, for channels-last logits, the
    layout of DPT's heads): the reductions over classes then run along the
    last, contiguous dimension, and the height resize is one GEMM with the
    band's taps over all w·C values of a row.
    """

    @staticmethod
    def forward(ctx, logits: Tensor, label: Tensor, taps: Optional[Tensor],
                class_weight: Optional[Tensor], bands: tuple,
                align_corners: bool, ignore_index: int,
                resize_dtype: torch.dtype) -> Tuple[Tensor, Tensor]:
        batch, channels, _, in_w = logits.shape
        out_w = label.shape[2]
        logits = logits.permute(0, 2, 3, 1).to(resize_dtype)
        grad = torch.zeros_like(logits, memory_format=torch.contiguous_format)
        nll = logits.new_zeros((), dtype=torch.float64)
        correct = label.new_zeros(())
        for r0, r1, a, b in bands:
            band_label = label[:, r0:r1]
            band_taps = None if taps is None else taps[r0:r1, a:b].to(
                resize_dtype)
            rows = r1 - r0  # = b − a where the height is not resized
            # Bilinear resize, height (taps) then width: B×rows×W×C.
            x = logits[:, a:b]
            if band_taps is not None:
                x = torch.matmul(band_taps, x.reshape(batch, b - a, -1))
                x = x.view(batch, rows, in_w, channels)
            if in_w != out_w:
                x = F.interpolate(x.permute(0, 3, 1, 2), size=(rows, out_w),
                                  mode='bilinear',
                                  align_corners=align_corners)
                x = x.permute(0, 2, 3, 1)
            valid = band_label != ignore_index
            target = band_label.masked_fill(~valid, 0).unsqueeze(-1)
            weight = valid.to(x.dtype) if class_weight is None else \
                class_weight.to(x.dtype)[target[..., 0]] * valid
            weight = weight.unsqueeze(-1)
            picked = x.gather(-1, target)
            top = x.amax(-1, keepdim=True)
            correct += ((picked >= top) & valid.unsqueeze(-1)).sum()
            # Softmax and its log from one exp: e = exp(x − max),
            # nll = log Σe + max − x[y]; d nll/dx = w·e/Σe − w at y.
            exp = (x - top).exp_()
            total = exp.sum(-1, keepdim=True)
            nll += ((total.log() + top - picked) * weight).sum(
                dtype=torch.float64)
            band_grad = exp.mul_(weight / total)
            band_grad.scatter_add_(-1, target, -weight)
            del x, exp
            if in_w != out_w:
                band_grad = torch.ops.aten.upsample_bilinear2d_backward(
                    band_grad.permute(0, 3, 1, 2), [rows, out_w],
                    [batch, channels, rows, in_w],
                    align_corners).permute(0, 2, 3, 1)
            if band_taps is not None:
                band_grad = torch.matmul(
                    band_taps.t(), band_grad.reshape(batch, rows, -1)).view(
                        batch, b - a, in_w, channels)
            grad[:, a:b] += band_grad
        ctx.save_for_backward(grad)
        ctx.mark_non_differentiable(correct)
        return nll, correct

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_nll: Tensor, _grad_correct: Tensor):
        grad, = ctx.saved_tensors
        grad = grad * grad_nll.to(grad.dtype)
        return (grad.permute(0, 3, 1, 2), ) + (None, ) * 7


def fused_resize_cross_entropy(
        logits: Tensor,
        label: Tensor,
        *,
        align_corners: bool,
        class_weight: ClassWeight = None,
        ignore_index: int = 255,
        avg_non_ignore: bool = False,
        loss_weight: float = 1.0,
        chunk_rows: Optional[int] = None) -> Tuple[Tensor, Tensor]:
    """:func:`~dpt_mm.models.losses.resize_cross_entropy` (same arguments
    and results) with the gradient computed band by band in forward.

    For CPU float32 without autocast (the caller gates it; float64 works
    too, for gradient checks): the resize and the cross-entropy run in the
    logits' dtype, as the plain loss does there.

    Args:
        logits (Tensor): B×C×h×w float32 logits.
        label (Tensor): B×H×W long class indices or ``ignore_index``.
        align_corners (bool): Resize mode.
        class_weight (Sequence[float] | Tensor, optional): C weights.
        ignore_index (int): Label without loss or accuracy.
        avg_non_ignore (bool): Average over valid pixels only.
        loss_weight (float): Factor on the loss.
        chunk_rows (int, optional): Output rows per band.

    Returns:
        Tuple[Tensor, Tensor]: The 0-dim loss and the accuracy (1,).
    """
    plan = plan_bands(logits, label, align_corners, class_weight,
                      chunk_rows)
    nll, correct = _FusedBands.apply(logits, label, plan.taps,
                                     plan.class_weight, plan.bands,
                                     align_corners, ignore_index,
                                     plan.resize_dtype)
    return reduce_bands(nll, correct, label, plan, ignore_index,
                        avg_non_ignore, loss_weight)


class FusedCrossEntropyLoss(CrossEntropyLoss):
    """mmseg's ``CrossEntropyLoss`` (same arguments, ``forward`` and
    state) whose chunked resize + cross-entropy, which the decode heads
    call through :meth:`resize_cross_entropy`, is
    :func:`fused_resize_cross_entropy` where a gradient is wanted in CPU
    float32 eager execution, and the plain loss anywhere else."""

    def resize_cross_entropy(self, logits: Tensor, label: Tensor,
                             **kwargs) -> Tuple[Tensor, Tensor]:
        """See :func:`~dpt_mm.models.losses.resize_cross_entropy`."""
        if (is_eager() and torch.is_grad_enabled() and logits.requires_grad
                and cpu_float32(logits)):
            return fused_resize_cross_entropy(logits, label, **kwargs)
        return resize_cross_entropy(logits, label, **kwargs)


"""``nn.Conv2d`` whose CPU weight gradient is computed in bands of rows.

oneDNN's weight gradient of DPT's 3×3 convolutions on large channels-last
maps ran at 1.7× (128²) to 1.85× (256²) the forward's time on an AMD EPYC,
against about forward speed on small maps. Summing the weight gradients
of row bands of ~4 MiB of output gradient (each band's input rows plus the
kernel's halo, no copy of the map) brought it to 1.1–1.2× forward there.
The input gradient is one call, as before. Results differ from one call by
summation order only. Whether that is faster on a machine is measured
there (:func:`~dpt_mm.accel.accel_decision`).
"""
from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from .gate import cpu_float32, is_eager

__all__ = ['BandedConv2d', 'banded_conv2d', 'conv_input_rows']


def conv_input_rows(x: Tensor, a: int, b: int, kernel: int, padding: int,
                    dilation: int) -> Tensor:
    """The input rows that output rows ``[a, b)`` of a stride-1 conv read,
    zero-padded where they fall outside ``x``.

    Args:
        x (Tensor): B×C×H×W input.
        a (int): First output row.
        b (int): One past the last output row.
        kernel (int): Kernel height.
        padding (int): Zero padding in height.
        dilation (int): Dilation in height.

    Returns:
        Tensor: The rows, a view of ``x`` unless padding was needed.
    """
    lo = a - padding
    hi = b + dilation * (kernel - 1) - padding
    lo_in, hi_in = max(lo, 0), min(hi, x.shape[2])
    rows = x[:, :, lo_in:hi_in]
    if lo < lo_in or hi > hi_in:
        rows = F.pad(rows, (0, 0, lo_in - lo, hi - hi_in))
    return rows


class _BandedWeightGrad(torch.autograd.Function):
    """``F.conv2d`` (stride 1, one group) with a banded weight gradient."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Optional[Tensor],
                padding: Tuple[int, int], dilation: Tuple[int, int],
                rows: int) -> Tensor:
        ctx.save_for_backward(x, weight)
        ctx.padding, ctx.dilation, ctx.rows = padding, dilation, rows
        ctx.has_bias = bias is not None
        return F.conv2d(x, weight, bias, 1, padding, dilation)

    @staticmethod
    def backward(ctx, grad: Tensor):
        x, weight = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        padding, dilation = list(ctx.padding), list(ctx.dilation)
        grad_x = grad_w = None
        if need_x:
            grad_x = torch.ops.aten.convolution_backward(
                grad, x, weight, None, [1, 1], padding, dilation, False,
                [0, 0], 1, [True, False, False])[0]
        if need_w:
            for a in range(0, grad.shape[2], ctx.rows):
                b = min(a + ctx.rows, grad.shape[2])
                x_rows = conv_input_rows(x, a, b, weight.shape[2],
                                         padding[0], dilation[0])
                part = torch.ops.aten.convolution_backward(
                    grad[:, :, a:b], x_rows, weight, None, [1, 1],
                    [0, padding[1]], dilation, False, [0, 0], 1,
                    [False, True, False])[1]
                grad_w = part if grad_w is None else grad_w.add_(part)
        grad_b = grad.sum((0, 2, 3)) if need_b and ctx.has_bias else None
        return grad_x, grad_w, grad_b, None, None, None


def banded_conv2d(x: Tensor, weight: Tensor, bias: Optional[Tensor],
                  padding: Tuple[int, int], dilation: Tuple[int, int],
                  rows: int) -> Tensor:
    """Stride-1, one-group ``F.conv2d`` whose weight gradient is summed
    over bands of ``rows`` output rows.

    Args:
        x (Tensor): B×C×H×W input.
        weight (Tensor): O×C×kh×kw kernel.
        bias (Tensor, optional): O bias.
        padding (tuple[int, int]): Zero padding (height, width).
        dilation (tuple[int, int]): Dilation.
        rows (int): Output rows per band (>= 1).

    Returns:
        Tensor: ``F.conv2d(x, weight, bias, 1, padding, dilation)``.
    """
    return _BandedWeightGrad.apply(x, weight, bias, tuple(padding),
                                   tuple(dilation), rows)


class BandedConv2d(nn.Conv2d):
    """``nn.Conv2d`` (same parameters and keys) with the banded weight
    gradient in CPU float32 eager training of a stride-1, one-group,
    zero-padded conv of a non-empty input whose output has more rows than
    one band; else
    ``nn.Conv2d.forward``.

    Attributes:
        band_bytes (int): About this many bytes of output gradient per
            band (4 MiB: smaller bands pay the halo rows and per-call
            overhead, larger ones fall out of cache).
    """

    band_bytes = 4 * 2**20

    def _conv_forward(self, x: Tensor, weight: Tensor,
                      bias: Optional[Tensor]) -> Tensor:
        if not (is_eager() and cpu_float32(x, weight) and x.dim() == 4
                and x.numel() > 0 and torch.is_grad_enabled()
                and weight.requires_grad and self.padding_mode == 'zeros'
                and not isinstance(self.padding, str)
                and tuple(self.stride) == (1, 1) and self.groups == 1):
            return super()._conv_forward(x, weight, bias)
        out_rows = x.shape[2] + 2 * self.padding[0] - self.dilation[0] * (
            weight.shape[2] - 1)
        row_bytes = x.shape[0] * weight.shape[0] * x.shape[3] * 4
        rows = max(1, self.band_bytes // max(row_bytes, 1))
        if rows >= out_rows:
            return super()._conv_forward(x, weight, bias)
        return banded_conv2d(x, weight, bias, self.padding, self.dilation,
                             rows)

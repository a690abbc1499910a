"""``nn.Conv2d`` whose CPU weight gradient is computed in bands of rows.

oneDNN's weight gradient of DPT's 3×3 convolutions on channels-last maps
runs at 1.7× (128²) to 1.85× (256²) the forward's time on the 2-core AMD
EPYC of ``docs/benchmark.md``, while on small maps (32², 64²) it runs at
about forward speed. Summing the weight gradients of row bands of ~4 MiB
of output gradient (each band's input rows plus the kernel's halo, no
copy of the map) brings it to 1.1–1.2× forward: −43 ms per 256-channel
conv at 128², batch 2, −190 ms at 256². The input gradient is one call,
as before. Results differ from one call by summation order only.
"""
from typing import Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.registry import MODELS
from torch import Tensor

from .eager import is_eager

__all__ = [
    'BAND_BYTES', 'CONV2D_TYPES', 'Conv2d', 'band_rows', 'conv2d',
    'conv_input_rows'
]

# Rows per band of the banded conv work here and in checkpoint.py: about
# this many bytes of conv output (or output gradient) rows. Smaller bands
# pay the halo rows and per-call overhead; larger ones fall out of cache
# (weight gradient measured at 4, 8, 16, 32, 64 rows at 128² and 256²),
# and the checkpointed head's backward holds a few band-sized tensors.
BAND_BYTES = 4 * 2**20


def band_rows(row_bytes: int, rows: Optional[int] = None) -> int:
    """Rows per band: ``rows`` if given (checked), else about
    :data:`BAND_BYTES` of rows of ``row_bytes`` each.

    Args:
        row_bytes (int): Bytes of one output row (batch and channels
            included).
        rows (int, optional): An explicit band height.

    Returns:
        int: At least 1.
    """
    if rows is not None:
        if rows < 1:
            raise ValueError(f'rows must be >= 1, got {rows}')
        return rows
    return max(1, BAND_BYTES // max(row_bytes, 1))


def conv_input_rows(x: Tensor, a: int, b: int, kernel: int, padding: int,
                    dilation: int) -> Tuple[Tensor, int, int]:
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
        tuple: The rows (a view of ``x`` unless padding was needed), the
        first row of ``x`` they hold and how many zero rows precede it.
    """
    lo = a - padding
    hi = b + dilation * (kernel - 1) - padding
    lo_in, hi_in = max(lo, 0), min(hi, x.shape[2])
    rows = x[:, :, lo_in:hi_in]
    if lo < lo_in or hi > hi_in:
        rows = F.pad(rows, (0, 0, lo_in - lo, hi - hi_in))
    return rows, lo_in, lo_in - lo


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
                                         padding[0], dilation[0])[0]
                part = torch.ops.aten.convolution_backward(
                    grad[:, :, a:b], x_rows, weight, None, [1, 1],
                    [0, padding[1]], dilation, False, [0, 0], 1,
                    [False, True, False])[1]
                grad_w = part if grad_w is None else grad_w.add_(part)
        grad_b = grad.sum((0, 2, 3)) if need_b and ctx.has_bias else None
        return grad_x, grad_w, grad_b, None, None, None


def _banded(x: Tensor, weight: Tensor, stride: Sequence[int],
            padding, groups: int) -> bool:
    return (x.device.type == 'cpu' and x.dim() == 4
            and x.dtype in (torch.float32, torch.float64)
            and weight.requires_grad and torch.is_grad_enabled()
            and tuple(stride) == (1, 1) and groups == 1
            and not isinstance(padding, str)
            and not torch.is_autocast_enabled('cpu') and is_eager())


def conv2d(x: Tensor, weight: Tensor, bias: Optional[Tensor] = None,
           stride: Sequence[int] = (1, 1), padding: Sequence[int] = (0, 0),
           dilation: Sequence[int] = (1, 1), groups: int = 1,
           rows: Optional[int] = None) -> Tensor:
    """``F.conv2d``, with the banded weight gradient (see the module doc)
    when it applies: CPU float32/float64 training, stride 1, one group,
    numeric zero padding, no autocast, not tracing or compiling, and more
    output rows than one band.

    Args:
        x (Tensor): B×C×H×W input.
        weight (Tensor): O×C×kh×kw kernel.
        bias (Tensor, optional): O bias.
        stride (Sequence[int]): Stride.
        padding (Sequence[int]): Zero padding (height, width).
        dilation (Sequence[int]): Dilation.
        groups (int): Groups.
        rows (int, optional): Output rows per band; default about
            :data:`BAND_BYTES` of output gradient.

    Returns:
        Tensor: ``F.conv2d(x, weight, bias, stride, padding, dilation,
        groups)``.
    """
    if _banded(x, weight, stride, padding, groups):
        out_rows = x.shape[2] + 2 * padding[0] - dilation[0] * (
            weight.shape[2] - 1)
        rows = band_rows(
            x.shape[0] * weight.shape[0] * x.shape[3] * x.element_size(),
            rows)
        if rows < out_rows:
            return _BandedWeightGrad.apply(x, weight, bias, tuple(padding),
                                           tuple(dilation), rows)
    return F.conv2d(x, weight, bias, stride, padding, dilation, groups)


@MODELS.register_module('DPTConv2d')
class Conv2d(nn.Conv2d):
    """``nn.Conv2d`` (same arguments, parameters and keys) computed by
    :func:`conv2d`; registered as ``DPTConv2d`` for mmcv's ``conv_cfg``.
    """

    def _conv_forward(self, x: Tensor, weight: Tensor,
                      bias: Optional[Tensor]) -> Tensor:
        if self.padding_mode != 'zeros':
            return super()._conv_forward(x, weight, bias)
        return conv2d(x, weight, bias, self.stride, self.padding,
                      self.dilation, self.groups)


#: The conv classes computing exactly ``F.conv2d`` (subclasses may not), for
#: code that fuses or folds a conv (checkpointed heads, BN folding).
CONV2D_TYPES = (nn.Conv2d, Conv2d)

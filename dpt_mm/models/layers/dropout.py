"""Element-wise dropout whose CPU mask is drawn by a fast generator.

On CPU, ``F.dropout`` draws its mask with ``bernoulli_`` (about 6 ns per
element here), divides it by ``1 − p`` and multiplies: 240 ms for the
2×256×256×256 map before DPT's segmentation classifier, and it keeps that
float mask (128 MiB) for backward. :func:`dropout` draws 32 random bits per
element from NumPy's PCG64, seeded from torch's default generator (so
``torch.manual_seed`` and mmengine's ``randomness`` seed make it
reproducible), keeps a bool mask (a quarter of the bytes) and applies it
with one ``where``: about 110 ms for the same map. Each element is kept
with probability ``1 − p`` up to 2^-33, independently, and kept values are
scaled by ``1 / (1 − p)``, as ``F.dropout`` does. Off CPU, in place, while
tracing or compiling, it is ``F.dropout``.
"""
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from .eager import is_eager

__all__ = ['Dropout', 'dropout', 'dropout_mask']

_BITS = 2**32


def dropout_mask(x: Tensor, p: float) -> Tensor:
    """A bool keep-mask for ``x``: each element ``True`` with probability
    ``1 − p``, independently.

    The mask has ``x``'s shape and memory layout (``torch.empty_like``), so
    applying it reads both in the same order. The generator's seed is one
    draw from torch's default CPU generator.

    Args:
        x (Tensor): The CPU tensor to mask.
        p (float): Drop probability, in [0, 1].

    Returns:
        Tensor: Bool, like ``x``.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f'dropout probability must be in [0, 1], got {p}')
    if x.device.type != 'cpu':
        raise ValueError(f'dropout_mask draws CPU masks; x is on {x.device}')
    mask = torch.empty_like(x, dtype=torch.bool)
    n = mask.numel()
    seed = int(torch.randint(0, 2**63 - 1, (), dtype=torch.int64))
    if n == 0:
        return mask
    # empty_like gives a dense tensor: its storage is n bools in memory
    # order, filled in place through a NumPy view.
    flat = mask.as_strided((n, ), (1, )).numpy()
    threshold = round(p * _BITS)
    if threshold >= _BITS:  # p within 2^-33 of 1: nothing is kept
        flat[:] = False
        return mask
    bits = np.random.PCG64(seed).random_raw((n + 1) // 2).view(np.uint32)
    # P(bits >= t) = 1 − t / 2^32, within 2^-33 of 1 − p. A uint32
    # threshold keeps the comparison in uint32 (5× faster than uint64).
    np.greater_equal(bits[:n], np.uint32(threshold), out=flat)
    return mask


class _Dropout(torch.autograd.Function):
    """``x · mask / (1 − p)`` keeping the bool mask for backward."""

    @staticmethod
    def forward(ctx, x: Tensor, p: float) -> Tensor:
        mask = dropout_mask(x, p)
        ctx.save_for_backward(mask)
        ctx.scale = 1.0 / (1.0 - p)
        return torch.where(mask, x, 0).mul_(ctx.scale)

    @staticmethod
    def backward(ctx, grad: Tensor):
        mask, = ctx.saved_tensors
        return torch.where(mask, grad, 0).mul_(ctx.scale), None


def _fast(x: Tensor, p: float, inplace: bool) -> bool:
    return (x.device.type == 'cpu' and x.is_floating_point()
            and 0.0 < p < 1.0 and not inplace and is_eager())


def dropout(x: Tensor, p: float = 0.5, training: bool = True,
            inplace: bool = False) -> Tensor:
    """``F.dropout`` with the fast CPU mask of :func:`dropout_mask`.

    Args:
        x (Tensor): Input.
        p (float): Drop probability.
        training (bool): Identity when False.
        inplace (bool): Passed on to ``F.dropout``, which then runs.

    Returns:
        Tensor: ``x`` with elements zeroed with probability ``p`` and the
        rest scaled by ``1 / (1 − p)``.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f'dropout probability must be in [0, 1], got {p}')
    if training and _fast(x, p, inplace):
        return _Dropout.apply(x, p)
    return F.dropout(x, p, training, inplace)


class Dropout(nn.Dropout):
    """``nn.Dropout`` (same arguments and ``extra_repr``) computed by
    :func:`dropout`."""

    def forward(self, x: Tensor) -> Tensor:
        return dropout(x, self.p, self.training, self.inplace)

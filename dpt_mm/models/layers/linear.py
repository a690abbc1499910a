"""``nn.Linear`` whose CPU float32 GEMM runs through oneDNN.

PyTorch's CPU ``F.linear`` calls the BLAS (MKL) sgemm. On AMD CPUs MKL does
not dispatch to its fastest kernels: on the 2-core AMD EPYC (AVX-512) of
``docs/benchmark.md`` the ViT GEMMs ran at 200–235 GFLOP/s through
``F.linear`` and 510–545 GFLOP/s through oneDNN, the library behind
PyTorch's CPU convolutions. The transformer's linear layers are 50–75 % of
DPT's time, so :class:`Linear` computes ``x @ W^T + b`` as a 1×1 convolution
over a channels-last view of the rows of ``x``. Forward and backward both run
in oneDNN, float32 with float32 accumulation; results differ from
``F.linear`` by summation order only (~1e-6 relative). Parameters, keys and
initialisation are those of ``nn.Linear``.
"""
import os
from contextlib import contextmanager
from typing import Iterator, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from .eager import is_eager

__all__ = ['LINEAR_BACKENDS', 'Linear', 'linear', 'linear_backend']

#: ``onednn``: CPU float32 GEMMs as 1×1 oneDNN convolutions (the default);
#: ``blas``: always ``F.linear``.
LINEAR_BACKENDS = ('onednn', 'blas')
_ENV = 'DPT_MM_LINEAR_BACKEND'


def _check_backend(name: str, source: str) -> str:
    if name not in LINEAR_BACKENDS:
        raise ValueError(f'{source}: linear backend must be one of '
                         f'{LINEAR_BACKENDS}, got {name!r}')
    return name


_backend = _check_backend(os.environ.get(_ENV, 'onednn'), _ENV)


@contextmanager
def linear_backend(name: str) -> Iterator[None]:
    """Use the given backend for :func:`linear` inside the block.

    Args:
        name (str): One of :data:`LINEAR_BACKENDS`.

    Example:
        >>> with linear_backend('blas'):  # compare against plain F.linear
        ...     out = model(x)
    """
    global _backend
    previous = _backend
    _backend = _check_backend(name, 'linear_backend')
    try:
        yield
    finally:
        _backend = previous


def _use_onednn(x: Tensor, weight: Tensor) -> bool:
    # Exporters and compilers get the plain op: ONNX wants a Gemm/MatMul,
    # and inductor packs linear weights itself.
    return (_backend == 'onednn' and x.device.type == 'cpu'
            and x.dtype == torch.float32 and weight.dtype == torch.float32
            and x.ndim >= 2 and x.numel() > 0
            and torch.backends.mkldnn.is_available()
            and torch.backends.mkldnn.enabled
            and not torch.is_autocast_enabled('cpu') and is_eager())


def linear(x: Tensor, weight: Tensor, bias: Optional[Tensor] = None) -> Tensor:
    """``F.linear``, through oneDNN on CPU float32 (see the module doc).

    The M×K rows of ``x`` are viewed (no copy) as a 1×K×M×1 channels-last
    image and ``weight`` (N×K) as an N×K×1×1 kernel; the convolution's
    channels-last output is the M×N result in row order, so reading it back
    is free too. Gradients flow to ``x``, ``weight`` and ``bias`` through the
    views.

    Args:
        x (Tensor): ...×K input.
        weight (Tensor): N×K weight.
        bias (Tensor, optional): N bias.

    Returns:
        Tensor: ...×N.
    """
    if not _use_onednn(x, weight):
        return F.linear(x, weight, bias)
    shape = x.shape
    rows = x.reshape(-1, shape[-1])
    if not rows.is_contiguous():
        rows = rows.contiguous()
    image = rows.view(1, rows.shape[0], 1, rows.shape[1]).permute(0, 3, 1, 2)
    out = F.conv2d(image, weight.view(*weight.shape, 1, 1), bias)
    return out.permute(0, 2, 3, 1).reshape(*shape[:-1], weight.shape[0])


class Linear(nn.Linear):
    """``nn.Linear`` computed by :func:`linear` (same parameters and keys)."""

    def forward(self, x: Tensor) -> Tensor:
        return linear(x, self.weight, self.bias)

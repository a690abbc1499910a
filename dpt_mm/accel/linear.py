"""``nn.Linear`` whose CPU float32 GEMM runs through oneDNN.

PyTorch's CPU ``F.linear`` calls the BLAS (MKL) sgemm. MKL does not pick
its fastest kernels on every CPU (on an AMD EPYC, 200–235 GFLOP/s against
510–545 through oneDNN, the library behind PyTorch's CPU convolutions).
:class:`OneDNNLinear` computes ``x @ W^T + b`` as a 1×1 convolution over a
channels-last view of the rows of ``x``: forward and backward both run in
oneDNN, float32 with float32 accumulation; results differ from
``F.linear`` by summation order only (~1e-6 relative). Whether that is
faster on a machine is measured there (:func:`~dpt_mm.accel.accel_decision`).
"""
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from .gate import cpu_float32, is_eager

__all__ = ['OneDNNLinear', 'onednn_linear']


def onednn_linear(x: Tensor, weight: Tensor,
                  bias: Optional[Tensor] = None) -> Tensor:
    """``F.linear(x, weight, bias)`` as a oneDNN 1×1 convolution.

    The M×K rows of ``x`` are viewed (no copy) as a 1×K×M×1 channels-last
    image and ``weight`` (N×K) as an N×K×1×1 kernel; the convolution's
    channels-last output is the M×N result in row order. Gradients flow to
    ``x``, ``weight`` and ``bias`` through the views.

    Args:
        x (Tensor): ...×K CPU float32 input.
        weight (Tensor): N×K weight.
        bias (Tensor, optional): N bias.

    Returns:
        Tensor: ...×N.
    """
    shape = x.shape
    rows = x.reshape(-1, shape[-1]).contiguous()
    image = rows.view(1, rows.shape[0], 1, rows.shape[1]).permute(0, 3, 1, 2)
    out = F.conv2d(image, weight.view(*weight.shape, 1, 1), bias)
    return out.permute(0, 2, 3, 1).reshape(*shape[:-1], weight.shape[0])


class OneDNNLinear(nn.Linear):
    """``nn.Linear`` (same parameters and keys) through
    :func:`onednn_linear` in CPU float32 eager execution, else
    ``nn.Linear.forward``."""

    def forward(self, x: Tensor) -> Tensor:
        if not (is_eager() and cpu_float32(x, self.weight) and x.ndim >= 2
                and x.numel() > 0 and torch.backends.mkldnn.is_available()
                and torch.backends.mkldnn.enabled):
            return super().forward(x)
        return onednn_linear(x, self.weight, self.bias)

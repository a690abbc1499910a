"""DPT's ``project`` readout with the class token's half of the Linear
computed once per image.

The readout concatenates the class token to every patch token and applies
Linear(2D → D) + GELU: ``[p, c] @ W^T + b = p @ W_p^T + (c @ W_c^T + b)``
with ``W = [W_p, W_c]``. The second term is the same for every token of an
image, so :func:`split_readout` computes it once and broadcasts it: half
the readout's GEMM FLOPs and no B×N×2D concatenation (the layout of the
original DPT code, whose weights these are). Results differ from the
plain readout by summation order only (~1e-6 relative).
"""
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from ..models.layers.reassemble import Readout
from .gate import cpu_float32, is_eager

__all__ = ['SplitReadout', 'split_readout']


def split_readout(tokens: Tensor, cls_token: Tensor,
                  linear: nn.Linear) -> Tensor:
    """``linear(cat([tokens, cls_token expanded], -1))`` without the
    concatenation.

    Args:
        tokens (Tensor): B×N×D patch tokens.
        cls_token (Tensor): B×D class token.
        linear (nn.Linear): The 2D → D projection (patch half first).

    Returns:
        Tensor: B×N×D, before the activation.
    """
    dim = tokens.shape[-1]
    weight = linear.weight
    per_image = F.linear(cls_token, weight[:, dim:], linear.bias)
    return F.linear(tokens, weight[:, :dim]) + per_image[:, None]


class SplitReadout(Readout):
    """:class:`Readout` (same parameters and keys) whose ``project`` mode
    runs :func:`split_readout` in CPU float32 eager execution, else
    ``Readout.forward``."""

    def forward(self, feat: Tensor, cls_token: Tensor) -> Tensor:
        if self.readout_type != 'project' or not (
                is_eager() and cpu_float32(feat, cls_token,
                                           self.project[0].weight)):
            return super().forward(feat, cls_token)
        batch, dim, height, width = feat.shape
        tokens = feat.permute(0, 2, 3, 1).flatten(1, 2)
        tokens = self.project[1](split_readout(tokens, cls_token,
                                               self.project[0]))
        return tokens.transpose(1, 2).reshape(batch, dim, height, width)

"""DINOv2 encoder block: pre-norm ViT block with layer scale (and SwiGLU).

Layout of the original DINOv2 (``blocks.N.{norm1, attn.qkv, attn.proj,
ls1.gamma, norm2, mlp.fc1, mlp.fc2, ls2.gamma}``); the attention and the
GELU MLP are the ViT block's own modules.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from .transformer_block import Attention, DropPath, Mlp

__all__ = ['DINOv2Block', 'LayerScale', 'SwiGLUFFN', 'swiglu_hidden_dim']


class LayerScale(nn.Module):
    """Per-channel scale of a residual branch (``x * gamma``).

    Args:
        dim (int): Token width D.
        init_value (float): Initial scale (1e-5 when training DINOv2; the
            released weights carry the learned values).
    """

    def __init__(self, dim: int, init_value: float = 1.0) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim, ), float(init_value)))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.gamma


def swiglu_hidden_dim(dim: int, mlp_ratio: float) -> int:
    """DINOv2's SwiGLU width: 2/3 of the MLP width, rounded up to 8."""
    hidden = int(dim * mlp_ratio)
    return (int(hidden * 2 / 3) + 7) // 8 * 8


class SwiGLUFFN(nn.Module):
    """``fc2(silu(gate) * up)`` with ``[gate; up] = fc1(x)`` (ViT-g/14).

    ``fc1`` is the original's fused ``w12`` (gate rows first), ``fc2`` its
    ``w3``; Transformers splits ``fc1`` into ``gate_proj``/``up_proj``.

    Args:
        dim (int): Token width D.
        hidden_dim (int): Width of the gated product.
        drop (float): Dropout after the output projection.
    """

    def __init__(self, dim: int, hidden_dim: int, drop: float = 0.0) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, 2 * hidden_dim)
        self.fc2 = nn.Linear(hidden_dim, dim)
        self.drop = nn.Dropout(drop)

    def forward(self, x: Tensor) -> Tensor:
        gate, up = self.fc1(x).chunk(2, dim=-1)
        return self.drop(self.fc2(F.silu(gate) * up))


class DINOv2Block(nn.Module):
    """``x + ls1(attn(norm1(x)))``, then ``x + ls2(mlp(norm2(x)))``.

    Args:
        dim (int): Token width D.
        num_heads (int): Attention heads.
        mlp_ratio (float): MLP hidden width as a multiple of D.
        qkv_bias (bool): Bias in the qkv projection.
        norm_eps (float): LayerNorm eps (1e-6 in DINOv2).
        layer_scale_init (float): Initial layer-scale value.
        ffn_type (str): ``'mlp'`` (GELU, ViT-S/B/L) or ``'swiglu'``
            (ViT-g).
        drop (float): Dropout after projections.
        attn_drop (float): Attention dropout.
        drop_path (float): Stochastic depth rate of this block.
    """

    def __init__(self,
                 dim: int,
                 num_heads: int,
                 mlp_ratio: float = 4.0,
                 qkv_bias: bool = True,
                 norm_eps: float = 1e-6,
                 layer_scale_init: float = 1.0,
                 ffn_type: str = 'mlp',
                 drop: float = 0.0,
                 attn_drop: float = 0.0,
                 drop_path: float = 0.0) -> None:
        super().__init__()
        if ffn_type not in ('mlp', 'swiglu'):
            raise ValueError(f"ffn_type must be 'mlp' or 'swiglu', got "
                             f'{ffn_type!r}')
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = Attention(dim, num_heads, qkv_bias, attn_drop, drop)
        self.ls1 = LayerScale(dim, layer_scale_init)
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop) \
            if ffn_type == 'mlp' else SwiGLUFFN(
                dim, swiglu_hidden_dim(dim, mlp_ratio), drop)
        self.ls2 = LayerScale(dim, layer_scale_init)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: Tensor) -> Tensor:
        """Args: x (Tensor): B×N×D. Returns: Tensor: B×N×D."""
        x = x + self.drop_path(self.ls1(self.attn(self.norm1(x))))
        x = x + self.drop_path(self.ls2(self.mlp(self.norm2(x))))
        return x

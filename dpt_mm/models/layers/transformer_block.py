"""Pre-norm ViT encoder block (timm layout: fused qkv, fc1/fc2 MLP)."""
from typing import Type

import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

__all__ = ['Attention', 'Mlp', 'DropPath', 'TransformerBlock']


class Attention(nn.Module):
    """Multi-head self-attention through ``scaled_dot_product_attention``.

    Args:
        dim (int): Token width D.
        num_heads (int): Number of heads; must divide ``dim``.
        qkv_bias (bool): Whether the fused qkv projection has a bias.
        attn_drop (float): Attention-probability dropout in training.
        proj_drop (float): Output dropout in training.
    """

    def __init__(self,
                 dim: int,
                 num_heads: int,
                 qkv_bias: bool = True,
                 attn_drop: float = 0.0,
                 proj_drop: float = 0.0) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(
                f'embed_dims={dim} is not divisible by num_heads={num_heads}')
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.attn_drop = attn_drop
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x: Tensor) -> Tensor:
        """Args: x (Tensor): B×N×D tokens. Returns: Tensor: B×N×D."""
        batch, tokens, dim = x.shape
        qkv = self.qkv(x).reshape(batch, tokens, 3, self.num_heads,
                                  self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        x = F.scaled_dot_product_attention(
            q, k, v, dropout_p=self.attn_drop if self.training else 0.0)
        x = x.transpose(1, 2).reshape(batch, tokens, dim)
        return self.proj_drop(self.proj(x))


class Mlp(nn.Module):
    """Two-layer MLP with GELU (exact erf form, as timm and Transformers)."""

    def __init__(self, dim: int, hidden_dim: int, drop: float = 0.0,
                 act_layer: Type[nn.Module] = nn.GELU) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = act_layer()
        self.fc2 = nn.Linear(hidden_dim, dim)
        self.drop = nn.Dropout(drop)

    def forward(self, x: Tensor) -> Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


class DropPath(nn.Module):
    """Stochastic depth per sample; identity outside training."""

    def __init__(self, drop_prob: float = 0.0) -> None:
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, x: Tensor) -> Tensor:
        if self.drop_prob == 0.0 or not self.training:
            return x
        keep = 1.0 - self.drop_prob
        mask = x.new_empty((x.shape[0], ) + (1, ) * (x.ndim - 1))
        return x * mask.bernoulli_(keep).div_(keep)

    def extra_repr(self) -> str:
        return f'drop_prob={self.drop_prob}'


class TransformerBlock(nn.Module):
    """ViT block: ``x + attn(norm1(x))`` then ``x + mlp(norm2(x))``.

    Args:
        dim (int): Token width D.
        num_heads (int): Attention heads.
        mlp_ratio (float): MLP hidden width as a multiple of D.
        qkv_bias (bool): Bias in the qkv projection.
        norm_eps (float): LayerNorm eps (original DPT/timm 1e-6,
            Transformers 1e-12, mmseg ViT 1e-5).
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
                 drop: float = 0.0,
                 attn_drop: float = 0.0,
                 drop_path: float = 0.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = Attention(dim, num_heads, qkv_bias, attn_drop, drop)
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: Tensor) -> Tensor:
        """Args: x (Tensor): B×N×D. Returns: Tensor: B×N×D."""
        x = x + self.drop_path(self.attn(self.norm1(x)))
        x = x + self.drop_path(self.mlp(self.norm2(x)))
        return x

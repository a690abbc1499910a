"""Swin Transformer V2 building blocks (Liu et al. 2022), timm layout.

Scaled cosine attention in (shifted) windows with a learned logit scale, a
continuous position bias from a small MLP over log-spaced offsets, and
res-post-norm blocks. Feature maps stay B×H×W×C (channels last) between
blocks. Names follow timm 0.6's ``swin_transformer_v2.py`` (``qkv``,
``q_bias``/``v_bias``, ``cpb_mlp``, ``logit_scale``), the layout of the
MiDaS v3.1 release files.
"""
import math
from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from .transformer_block import DropPath, Mlp

__all__ = ['PatchMerging', 'SwinV2Block', 'WindowAttention',
           'shifted_window_mask']


def _partition(x: Tensor, window: int) -> Tensor:
    """B×H×W×C → (B·nW)×(window²)×C."""
    batch, height, width, dim = x.shape
    x = x.view(batch, height // window, window, width // window, window, dim)
    return x.transpose(2, 3).reshape(-1, window * window, dim)


def _reverse(windows: Tensor, window: int, height: int,
             width: int) -> Tensor:
    """(B·nW)×(window²)×C → B×H×W×C."""
    dim = windows.shape[-1]
    x = windows.view(-1, height // window, width // window, window, window,
                     dim)
    return x.transpose(2, 3).reshape(-1, height, width, dim)


def shifted_window_mask(height: int, width: int, window: int, shift: int,
                        device: Optional[torch.device] = None) -> Tensor:
    """Additive mask that keeps a shifted window's regions apart.

    After the cyclic shift a window may hold pixels from up to 3×3 regions
    of the (padded) map; pairs from different regions get −100.

    Args:
        height (int): Padded map height (a multiple of ``window``).
        width (int): Padded map width.
        window (int): Window side.
        shift (int): Shift (> 0).
        device (torch.device, optional): Device of the mask.

    Returns:
        Tensor: nW×(window²)×(window²) mask of 0 and −100.
    """
    rows = torch.arange(height, device=device)
    cols = torch.arange(width, device=device)
    row_region = (rows >= height - window).long() + (rows >= height - shift)
    col_region = (cols >= width - window).long() + (cols >= width - shift)
    region = (row_region[:, None] * 3 + col_region[None, :]).float()
    region = _partition(region[None, :, :, None], window).squeeze(-1)
    diff = region[:, None, :] - region[:, :, None]
    return torch.zeros_like(diff).masked_fill(diff != 0, -100.0)


class WindowAttention(nn.Module):
    """Scaled cosine self-attention in one window with continuous bias.

    logits = cos(q, k) · min(exp(logit_scale), 100) + 16·sigmoid(cpb(Δ)),
    where Δ are the window's (row, column) offsets, scaled to ±8 by the
    pretraining window and log-spaced.

    Args:
        dim (int): Channels C.
        num_heads (int): Heads.
        window (int): Window side.
        pretrained_window (int): Window of pretraining (0: ``window``);
            normalises the offsets so a larger window extrapolates.
        qkv_bias (bool): Query and value biases (the key has none).
        attn_drop (float): Attention dropout.
        proj_drop (float): Output dropout.
    """

    def __init__(self,
                 dim: int,
                 num_heads: int,
                 window: int,
                 pretrained_window: int = 0,
                 qkv_bias: bool = True,
                 attn_drop: float = 0.0,
                 proj_drop: float = 0.0) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f'dim={dim} is not divisible by '
                             f'num_heads={num_heads}')
        self.num_heads = num_heads
        self.window = window
        self.attn_drop = attn_drop
        self.logit_scale = nn.Parameter(
            torch.log(10 * torch.ones(num_heads, 1, 1)))
        self.cpb_mlp = nn.Sequential(
            nn.Linear(2, 512), nn.ReLU(inplace=True),
            nn.Linear(512, num_heads, bias=False))
        self.qkv = nn.Linear(dim, dim * 3, bias=False)
        self.q_bias = nn.Parameter(torch.zeros(dim)) if qkv_bias else None
        self.v_bias = nn.Parameter(torch.zeros(dim)) if qkv_bias else None
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)
        table, index = self._coords(window, pretrained_window)
        self.register_buffer('relative_coords_table', table,
                             persistent=False)
        self.register_buffer('relative_position_index', index,
                             persistent=False)

    @staticmethod
    def _coords(window: int, pretrained: int) -> Tuple[Tensor, Tensor]:
        offsets = torch.arange(-(window - 1), window, dtype=torch.float32)
        table = torch.stack(torch.meshgrid(offsets, offsets, indexing='ij'),
                            dim=-1)
        norm = pretrained if pretrained > 0 else window
        if norm > 1:
            table = table / (norm - 1)
        table = table * 8
        table = torch.sign(table) * torch.log2(table.abs() + 1.0) / \
            math.log2(8)
        coords = torch.stack(torch.meshgrid(torch.arange(window),
                                            torch.arange(window),
                                            indexing='ij')).flatten(1)
        rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0)
        rel = rel + (window - 1)
        index = rel[..., 0] * (2 * window - 1) + rel[..., 1]
        return table, index

    def position_bias(self) -> Tensor:
        """heads×(window²)×(window²) continuous position bias."""
        table = self.cpb_mlp(self.relative_coords_table).view(
            -1, self.num_heads)
        area = self.window * self.window
        bias = table[self.relative_position_index.view(-1)].view(
            area, area, -1)
        return 16 * torch.sigmoid(bias.permute(2, 0, 1))

    def forward(self, x: Tensor, mask: Optional[Tensor] = None) -> Tensor:
        """Args:
            x (Tensor): (B·nW)×N×C window tokens, N = window².
            mask (Tensor, optional): nW×N×N additive mask.

        Returns:
            Tensor: (B·nW)×N×C.
        """
        batch, tokens, dim = x.shape
        # The key has no bias; module call, so a fast-path Linear applies.
        qkv = self.qkv(x)
        if self.q_bias is not None:
            qkv = qkv + torch.cat([self.q_bias, torch.zeros_like(self.q_bias),
                                   self.v_bias])
        qkv = qkv.reshape(batch, tokens, 3, self.num_heads, -1).permute(
            2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        scale = torch.clamp(self.logit_scale, max=math.log(100.0)).exp()
        q = F.normalize(q, dim=-1) * scale
        k = F.normalize(k, dim=-1)
        attn_bias = self.position_bias().unsqueeze(0).to(q.dtype)
        if mask is not None:
            num_windows = mask.shape[0]
            attn_bias = (attn_bias + mask[:, None].to(q.dtype)).repeat(
                batch // num_windows, 1, 1, 1)
        x = F.scaled_dot_product_attention(
            q, k, v, attn_mask=attn_bias, scale=1.0,
            dropout_p=self.attn_drop if self.training else 0.0)
        x = x.transpose(1, 2).reshape(batch, tokens, dim)
        return self.proj_drop(self.proj(x))


class SwinV2Block(nn.Module):
    """Res-post-norm Swin V2 block:
    ``x + norm1(attn(x))`` then ``x + norm2(mlp(x))``.

    The attention runs in (shifted) windows over the whole map: pad to
    whole windows, shift, partition, attend, then undo each step.

    Args:
        dim (int): Channels C.
        num_heads (int): Heads.
        window (int): Window side.
        shift (int): Cyclic shift (0 for even blocks, window // 2 for odd).
        pretrained_window (int): See :class:`WindowAttention`.
        mlp_ratio (float): MLP width / C.
        qkv_bias (bool): Query/value biases.
        norm_eps (float): LayerNorm eps (1e-5).
        drop (float): Dropout after projections.
        attn_drop (float): Attention dropout.
        drop_path (float): Stochastic depth rate.
    """

    def __init__(self, dim: int, num_heads: int, window: int, shift: int = 0,
                 pretrained_window: int = 0, mlp_ratio: float = 4.0,
                 qkv_bias: bool = True, norm_eps: float = 1e-5,
                 drop: float = 0.0, attn_drop: float = 0.0,
                 drop_path: float = 0.0) -> None:
        super().__init__()
        self.window = window
        self.shift = shift
        self.attn = WindowAttention(dim, num_heads, window, pretrained_window,
                                    qkv_bias, attn_drop, drop)
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop)
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: Tensor) -> Tensor:
        """Args: x (Tensor): B×H×W×C. Returns: Tensor: B×H×W×C."""
        x = x + self.drop_path(self.norm1(self.window_attention(x)))
        x = x + self.drop_path(self.norm2(self.mlp(x)))
        return x

    def window_attention(self, x: Tensor) -> Tensor:
        """Attention within (shifted) windows of a B×H×W×C map."""
        _, height, width, _ = x.shape
        window, shift = self.window, self.shift
        # Transformers pads to whole windows (zeros, attended unmasked).
        pad_h = (window - height % window) % window
        pad_w = (window - width % window) % window
        x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))
        padded_h, padded_w = height + pad_h, width + pad_w
        mask = None
        if shift > 0:
            x = torch.roll(x, shifts=(-shift, -shift), dims=(1, 2))
            mask = shifted_window_mask(padded_h, padded_w, window, shift,
                                       x.device)
        x = _reverse(self.attn(_partition(x, window), mask), window,
                     padded_h, padded_w)
        if shift > 0:
            x = torch.roll(x, shifts=(shift, shift), dims=(1, 2))
        return x[:, :height, :width].contiguous()


class PatchMerging(nn.Module):
    """2×2 neighbours → one token: concat (4C), Linear → 2C, LayerNorm.

    Odd sides are zero-padded at the bottom/right first.

    Args:
        dim (int): Input channels C.
        norm_eps (float): LayerNorm eps (1e-5).
    """

    def __init__(self, dim: int, norm_eps: float = 1e-5) -> None:
        super().__init__()
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(2 * dim, eps=norm_eps)

    def forward(self, x: Tensor) -> Tensor:
        """Args: x (Tensor): B×H×W×C. Returns: B×⌈H/2⌉×⌈W/2⌉×2C."""
        _, height, width, _ = x.shape
        x = F.pad(x, (0, 0, 0, width % 2, 0, height % 2))
        # timm 0.6 / Transformers order: (0,0), (1,0), (0,1), (1,1).
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2],
                       x[:, 0::2, 1::2], x[:, 1::2, 1::2]], dim=-1)
        return self.norm(self.reduction(x))

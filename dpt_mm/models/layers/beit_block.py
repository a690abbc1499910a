"""BEiT encoder block: relative position bias and layer scale (timm layout).

Names follow timm's ``beit.py`` (fused ``qkv`` weight with separate
``q_bias``/``v_bias``, ``gamma_1``/``gamma_2`` layer scales), the layout of
the MiDaS v3.1 release files, so their weights load by name.
"""
from functools import lru_cache
from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from .transformer_block import DropPath, Mlp

__all__ = ['BEiTAttention', 'BEiTBlock', 'RelativePositionBias',
           'relative_position_index']


def relative_position_index(grid: Tuple[int, int]) -> Tensor:
    """Index into the bias table for every (query, key) pair of a grid.

    The table holds (2h−1)(2w−1) patch-to-patch offsets, then three entries
    for class→patch, patch→class and class→class.

    Args:
        grid (tuple[int, int]): Patch grid (h, w).

    Returns:
        Tensor: (1+h·w)×(1+h·w) long indices; token 0 is the class token.
    """
    height, width = grid
    num_offsets = (2 * height - 1) * (2 * width - 1)
    coords = torch.stack(torch.meshgrid(torch.arange(height),
                                        torch.arange(width),
                                        indexing='ij')).flatten(1)
    rel = coords[:, :, None] - coords[:, None, :]
    patches = (rel[0] + height - 1) * (2 * width - 1) + rel[1] + width - 1
    # Built by concatenation, not item assignment, so that an ONNX trace
    # keeps the grid size symbolic.
    zero = torch.zeros_like(patches[:1])
    index = torch.cat([zero + num_offsets, patches])
    column = torch.cat([zero[:, :1] + num_offsets + 2,
                        torch.zeros_like(index[1:, :1]) + num_offsets + 1])
    return torch.cat([column, index], dim=1)


@lru_cache(maxsize=16)
def _cached_index(grid: Tuple[int, int], device: torch.device) -> Tensor:
    # Every block needs the same index for a grid: build it once per grid
    # and device, not 24 times a forward (Transformers caches it too).
    return relative_position_index(grid).to(device)


def _index_for(grid: Tuple[int, int], device: torch.device) -> Tensor:
    if torch.jit.is_tracing() or torch.compiler.is_compiling():
        # Traced and compiled graphs build it from the (symbolic) grid.
        return relative_position_index(grid).to(device)
    return _cached_index(tuple(int(g) for g in grid), device)


class RelativePositionBias(nn.Module):
    """BEiT's learned relative position bias, for any patch grid.

    The table is learned for the ``window`` grid; for another grid its
    patch-offset part is resized bilinearly (``align_corners=False``), as
    MiDaS v3.1 (``_get_rel_pos_bias``) and Transformers do, so non-square
    and other-size inputs work.

    Args:
        window (tuple[int, int]): Patch grid of the training size.
        num_heads (int): Attention heads (one bias per head).
    """

    def __init__(self, window: Tuple[int, int], num_heads: int) -> None:
        super().__init__()
        self.window = tuple(window)
        num_offsets = (2 * window[0] - 1) * (2 * window[1] - 1)
        self.relative_position_bias_table = nn.Parameter(
            torch.zeros(num_offsets + 3, num_heads))

    def forward(self, grid: Tuple[int, int]) -> Tensor:
        """Args:
            grid (tuple[int, int]): Patch grid (h, w) of the input.

        Returns:
            Tensor: 1×heads×(1+h·w)×(1+h·w) additive attention bias.
        """
        table = self.relative_position_bias_table
        old = (2 * self.window[0] - 1, 2 * self.window[1] - 1)
        new = (2 * grid[0] - 1, 2 * grid[1] - 1)
        offsets, cls_entries = table[:-3], table[-3:]
        # MiDaS/Transformers read the old table as (2w−1)×(2h−1); the
        # published windows are square, where both orders agree. At the
        # same size the resize is exact (and kept, so traces stay dynamic).
        offsets = offsets.reshape(1, old[1], old[0], -1).permute(0, 3, 1, 2)
        offsets = F.interpolate(offsets, size=new, mode='bilinear',
                                align_corners=False)
        offsets = offsets.permute(0, 2, 3, 1).reshape(new[0] * new[1], -1)
        table = torch.cat([offsets, cls_entries])
        index = _index_for(grid, table.device)
        num_tokens = grid[0] * grid[1] + 1
        # Gathered heads-first, so the bias comes out contiguous without a
        # permuted copy of its (1+h·w)² × heads entries.
        bias = table.t().contiguous()[:, index.view(-1)]
        return bias.view(1, -1, num_tokens, num_tokens)


class BEiTAttention(nn.Module):
    """Multi-head self-attention with BEiT's relative position bias.

    Args:
        dim (int): Token width D.
        num_heads (int): Heads; must divide ``dim``.
        window (tuple[int, int], optional): Training patch grid; gives the
            block its own :class:`RelativePositionBias` (None: no bias of
            its own, e.g. with a shared one).
        qkv_bias (bool): Learned query and value biases (the key has none).
        attn_drop (float): Attention-probability dropout in training.
        proj_drop (float): Output dropout in training.
    """

    def __init__(self,
                 dim: int,
                 num_heads: int,
                 window: Optional[Tuple[int, int]] = None,
                 qkv_bias: bool = True,
                 attn_drop: float = 0.0,
                 proj_drop: float = 0.0) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(
                f'embed_dims={dim} is not divisible by num_heads={num_heads}')
        self.num_heads = num_heads
        self.attn_drop = attn_drop
        self.qkv = nn.Linear(dim, dim * 3, bias=False)
        self.q_bias = nn.Parameter(torch.zeros(dim)) if qkv_bias else None
        self.v_bias = nn.Parameter(torch.zeros(dim)) if qkv_bias else None
        self.rel_pos_bias = RelativePositionBias(
            window, num_heads) if window is not None else None
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x: Tensor, grid: Tuple[int, int],
                shared_bias: Optional[Tensor] = None) -> Tensor:
        """Args:
            x (Tensor): B×(1+h·w)×D tokens, class token first.
            grid (tuple[int, int]): Patch grid (h, w).
            shared_bias (Tensor, optional): A bias shared by all blocks.

        Returns:
            Tensor: B×(1+h·w)×D.
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
        attn_bias = shared_bias
        if self.rel_pos_bias is not None:
            own = self.rel_pos_bias(grid).to(q.dtype)
            attn_bias = own if attn_bias is None else attn_bias + own
        x = F.scaled_dot_product_attention(
            q, k, v, attn_mask=attn_bias,
            dropout_p=self.attn_drop if self.training else 0.0)
        x = x.transpose(1, 2).reshape(batch, tokens, dim)
        return self.proj_drop(self.proj(x))


class BEiTBlock(nn.Module):
    """BEiT block: ``x + γ1·attn(norm1(x))`` then ``x + γ2·mlp(norm2(x))``.

    Args:
        dim (int): Token width D.
        num_heads (int): Attention heads.
        window (tuple[int, int], optional): See :class:`BEiTAttention`.
        mlp_ratio (float): MLP width / D.
        qkv_bias (bool): Query/value biases.
        norm_eps (float): LayerNorm eps (timm 1e-6, Transformers 1e-12).
        layer_scale_init (float): Initial γ; 0 disables layer scale.
        drop (float): Dropout after projections.
        attn_drop (float): Attention dropout.
        drop_path (float): Stochastic depth rate of this block.
    """

    def __init__(self,
                 dim: int,
                 num_heads: int,
                 window: Optional[Tuple[int, int]] = None,
                 mlp_ratio: float = 4.0,
                 qkv_bias: bool = True,
                 norm_eps: float = 1e-6,
                 layer_scale_init: float = 0.1,
                 drop: float = 0.0,
                 attn_drop: float = 0.0,
                 drop_path: float = 0.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = BEiTAttention(dim, num_heads, window, qkv_bias,
                                  attn_drop, drop)
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop)
        self.drop_path = DropPath(drop_path)
        if layer_scale_init > 0:
            self.gamma_1 = nn.Parameter(torch.full((dim, ), layer_scale_init))
            self.gamma_2 = nn.Parameter(torch.full((dim, ), layer_scale_init))
        else:
            self.gamma_1 = self.gamma_2 = None

    def forward(self, x: Tensor, grid: Tuple[int, int],
                shared_bias: Optional[Tensor] = None) -> Tensor:
        """Args:
            x (Tensor): B×(1+h·w)×D. grid: (h, w). shared_bias: optional.

        Returns:
            Tensor: B×(1+h·w)×D.
        """
        x = x + self.drop_path(_scale(self.gamma_1, self.attn(
            self.norm1(x), grid, shared_bias)))
        x = x + self.drop_path(_scale(self.gamma_2, self.mlp(self.norm2(x))))
        return x


def _scale(gamma: Optional[Tensor], x: Tensor) -> Tensor:
    return x if gamma is None else gamma * x

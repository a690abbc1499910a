"""Resizing learned ViT position embeddings to another patch grid.

A pure tensor function used by the backbones and by the timm weight
converter, so it sits below both (in utils).
"""
import math
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ['resize_pos_embed']


def resize_pos_embed(pos_embed: Tensor,
                     grid_size: Tuple[int, int],
                     num_prefix_tokens: int = 1,
                     src_grid_size: Optional[Tuple[int, int]] = None,
                     mode: str = 'bilinear',
                     antialias: bool = False) -> Tensor:
    """Resize the grid part of a position embedding, keeping prefix tokens.

    Matches the original DPT (``_resize_pos_embed``) and Transformers:
    bilinear interpolation with ``align_corners=False``, class token kept.
    DINOv2 in Transformers uses ``mode='bicubic'`` (and ``antialias=True``
    with registers), to the target grid size. At the native grid size the
    embedding is returned unchanged.

    Args:
        pos_embed (Tensor): 1×(P+N)×D embedding, P prefix tokens then the
            N = h×w grid tokens in row-major order.
        grid_size (tuple[int, int]): Target grid (h', w').
        num_prefix_tokens (int): Number of leading non-grid tokens (class
            token). Defaults to 1.
        src_grid_size (tuple[int, int], optional): Source grid; inferred as
            square when omitted.
        mode (str): ``'bilinear'`` (DPT) or ``'bicubic'`` (DINOv2).
        antialias (bool): Antialiased interpolation (DINOv2 with registers
            in Transformers).

    Returns:
        Tensor: 1×(P+h'×w')×D embedding.
    """
    prefix = pos_embed[:, :num_prefix_tokens]
    grid = pos_embed[:, num_prefix_tokens:]
    if src_grid_size is None:
        side = int(math.sqrt(grid.shape[1]))
        if side * side != grid.shape[1]:
            raise ValueError(
                f'cannot infer a square grid from {grid.shape[1]} position '
                'embedding tokens; pass src_grid_size')
        src_grid_size = (side, side)
    if tuple(src_grid_size) == tuple(grid_size):
        return pos_embed
    dim = grid.shape[-1]
    grid = grid.reshape(1, *src_grid_size, dim).permute(0, 3, 1, 2)
    # Interpolate in float32: bf16/fp16 bilinear weights lose precision.
    grid = F.interpolate(
        grid.float(), size=tuple(grid_size), mode=mode,
        align_corners=False, antialias=antialias).to(pos_embed.dtype)
    grid = grid.permute(0, 2, 3, 1).reshape(1, -1, dim)
    return torch.cat([prefix, grid], dim=1)

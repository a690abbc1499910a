"""DINOv2 backbone with DPT's hooks (DPT-DINOv2, Depth Anything V1/V2)."""
from typing import Dict, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmengine.model.weight_init import trunc_normal_
from torch import Tensor

from mmseg.registry import MODELS
from mmseg.utils import OptMultiConfig
from ...utils.arg_types import check_arg_types
from ..layers import DINOv2Block, checkpoint_if, resize_pos_embed
from ..layers.vit_args import ViTStagesMixin, check_vit_args
from .dpt_vit import PatchEmbed

__all__ = ['DPTDINOv2']

HookOutput = Union[Tensor, Tuple[Tensor, Tensor]]


@MODELS.register_module()
class DPTDINOv2(ViTStagesMixin, BaseModule):
    """DINOv2 ViT (patch 14, layer scale) returning its hooked blocks.

    The output format is :class:`DPTViT`'s: per hook a ``(B×D×h×w patch
    map, B×D class token)`` pair (or the map alone with
    ``output_cls_token=False``), so :class:`DPTNeck` reads it unchanged.
    Register tokens, when present, sit between the class token and the
    patches and are in neither output. The position embeddings are resized
    to the input's patch grid as Transformers' ``Dinov2Embeddings`` does it:
    bicubic to the target size, ``align_corners=False``, in float32
    (antialiased in ``Dinov2WithRegistersEmbeddings``).

    Args:
        img_size (int | tuple[int, int]): Size the position embeddings were
            learned at (518 = 37 × 14 for DINOv2 and Depth Anything).
        patch_size (int): Patch size (14).
        in_channels (int): Image channels.
        embed_dims (int): Token width D (384 S, 768 B, 1024 L, 1536 g).
        num_layers (int): Blocks (12 S/B, 24 L, 40 g).
        num_heads (int): Attention heads (6 S, 12 B, 16 L, 24 g).
        mlp_ratio (float): MLP width / D (4).
        qkv_bias (bool): Bias in the qkv projection.
        norm_eps (float): LayerNorm eps (1e-6).
        layer_scale_init (float): Initial layer-scale value.
        ffn_type (str): ``'mlp'`` (S/B/L) or ``'swiglu'`` (g).
        num_register_tokens (int): Register tokens (0, or 4 for DINOv2
            with registers).
        pos_embed_antialias (bool): Antialiased bicubic resizing of the
            position embeddings (Transformers' DINOv2 with registers).
        pos_embed_interp_offset (float): 0 resizes the position grid to the
            target size (Transformers). The original DINOv2 code, and so
            the Depth Anything release, passes a scale factor
            (grid + 0.1) / table size instead, which places the samples
            slightly differently: 0.1 reproduces it.
        out_indices (Sequence[int]): 0-based hooked blocks, e.g. Depth
            Anything S/B (8, 9, 10, 11), L (20, 21, 22, 23); DPT-DINOv2 S/B
            (2, 5, 8, 11).
        norm_outputs (bool): Apply the final LayerNorm to every hooked
            output (Transformers ``apply_layernorm``; the original
            ``get_intermediate_layers(norm=True)``).
        output_cls_token (bool): Return ``(map, class token)`` pairs.
        drop_rate (float): Dropout after projections and embeddings.
        attn_drop_rate (float): Attention dropout.
        drop_path_rate (float): Stochastic depth of the last block
            (linearly increasing from 0).
        with_cp (bool): Gradient checkpointing per block in training.
        frozen_stages (int): -1 trains all; 0 freezes the embeddings; k > 0
            also freezes the first k blocks.
        init_cfg (dict | list[dict], optional): Initialisation config.
    """

    embedding_params = ('cls_token', 'pos_embed', 'register_tokens')

    def __init__(self,
                 img_size: Union[int, Tuple[int, int]] = 518,
                 patch_size: int = 14,
                 in_channels: int = 3,
                 embed_dims: int = 384,
                 num_layers: int = 12,
                 num_heads: int = 6,
                 mlp_ratio: float = 4.0,
                 qkv_bias: bool = True,
                 norm_eps: float = 1e-6,
                 layer_scale_init: float = 1.0,
                 ffn_type: str = 'mlp',
                 num_register_tokens: int = 0,
                 pos_embed_antialias: bool = False,
                 pos_embed_interp_offset: float = 0.0,
                 out_indices: Sequence[int] = (8, 9, 10, 11),
                 norm_outputs: bool = True,
                 output_cls_token: bool = True,
                 drop_rate: float = 0.0,
                 attn_drop_rate: float = 0.0,
                 drop_path_rate: float = 0.0,
                 with_cp: bool = False,
                 frozen_stages: int = -1,
                 init_cfg: OptMultiConfig = None) -> None:
        check_arg_types(self, DPTDINOv2.__init__, locals())
        super().__init__(init_cfg=init_cfg)
        img_size, out_indices = check_vit_args(
            type(self).__name__, img_size, patch_size, num_layers, out_indices,
            frozen_stages)
        self.img_size = img_size
        self.patch_size = patch_size
        self.embed_dims = embed_dims
        self.num_layers = num_layers
        self.out_indices = out_indices
        self.num_register_tokens = num_register_tokens
        self.pos_embed_antialias = pos_embed_antialias
        if pos_embed_interp_offset and pos_embed_antialias:
            raise ValueError('pos_embed_interp_offset (the original DINOv2 '
                             'resize) has no antialiased form')
        self.pos_embed_interp_offset = pos_embed_interp_offset
        self.norm_outputs = norm_outputs
        self.output_cls_token = output_cls_token
        self.with_cp = with_cp
        self.frozen_stages = frozen_stages

        self.patch_embed = PatchEmbed(in_channels, embed_dims, patch_size)
        self.pos_grid = (img_size[0] // patch_size, img_size[1] // patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dims))
        self.pos_embed = nn.Parameter(
            torch.zeros(1, 1 + self.pos_grid[0] * self.pos_grid[1],
                        embed_dims))
        self.register_tokens = nn.Parameter(
            torch.zeros(1, num_register_tokens, embed_dims)
        ) if num_register_tokens else None
        self.drop_after_pos = nn.Dropout(drop_rate)
        rates = [drop_path_rate * i / max(num_layers - 1, 1)
                 for i in range(num_layers)]
        self.layers = nn.ModuleList([
            DINOv2Block(embed_dims, num_heads, mlp_ratio, qkv_bias, norm_eps,
                        layer_scale_init, ffn_type, drop_rate,
                        attn_drop_rate, rates[i]) for i in range(num_layers)
        ])
        # Only the hooked outputs are normed: without that, no norm at all.
        self.norm = nn.LayerNorm(embed_dims, eps=norm_eps) \
            if norm_outputs else None
        self._freeze_stages()

    def init_weights(self) -> None:
        """DINOv2's init (truncated normal 0.02) unless ``init_cfg``."""
        if self.init_cfg is not None:
            return super().init_weights()
        trunc_normal_(self.pos_embed, std=0.02)
        trunc_normal_(self.cls_token, std=0.02)
        self.init_block_weights()

    def embed(self, x: Tensor) -> Tuple[Tensor, Tuple[int, int]]:
        """Image → [class, registers, patches] tokens with positions.

        Args:
            x (Tensor): B×C×H×W normalised image, H and W multiples of the
                patch size.

        Returns:
            tuple: B×(1+R+h·w)×D tokens and the patch grid (h, w).
        """
        height, width = x.shape[-2:]
        if height % self.patch_size or width % self.patch_size:
            raise ValueError(
                f'DPTDINOv2: input {height}×{width} is not a multiple of the '
                f'patch size {self.patch_size}; resize or pad it (mmseg: '
                f'SegDataPreProcessor(size_divisor={self.patch_size}))')
        tokens, grid, _ = self.patch_embed(x)
        cls_token = self.cls_token.expand(tokens.shape[0], -1, -1)
        tokens = torch.cat([cls_token, tokens], dim=1)
        tokens = tokens + self.resized_pos_embed(grid)
        if self.register_tokens is not None:
            # Registers carry no position: added after the embeddings.
            registers = self.register_tokens.expand(tokens.shape[0], -1, -1)
            tokens = torch.cat([tokens[:, :1], registers, tokens[:, 1:]],
                               dim=1)
        return self.drop_after_pos(tokens), grid

    def resized_pos_embed(self, grid: Tuple[int, int]) -> Tensor:
        """The 1×(1+h·w)×D position embedding for a patch grid (h, w)."""
        offset = self.pos_embed_interp_offset
        if offset == 0 or tuple(grid) == self.pos_grid:
            return resize_pos_embed(
                self.pos_embed, grid, 1, self.pos_grid, mode='bicubic',
                antialias=self.pos_embed_antialias)
        rows, cols = self.pos_grid
        table = self.pos_embed[:, 1:].float().reshape(1, rows, cols, -1)
        # F.interpolate(scale_factor=(grid + offset) / table) places its
        # bicubic samples at (i + 0.5) * table / (grid + offset) - 0.5; the
        # same samples through grid_sample (border-clamped taps, as
        # interpolate's) keep the grid a tensor when tracing, so ONNX
        # export stays dynamic in size. A traced graph also meets the
        # native grid: no offset there makes the samples the table itself.
        native = (torch.as_tensor(grid[0]) == rows) & (
            torch.as_tensor(grid[1]) == cols)
        offset = offset * (~native).float()

        def positions(size, src: int) -> Tensor:
            dst = torch.arange(size, device=table.device).float()
            return ((dst + 0.5) * (src / (size + offset)) * 2) / src - 1

        ys, xs = positions(grid[0], rows), positions(grid[1], cols)
        where = torch.stack(torch.meshgrid(xs, ys, indexing='xy'), dim=-1)
        table = F.grid_sample(table.permute(0, 3, 1, 2), where[None],
                              mode='bicubic', padding_mode='border',
                              align_corners=False)
        table = table.permute(0, 2, 3, 1).flatten(1, 2)
        return torch.cat([self.pos_embed[:, :1], table.to(self.pos_embed)],
                         dim=1)

    def forward(self, x: Tensor) -> Tuple[HookOutput, ...]:
        """Args:
            x (Tensor): B×C×H×W normalised image.

        Returns:
            tuple: Per hook, in ``out_indices`` order, a ``(B×D×h×w, B×D)``
            pair (the map alone if ``output_cls_token`` is False), h = H/14.
        """
        tokens, grid = self.embed(x)
        hooked: Dict[int, HookOutput] = {}
        for idx, layer in enumerate(self.layers):
            tokens = checkpoint_if(
                self.with_cp and self.training and tokens.requires_grad,
                layer, tokens)
            if idx in self.out_indices:
                hooked[idx] = self._to_map(tokens, grid)
        return tuple(hooked[idx] for idx in self.out_indices)

    def _to_map(self, tokens: Tensor, grid: Tuple[int, int]) -> HookOutput:
        if self.norm is not None:
            tokens = self.norm(tokens)
        batch, _, dim = tokens.shape
        patches = tokens[:, 1 + self.num_register_tokens:]
        feat = patches.transpose(1, 2).reshape(batch, dim, *grid)
        return (feat, tokens[:, 0]) if self.output_cls_token else feat

"""BEiT backbone with DPT's hooks (MiDaS v3.1 BEiT-L/16 512 and 384,
BEiT-B/16 384)."""
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
from ..layers import checkpoint_if
from ..layers.beit_block import BEiTBlock, RelativePositionBias
from ..layers.vit_args import ViTStagesMixin, check_vit_args
from .dpt_vit import HookOutput, PatchEmbed

__all__ = ['DPTBEiT']


@MODELS.register_module()
class DPTBEiT(ViTStagesMixin, BaseModule):
    """BEiT that returns the outputs of DPT's hooked blocks.

    The hook format is :class:`DPTViT`'s: a ``(B×D×h×w map, B×D class
    token)`` pair per hooked block (plain maps with
    ``output_cls_token=False``), so :class:`DPTNeck` reads it unchanged.
    Positions come from a relative position bias per block (and/or one
    shared by all blocks), resized to the input's patch grid, so any input
    whose sides are multiples of the patch size runs, square or not. The
    MiDaS v3.1 models have no absolute position embedding; when enabled it
    is resized bicubically, as in Transformers' ``BeitEmbeddings``.

    Args:
        img_size (int | tuple[int, int]): Training size (512 or 384); sets
            the bias table's grid.
        patch_size (int): Patch size (16).
        in_channels (int): Image channels.
        embed_dims (int): Token width D (768 BEiT-B, 1024 BEiT-L).
        num_layers (int): Blocks (12 BEiT-B, 24 BEiT-L).
        num_heads (int): Attention heads (12 BEiT-B, 16 BEiT-L).
        mlp_ratio (float): MLP width / D.
        qkv_bias (bool): Query and value biases.
        norm_eps (float): LayerNorm eps: 1e-6 timm (MiDaS release), 1e-12
            Transformers.
        layer_scale_init (float): Initial layer scale γ (timm 1e-5 for
            BEiT-L, 0.1 Transformers' default); 0 disables it.
        use_rel_pos_bias (bool): A relative position bias in every block.
        use_shared_rel_pos_bias (bool): One bias shared by all blocks.
        use_abs_pos_embed (bool): A learned absolute position embedding.
        out_indices (Sequence[int]): 0-based hooked blocks (BEiT-L
            (5, 11, 17, 23), BEiT-B (2, 5, 8, 11)).
        drop_rate (float): Dropout after projections and embeddings.
        attn_drop_rate (float): Attention dropout.
        drop_path_rate (float): Stochastic-depth rate of the last block.
        with_cp (bool): Gradient checkpointing per block in training.
        frozen_stages (int): -1 trains all; 0 freezes the embeddings; k > 0
            also freezes the first k blocks.
        output_cls_token (bool): Return ``(map, class token)`` pairs.
        init_cfg (dict | list[dict], optional): Initialisation config.
    """

    def __init__(self,
                 img_size: Union[int, Tuple[int, int]] = 384,
                 patch_size: int = 16,
                 in_channels: int = 3,
                 embed_dims: int = 768,
                 num_layers: int = 12,
                 num_heads: int = 12,
                 mlp_ratio: float = 4.0,
                 qkv_bias: bool = True,
                 norm_eps: float = 1e-6,
                 layer_scale_init: float = 0.1,
                 use_rel_pos_bias: bool = True,
                 use_shared_rel_pos_bias: bool = False,
                 use_abs_pos_embed: bool = False,
                 out_indices: Sequence[int] = (2, 5, 8, 11),
                 drop_rate: float = 0.0,
                 attn_drop_rate: float = 0.0,
                 drop_path_rate: float = 0.0,
                 with_cp: bool = False,
                 frozen_stages: int = -1,
                 output_cls_token: bool = True,
                 init_cfg: OptMultiConfig = None) -> None:
        check_arg_types(self, DPTBEiT.__init__, locals())
        super().__init__(init_cfg=init_cfg)
        img_size, out_indices = check_vit_args(
            type(self).__name__, img_size, patch_size, num_layers, out_indices,
            frozen_stages)
        self.img_size = img_size
        self.patch_size = patch_size
        self.embed_dims = embed_dims
        self.num_layers = num_layers
        self.out_indices = out_indices
        self.with_cp = with_cp
        self.frozen_stages = frozen_stages
        self.output_cls_token = output_cls_token
        self.pos_grid = (img_size[0] // patch_size, img_size[1] // patch_size)

        self.patch_embed = PatchEmbed(in_channels, embed_dims, patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dims))
        self.pos_embed = nn.Parameter(
            torch.zeros(1, 1 + self.pos_grid[0] * self.pos_grid[1],
                        embed_dims)) if use_abs_pos_embed else None
        self.drop_after_pos = nn.Dropout(drop_rate)
        self.rel_pos_bias = RelativePositionBias(
            self.pos_grid, num_heads) if use_shared_rel_pos_bias else None
        rates = [drop_path_rate * i / max(num_layers - 1, 1)
                 for i in range(num_layers)]
        window = self.pos_grid if use_rel_pos_bias else None
        self.layers = nn.ModuleList([
            BEiTBlock(embed_dims, num_heads, window, mlp_ratio, qkv_bias,
                      norm_eps, layer_scale_init, drop_rate, attn_drop_rate,
                      rates[i]) for i in range(num_layers)
        ])
        self._freeze_stages()

    def init_weights(self) -> None:
        """timm BEiT init (trunc-normal linears) unless ``init_cfg``."""
        if self.init_cfg is not None:
            return super().init_weights()
        trunc_normal_(self.cls_token, std=0.02)
        if self.pos_embed is not None:
            trunc_normal_(self.pos_embed, std=0.02)
        self.init_block_weights()

    def embed(self, x: Tensor) -> Tuple[Tensor, Tuple[int, int]]:
        """Image → B×(1+h·w)×D tokens (class token first) and the grid."""
        height, width = x.shape[-2:]
        if height % self.patch_size or width % self.patch_size:
            raise ValueError(
                f'DPTBEiT: input {height}×{width} is not a multiple of the '
                f'patch size {self.patch_size}; resize or pad '
                '(mmseg: SegDataPreProcessor(size_divisor=32))')
        tokens, grid, _ = self.patch_embed(x)
        cls_token = self.cls_token.expand(tokens.shape[0], -1, -1)
        tokens = torch.cat([cls_token, tokens], dim=1)
        if self.pos_embed is not None:
            tokens = tokens + self._resized_pos_embed(grid)
        return self.drop_after_pos(tokens), grid

    def _resized_pos_embed(self, grid: Tuple[int, int]) -> Tensor:
        if tuple(grid) == self.pos_grid:
            return self.pos_embed
        dim = self.embed_dims
        patch = self.pos_embed[:, 1:].reshape(1, *self.pos_grid, dim)
        patch = F.interpolate(patch.permute(0, 3, 1, 2), size=tuple(grid),
                              mode='bicubic', align_corners=False)
        patch = patch.permute(0, 2, 3, 1).reshape(1, -1, dim)
        return torch.cat([self.pos_embed[:, :1], patch], dim=1)

    def forward(self, x: Tensor) -> Tuple[HookOutput, ...]:
        """Args:
            x (Tensor): B×C×H×W normalised image.

        Returns:
            tuple: One ``(B×D×h×w, B×D)`` pair (or map) per hooked block,
            in ``out_indices`` order; h = H/16, w = W/16.
        """
        tokens, grid = self.embed(x)
        shared = self.rel_pos_bias(grid).to(tokens.dtype) \
            if self.rel_pos_bias is not None else None
        hooked: Dict[int, HookOutput] = {}
        for idx, layer in enumerate(self.layers):
            tokens = checkpoint_if(
                self.with_cp and self.training and tokens.requires_grad,
                layer, tokens, grid, shared)
            if idx in self.out_indices:
                hooked[idx] = self._to_map(tokens, grid)
        return tuple(hooked[idx] for idx in self.out_indices)

    def _to_map(self, tokens: Tensor, grid: Tuple[int, int]) -> HookOutput:
        batch, _, dim = tokens.shape
        feat = tokens[:, 1:].transpose(1, 2).reshape(batch, dim, *grid)
        return (feat, tokens[:, 0]) if self.output_cls_token else feat

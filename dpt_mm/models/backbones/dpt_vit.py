"""Plain ViT backbone with DPT's hooks (ViT-B/16, ViT-L/16)."""
from typing import Dict, List, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmengine.model import BaseModule
from mmengine.model.weight_init import trunc_normal_
from torch import Tensor

from mmseg.registry import MODELS
from mmseg.utils import OptMultiConfig
from ...utils.arg_types import check_arg_types
from ..layers import TransformerBlock, checkpoint_if, resize_pos_embed
from ..layers.vit_args import ViTStagesMixin, check_vit_args

__all__ = ['DPTViT']

HookOutput = Union[Tensor, Tuple[Tensor, Tensor]]


class PatchEmbed(nn.Module):
    """Non-overlapping patches → tokens through a strided conv."""

    def __init__(self, in_channels: int, embed_dims: int,
                 patch_size: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_channels, embed_dims, patch_size,
                              stride=patch_size)

    def forward(self, x: Tensor) -> Tuple[Tensor, Tuple[int, int],
                                          List[Tensor]]:
        x = self.proj(x)
        return x.flatten(2).transpose(1, 2), tuple(x.shape[-2:]), []


@MODELS.register_module()
class DPTViT(ViTStagesMixin, BaseModule):
    """Vision Transformer that returns the outputs of DPT's hooked blocks.

    Each hooked block's tokens are returned as a ``(B×D×h×w patch-token map,
    B×D class token)`` pair, the format of mmseg's
    ``VisionTransformer(output_cls_token=True)``, so any neck can read them.
    Position embeddings are resized (bilinear, class token kept) to the
    input's patch grid, square or not.

    Args:
        img_size (int | tuple[int, int]): Size the position embeddings were
            learned at (384 for the published DPT models).
        patch_size (int): Patch size (16).
        in_channels (int): Image channels.
        embed_dims (int): Token width D (768 ViT-B, 1024 ViT-L).
        num_layers (int): Number of blocks (12 ViT-B, 24 ViT-L).
        num_heads (int): Attention heads (12 ViT-B, 16 ViT-L).
        mlp_ratio (float): MLP width / D.
        qkv_bias (bool): Bias in the qkv projection (True in all published
            models).
        norm_eps (float): LayerNorm eps: 1e-6 original DPT/timm, 1e-12
            Transformers, 1e-5 mmseg's ViT.
        out_indices (Sequence[int]): 0-based blocks to hook (DPT-B
            (2, 5, 8, 11), DPT-L (5, 11, 17, 23)), returned in this order;
            a block may be hooked more than once (as in Transformers).
        drop_rate (float): Dropout after projections and embeddings.
        attn_drop_rate (float): Attention dropout.
        drop_path_rate (float): Stochastic-depth rate of the last block
            (linearly increasing from 0).
        with_cp (bool): Gradient checkpointing per block in training.
        frozen_stages (int): -1 trains all; 0 freezes the embeddings; k > 0
            also freezes the first k blocks.
        output_cls_token (bool): Return ``(map, class token)`` pairs (for
            DPTNeck's readout); False returns plain B×D×h×w maps, the input
            of mmseg's ``MultiLevelNeck`` + ``UPerHead``.
        init_cfg (dict | list[dict], optional): e.g.
            ``dict(type='Pretrained', checkpoint=..., prefix='backbone.')``.
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
                 out_indices: Sequence[int] = (2, 5, 8, 11),
                 drop_rate: float = 0.0,
                 attn_drop_rate: float = 0.0,
                 drop_path_rate: float = 0.0,
                 with_cp: bool = False,
                 frozen_stages: int = -1,
                 output_cls_token: bool = True,
                 init_cfg: OptMultiConfig = None) -> None:
        # A wrong type (embed_dims='768') would fail deep inside torch.
        check_arg_types(self, DPTViT.__init__, locals())
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

        self.patch_embed = self._build_patch_embed(in_channels)
        self.pos_grid = (img_size[0] // patch_size, img_size[1] // patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dims))
        self.pos_embed = nn.Parameter(
            torch.zeros(1, 1 + self.pos_grid[0] * self.pos_grid[1],
                        embed_dims))
        self.drop_after_pos = nn.Dropout(drop_rate)
        # Linearly increasing stochastic depth (plain Python: no tensor is
        # made, so the model also builds on the meta device).
        rates = [drop_path_rate * i / max(num_layers - 1, 1)
                 for i in range(num_layers)]
        self.layers = nn.ModuleList([
            TransformerBlock(embed_dims, num_heads, mlp_ratio, qkv_bias,
                             norm_eps, drop_rate, attn_drop_rate, rates[i])
            for i in range(num_layers)
        ])
        self._freeze_stages()

    def _build_patch_embed(self, in_channels: int) -> nn.Module:
        return PatchEmbed(in_channels, self.embed_dims, self.patch_size)

    def init_weights(self) -> None:
        """timm ViT init unless ``init_cfg`` loads pretrained weights.

        ``init_cfg=dict(type='Pretrained', checkpoint=...)`` without a
        ``prefix`` loads a backbone file strictly: mmengine's Pretrained
        init is ``strict=False``, which would start training from a half-
        loaded encoder after a mere warning.
        """
        if self.init_cfg is not None:
            cfg = self.init_cfg
            if cfg.get('type') == 'Pretrained' and cfg.get('prefix') is None:
                from ...converters.timm import load_backbone_checkpoint
                return load_backbone_checkpoint(self, cfg['checkpoint'])
            return super().init_weights()
        trunc_normal_(self.pos_embed, std=0.02)
        trunc_normal_(self.cls_token, std=0.02)
        self.init_block_weights()

    def embed(self, x: Tensor) -> Tuple[Tensor, Tuple[int, int],
                                        List[Tensor]]:
        """Image → tokens with class token and position embeddings.

        Args:
            x (Tensor): B×C×H×W normalised image, H and W multiples of the
                patch size.

        Returns:
            tuple: B×(1+h·w)×D tokens, the grid (h, w), and any stem feature
            maps (the hybrid's ResNet stages; empty for a plain ViT).
        """
        height, width = x.shape[-2:]
        if height % self.patch_size or width % self.patch_size:
            raise ValueError(
                f'{type(self).__name__}: input {height}×{width} is not a '
                f'multiple of the patch size {self.patch_size}; resize or pad '
                '(mmseg: SegDataPreProcessor(size_divisor=32))')
        tokens, grid, stem_feats = self.patch_embed(x)
        cls_token = self.cls_token.expand(tokens.shape[0], -1, -1)
        tokens = torch.cat([cls_token, tokens], dim=1)
        pos_embed = resize_pos_embed(self.pos_embed, grid, 1, self.pos_grid)
        return self.drop_after_pos(tokens + pos_embed), grid, stem_feats

    def forward(self, x: Tensor) -> Tuple[HookOutput, ...]:
        """Args:
            x (Tensor): B×C×H×W normalised image.

        Returns:
            tuple: One entry per hook, in order: a ``(B×D×h×w, B×D)`` pair
            for each hooked block (just the map if ``output_cls_token`` is
            False), h = H/16, w = W/16.
        """
        tokens, grid, stem_feats = self.embed(x)
        hooked: Dict[int, HookOutput] = {}
        for idx, layer in enumerate(self.layers):
            tokens = checkpoint_if(
                self.with_cp and self.training and tokens.requires_grad,
                layer, tokens)
            if idx in self.out_indices:
                hooked[idx] = self._to_map(tokens, grid)
        return tuple(self.stem_outputs(stem_feats)) + tuple(
            hooked[idx] for idx in self.out_indices)

    def stem_outputs(self, stem_feats: List[Tensor]) -> List[Tensor]:
        """Stem feature maps that are hooks too (none for a plain ViT)."""
        return []

    def _to_map(self, tokens: Tensor, grid: Tuple[int, int]) -> HookOutput:
        batch, _, dim = tokens.shape
        feat = tokens[:, 1:].transpose(1, 2).reshape(batch, dim, *grid)
        return (feat, tokens[:, 0]) if self.output_cls_token else feat

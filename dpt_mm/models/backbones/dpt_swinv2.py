"""Swin Transformer V2 backbone for DPT (MiDaS v3.1 Swin2-L/B 384,
Swin2-T 256)."""
from typing import List, Sequence, Tuple

import torch.nn as nn
from mmengine.model import BaseModule
from mmengine.model.weight_init import trunc_normal_
from torch import Tensor

from mmseg.registry import MODELS
from mmseg.utils import OptMultiConfig
from ...utils.arg_types import check_arg_types
from ..layers import checkpoint_if
from ..layers.swinv2_block import PatchMerging, SwinV2Block

__all__ = ['DPTSwinV2']


class SwinPatchEmbed(nn.Module):
    """Patches → B×h×w×C tokens: strided conv, then LayerNorm (eps 1e-5).

    Sides that are not multiples of the patch size are zero-padded at the
    bottom/right, as in Transformers.
    """

    def __init__(self, in_channels: int, embed_dims: int,
                 patch_size: int) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_channels, embed_dims, patch_size,
                              stride=patch_size)
        self.norm = nn.LayerNorm(embed_dims)

    def forward(self, x: Tensor) -> Tensor:
        height, width = x.shape[-2:]
        p = self.patch_size
        x = nn.functional.pad(x, (0, (p - width % p) % p, 0,
                                  (p - height % p) % p))
        return self.norm(self.proj(x).permute(0, 2, 3, 1))


@MODELS.register_module()
class DPTSwinV2(BaseModule):
    """Swin V2 whose stage maps feed DPT's neck directly.

    Swin is hierarchical: its four stages already give maps at 1/4, 1/8,
    1/16 and 1/32 of the input, so, as in MiDaS v3.1 and Transformers,
    there is no readout or reassembly: each hooked stage's output (after its
    last block, before patch merging, no extra norm) is returned as a plain
    B×C×h×w map, finest first. Pair it with
    ``DPTNeck(passthrough_indices=(0, 1, 2, 3))``.

    Blocks are numbered through all stages in ``layers`` (layer-wise lr
    decay and checkpointing see one sequence); ``downsamples[s]`` merges
    patches after stage s.

    Window sizes are fixed by ``img_size`` as in Transformers: a stage whose
    training grid is not larger than ``window_size`` uses its whole grid as
    the window and no shift. Other input sizes, square or not, are padded to
    whole windows.

    Args:
        img_size (int): Training size (384 or 256).
        patch_size (int): Patch size (4).
        in_channels (int): Image channels.
        embed_dims (int): Channels of stage 0 (doubling per stage): 96 T,
            128 B, 192 L.
        depths (Sequence[int]): Blocks per stage: (2, 2, 6, 2) T,
            (2, 2, 18, 2) B/L.
        num_heads (Sequence[int]): Heads per stage.
        window_size (int): Window side (16 T, 24 B/L).
        pretrained_window_sizes (Sequence[int]): Pretraining window per
            stage, normalising the position-bias offsets: (12, 12, 12, 6)
            B/L (192 → 384 fine-tuning), (0, 0, 0, 0) T.
        mlp_ratio (float): MLP width / C.
        qkv_bias (bool): Query/value biases.
        norm_eps (float): LayerNorm eps of the blocks (1e-5).
        out_indices (Sequence[int]): Stages returned (0..3).
        drop_rate (float): Dropout after projections.
        attn_drop_rate (float): Attention dropout.
        drop_path_rate (float): Stochastic depth of the last block
            (linear from 0 over all blocks).
        with_cp (bool): Gradient checkpointing per block in training.
        frozen_stages (int): -1 trains all; 0 freezes the patch embedding;
            k > 0 also freezes stages 0..k−1 and their merging.
        init_cfg (dict | list[dict], optional): Initialisation config.
    """

    def __init__(self,
                 img_size: int = 384,
                 patch_size: int = 4,
                 in_channels: int = 3,
                 embed_dims: int = 192,
                 depths: Sequence[int] = (2, 2, 18, 2),
                 num_heads: Sequence[int] = (6, 12, 24, 48),
                 window_size: int = 24,
                 pretrained_window_sizes: Sequence[int] = (12, 12, 12, 6),
                 mlp_ratio: float = 4.0,
                 qkv_bias: bool = True,
                 norm_eps: float = 1e-5,
                 out_indices: Sequence[int] = (0, 1, 2, 3),
                 drop_rate: float = 0.0,
                 attn_drop_rate: float = 0.0,
                 drop_path_rate: float = 0.0,
                 with_cp: bool = False,
                 frozen_stages: int = -1,
                 init_cfg: OptMultiConfig = None) -> None:
        check_arg_types(self, DPTSwinV2.__init__, locals())
        super().__init__(init_cfg=init_cfg)
        num_stages = len(depths)
        if not len(num_heads) == len(pretrained_window_sizes) == num_stages:
            raise ValueError(
                'DPTSwinV2: depths, num_heads and pretrained_window_sizes '
                f'need one entry per stage, got {len(depths)}, '
                f'{len(num_heads)}, {len(pretrained_window_sizes)}')
        out_indices = tuple(out_indices)
        bad = [i for i in out_indices if not 0 <= i < num_stages]
        if bad:
            raise ValueError(f'DPTSwinV2: out_indices {bad} out of range for '
                             f'{num_stages} stages (0-based)')
        if not -1 <= frozen_stages <= num_stages:
            raise ValueError(f'DPTSwinV2: frozen_stages={frozen_stages} must '
                             f'be in [-1, {num_stages}]')
        self.out_indices = out_indices
        self.with_cp = with_cp
        self.frozen_stages = frozen_stages
        self.depths = tuple(depths)
        self.num_layers = sum(depths)
        self.channels = tuple(embed_dims * 2**s for s in range(num_stages))
        self.patch_embed = SwinPatchEmbed(in_channels, embed_dims, patch_size)
        self.drop_after_pos = nn.Dropout(drop_rate)
        rates = [drop_path_rate * i / max(self.num_layers - 1, 1)
                 for i in range(self.num_layers)]
        grid = img_size // patch_size
        blocks: List[nn.Module] = []
        for stage, depth in enumerate(depths):
            resolution = grid // 2**stage
            # Transformers: a grid no larger than the window is one window.
            window = min(resolution, window_size)
            shift = 0 if resolution <= window else window_size // 2
            for j in range(depth):
                blocks.append(SwinV2Block(
                    self.channels[stage], num_heads[stage], window,
                    shift if j % 2 else 0, pretrained_window_sizes[stage],
                    mlp_ratio, qkv_bias, norm_eps, drop_rate, attn_drop_rate,
                    rates[len(blocks)]))
        self.layers = nn.ModuleList(blocks)
        self.downsamples = nn.ModuleList(
            [PatchMerging(c) for c in self.channels[:-1]])
        self._freeze_stages()

    @property
    def stage_ends(self) -> Tuple[int, ...]:
        """0-based index of the last block of each stage."""
        ends, total = [], 0
        for depth in self.depths:
            total += depth
            ends.append(total - 1)
        return tuple(ends)

    def init_weights(self) -> None:
        """timm Swin init (trunc-normal linears) unless ``init_cfg``."""
        if self.init_cfg is not None:
            return super().init_weights()
        for module in [*self.layers.modules(), *self.downsamples.modules()]:
            if isinstance(module, nn.Linear):
                trunc_normal_(module.weight, std=0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def _freeze_stages(self) -> None:
        if self.frozen_stages < 0:
            return
        num_frozen = sum(self.depths[:self.frozen_stages])
        frozen = [self.patch_embed, *self.layers[:num_frozen],
                  *self.downsamples[:self.frozen_stages]]
        for module in frozen:
            module.eval()
            for param in module.parameters():
                param.requires_grad = False

    def train(self, mode: bool = True) -> 'DPTSwinV2':
        super().train(mode)
        self._freeze_stages()
        return self

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        """Args:
            x (Tensor): B×C×H×W normalised image.

        Returns:
            tuple[Tensor]: One B×C_s×h_s×w_s map per stage in
            ``out_indices``, h_0 = ⌈H/4⌉ and halving (rounded up) per stage.
        """
        x = self.drop_after_pos(self.patch_embed(x))
        ends = self.stage_ends
        outs = []
        stage = 0
        for idx, layer in enumerate(self.layers):
            x = checkpoint_if(
                self.with_cp and self.training and x.requires_grad, layer, x)
            if idx == ends[stage]:
                if stage in self.out_indices:
                    outs.append(x.permute(0, 3, 1, 2).contiguous())
                if stage < len(self.downsamples):
                    x = self.downsamples[stage](x)
                stage += 1
        return tuple(outs)

"""ViT-Hybrid backbone of DPT-Hybrid: BiT ResNet-50 stem + ViT-B/16."""
from typing import List, Sequence, Tuple

import torch.nn as nn
from torch import Tensor

from mmseg.registry import MODELS
from ...utils.arg_types import check_arg_types
from ..layers import BiTResNet
from .dpt_vit import DPTViT

__all__ = ['DPTViTHybrid']


class HybridEmbed(nn.Module):
    """ResNet trunk → 1×1 projection of its last map → tokens (patch 1).

    Key names follow timm (``patch_embed.backbone.*``, ``patch_embed.proj``).
    """

    def __init__(self, backbone: BiTResNet, embed_dims: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.proj = nn.Conv2d(backbone.out_channels[-1], embed_dims, 1)

    def forward(self, x: Tensor) -> Tuple[Tensor, Tuple[int, int],
                                          List[Tensor]]:
        feats = self.backbone(x)
        x = self.proj(feats[-1])
        return x.flatten(2).transpose(1, 2), tuple(x.shape[-2:]), feats


@MODELS.register_module()
class DPTViTHybrid(DPTViT):
    """DPT-Hybrid backbone: the first hooks come from the ResNet stages.

    The returned tuple holds the ResNet stage maps named by
    ``stem_out_indices`` (plain B×C×H×W tensors at 1/4 and 1/8, no class
    token), then a ``(map, class token)`` pair for each block in
    ``out_indices``. The original passes hooks ``[0, 1, 8, 11]``, where the
    first two are placeholders for the ResNet stages.

    Args:
        stem_channels (int): ResNet stem width (64).
        stem_depths (Sequence[int]): Bottlenecks per stage, (3, 4, 9).
        stem_widths (Sequence[int]): Stage widths, (256, 512, 1024).
        stem_out_indices (Sequence[int]): Stages returned as hooks, (0, 1).
        ws_eps (float): Weight-standardisation eps (1e-8 Transformers,
            1e-5 with ``ws_mode='std'`` for timm 0.4.5, the original).
        ws_mode (str): ``'var'`` or ``'std'``, see ``StdConv2dSame``.
        norm_groups (int): GroupNorm groups in the ResNet (32).
        out_indices (Sequence[int]): Hooked transformer blocks, (8, 11).
        **kwargs: Everything else of :class:`DPTViT`; ``patch_size`` is the
            stem's total stride (16).
    """

    def __init__(self,
                 stem_channels: int = 64,
                 stem_depths: Sequence[int] = (3, 4, 9),
                 stem_widths: Sequence[int] = (256, 512, 1024),
                 stem_out_indices: Sequence[int] = (0, 1),
                 ws_eps: float = 1e-8,
                 ws_mode: str = 'var',
                 norm_groups: int = 32,
                 out_indices: Sequence[int] = (8, 11),
                 **kwargs) -> None:
        check_arg_types(self, DPTViTHybrid.__init__, locals())
        bad = [i for i in stem_out_indices if not 0 <= i < len(stem_depths)]
        if bad:
            raise ValueError(f'stem_out_indices {bad} out of range for '
                             f'{len(stem_depths)} ResNet stages')
        self._stem_args = dict(stem_channels=stem_channels,
                               depths=tuple(stem_depths),
                               widths=tuple(stem_widths), ws_eps=ws_eps,
                               ws_mode=ws_mode, norm_groups=norm_groups)
        self.stem_out_indices = tuple(stem_out_indices)
        super().__init__(out_indices=out_indices, **kwargs)

    def _build_patch_embed(self, in_channels: int) -> nn.Module:
        resnet = BiTResNet(in_channels, **self._stem_args)
        stride = 4 * 2**(len(resnet.out_channels) - 1)
        if stride != self.patch_size:
            raise ValueError(
                f'the ResNet stem has stride {stride} but patch_size is '
                f'{self.patch_size}; they must agree for the position grid')
        return HybridEmbed(resnet, self.embed_dims)

    def init_weights(self) -> None:
        super().init_weights()
        if self.init_cfg is None:
            for module in self.patch_embed.modules():
                if isinstance(module, nn.Conv2d):
                    nn.init.kaiming_normal_(module.weight, mode='fan_out',
                                            nonlinearity='relu')

    def stem_outputs(self, stem_feats: List[Tensor]) -> List[Tensor]:
        return [stem_feats[i] for i in self.stem_out_indices]

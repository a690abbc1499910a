"""DPT fusion: pre-activation residual conv units and fusion blocks."""
from typing import Optional, Tuple

import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_norm_layer
from torch import Tensor

from mmseg.utils import OptConfigType
from .checkpoint import checkpoint_if

__all__ = ['ResidualConvUnit', 'FeatureFusionBlock']


class ResidualConvUnit(nn.Module):
    """``x + [BN]conv(ReLU([BN]conv(ReLU(x))))`` with 3×3 convs.

    Args:
        channels (int): Width.
        norm_cfg (dict, optional): Norm after each conv (segmentation
            models use BatchNorm, depth models none).
        bias (bool, optional): Conv bias; by default only without norm,
            the rule of the original models.
    """

    def __init__(self, channels: int, norm_cfg: OptConfigType = None,
                 bias: Optional[bool] = None) -> None:
        super().__init__()
        bias = norm_cfg is None if bias is None else bias
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=bias)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=bias)
        if norm_cfg is not None:
            self.norm1 = build_norm_layer(norm_cfg, channels)[1]
            self.norm2 = build_norm_layer(norm_cfg, channels)[1]
        else:
            self.norm1 = self.norm2 = None

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv1(F.relu(x))
        if self.norm1 is not None:
            out = self.norm1(out)
        # In place: neither the conv nor BatchNorm needs its output in
        # backward, so the activation needs no new map.
        out = self.conv2(F.relu(out, inplace=True))
        if self.norm2 is not None:
            out = self.norm2(out)
        return out + x


class FeatureFusionBlock(nn.Module):
    """One fusion stage: ``x + RCU1(lateral)`` → RCU2 → ×2 → 1×1 conv.

    (Computed as RCU2 → 1×1 conv → ×2, which is the same function.)

    Args:
        channels (int): Fusion width (256 in all published models).
        with_lateral (bool): Whether a lateral input is fused. The deepest
            block has none; the originals still carry unused RCU1 weights
            there, which the converters drop.
        norm_cfg (dict, optional): Norm inside the residual units.
        bias (bool, optional): Residual-unit conv bias (see
            :class:`ResidualConvUnit`).
        align_corners (bool): Of the ×2 bilinear upsampling (True in DPT).
    """

    def __init__(self, channels: int, with_lateral: bool = True,
                 norm_cfg: OptConfigType = None, bias: Optional[bool] = None,
                 align_corners: bool = True) -> None:
        super().__init__()
        self.residual_unit1 = ResidualConvUnit(
            channels, norm_cfg, bias) if with_lateral else None
        self.residual_unit2 = ResidualConvUnit(channels, norm_cfg, bias)
        self.out_conv = nn.Conv2d(channels, channels, 1)
        self.align_corners = align_corners

    def forward(self, x: Tensor, lateral: Optional[Tensor] = None,
                checkpoint_lateral: bool = False,
                size: Optional[Tuple[int, int]] = None) -> Tensor:
        """Args:
            x (Tensor): B×C×h×w, the deeper stage's output (or the deepest
                reassembled map for the first block).
            lateral (Tensor, optional): B×C×h×w reassembled map of this
                level; resized to ``x`` if an odd grid made sizes differ.
            checkpoint_lateral (bool): Recompute ``residual_unit1`` in
                backward (in training, with autograd recording). Nested in
                a checkpoint of the whole block, it keeps the unit's four
                saved maps from living through ``residual_unit2``'s
                backward.
            size (tuple[int, int], optional): Upsample to this size instead
                of ×2 (Depth Anything: the next finer level's size).

        Returns:
            Tensor: B×C×2h×2w, or B×C×``size``.
        """
        if lateral is not None:
            if self.residual_unit1 is None:
                raise ValueError('this fusion block was built without a '
                                 'lateral input (with_lateral=False)')
            if lateral.shape[-2:] != x.shape[-2:]:
                lateral = F.interpolate(lateral, size=x.shape[-2:],
                                        mode='bilinear', align_corners=False)
            x = x + checkpoint_if(checkpoint_lateral and self.training,
                                  self.residual_unit1, lateral,
                                  norms=self.residual_unit1)
        x = self.residual_unit2(x)
        # The published order is ×2 then out_conv. A 1×1 conv is affine per
        # pixel and bilinear weights sum to 1, so the two commute: same
        # function, a quarter of the conv's FLOPs, and in training its
        # 2×-resolution input is not kept for backward.
        x = self.out_conv(x)
        if size is not None:
            return F.interpolate(x, size=size, mode='bilinear',
                                 align_corners=self.align_corners)
        return F.interpolate(x, scale_factor=2, mode='bilinear',
                             align_corners=self.align_corners)

"""DPT neck: reassemble hooked tokens at four resolutions, then fuse."""
from typing import List, Optional, Sequence, Tuple, Union

import torch.nn as nn
from mmengine.model import BaseModule
from torch import Tensor

from mmseg.registry import MODELS
from mmseg.utils import OptConfigType, OptMultiConfig
from ...utils.arg_types import check_arg_types
from ..layers import FeatureFusionBlock, ReassembleBlock, checkpoint_if

__all__ = ['DPTNeck']


@MODELS.register_module()
class DPTNeck(BaseModule):
    """Reassemble + fusion of DPT, task-agnostic.

    Data path per level i (0 = finest): readout → 1×1 conv to
    ``reassemble_channels[i]`` → resample by ``resample_factors[i]`` → 3×3
    conv (no bias) to ``channels``. Fusion then runs deepest first:
    f3 = Fuse(r3), f2 = Fuse(f3, r2), f1 = Fuse(f2, r1), f0 = Fuse(f1, r0),
    each ending in bilinear ×2 (``align_corners=True``).

    Args:
        in_channels (int | Sequence[int]): Channels of each backbone output
            (D for ViT hooks; the hybrid's ResNet maps have 256 and 512).
        reassemble_channels (Sequence[int]): Channels after the 1×1
            projection: DPT-B (96, 192, 384, 768), DPT-L (256, 512, 1024,
            1024), DPT-Hybrid (256, 512, 768, 768).
        resample_factors (Sequence[float]): (4, 2, 1, 0.5) for 1/16 tokens →
            1/4, 1/8, 1/16, 1/32.
        readout_type (str): ``ignore``, ``add`` or ``project``.
        passthrough_indices (Sequence[int]): Levels whose inputs are already
            image maps at the right scale and width (the hybrid's ResNet
            stages, ``(0, 1)``): no readout, projection or resampling.
        channels (int): Fusion width (256).
        fusion_norm_cfg (dict, optional): Norm in the residual conv units:
            ``dict(type='BN')`` (or SyncBN) in segmentation models, None in
            depth models.
        fusion_bias (bool, optional): Residual-unit conv bias; default: bias
            iff no norm (the originals' rule).
        align_corners (bool): Of the fusion upsampling.
        upsample_to_lateral (bool): Each fusion block but the finest
            upsamples to the next finer level's map size instead of ×2
            (Depth Anything; the same maps wherever ×2 fits, and no lateral
            resizing when a grid is odd).
        with_cp (bool): Gradient checkpointing of each level's reassemble
            and fusion block in training: at high resolution the neck, not
            the transformer, holds most activations. The finest block also
            recomputes its lateral residual unit on its own (nested), so
            that its backward holds one unit's activations at a time.
            BatchNorm running statistics move once per step, as without
            checkpointing (the recomputations restore them).
        init_cfg (dict | list[dict], optional): Initialisation config.

    Inputs are the backbone's tuple: ``(map, class token)`` pairs or plain
    maps. Outputs are the four fused maps, finest first, at 1/2, 1/4, 1/8
    and 1/16 of the input, each B×channels×h×w: heads take index 0.
    """

    def __init__(self,
                 in_channels: Union[int, Sequence[int]] = 768,
                 reassemble_channels: Sequence[int] = (96, 192, 384, 768),
                 resample_factors: Sequence[float] = (4, 2, 1, 0.5),
                 readout_type: str = 'project',
                 passthrough_indices: Sequence[int] = (),
                 channels: int = 256,
                 fusion_norm_cfg: OptConfigType = None,
                 fusion_bias: Optional[bool] = None,
                 align_corners: bool = True,
                 upsample_to_lateral: bool = False,
                 with_cp: bool = False,
                 init_cfg: OptMultiConfig = None) -> None:
        # reassemble_channels=256 would fail as "int has no len()".
        check_arg_types(self, DPTNeck.__init__, locals())
        super().__init__(init_cfg=init_cfg)
        num_levels = len(reassemble_channels)
        if isinstance(in_channels, int):
            in_channels = [in_channels] * num_levels
        if not len(in_channels) == len(resample_factors) == num_levels:
            raise ValueError(
                'DPTNeck: in_channels, reassemble_channels and '
                'resample_factors must have one entry per level, got '
                f'{len(in_channels)}, {num_levels}, {len(resample_factors)}')
        passthrough = set(passthrough_indices)
        for i in passthrough:
            if in_channels[i] != reassemble_channels[i]:
                raise ValueError(
                    f'DPTNeck: passthrough level {i} has in_channels '
                    f'{in_channels[i]} but reassemble_channels '
                    f'{reassemble_channels[i]}; they must be equal')
        self.in_channels = tuple(in_channels)
        self.num_levels = num_levels
        self.with_cp = with_cp
        self.channels = channels
        self.upsample_to_lateral = upsample_to_lateral
        self.reassemble_blocks = nn.ModuleList([
            nn.Identity() if i in passthrough else ReassembleBlock(
                in_channels[i], reassemble_channels[i], resample_factors[i],
                readout_type) for i in range(num_levels)
        ])
        self.lateral_convs = nn.ModuleList([
            nn.Conv2d(c, channels, 3, padding=1, bias=False)
            for c in reassemble_channels
        ])
        self.fusion_blocks = nn.ModuleList([
            FeatureFusionBlock(channels, i < num_levels - 1, fusion_norm_cfg,
                               fusion_bias, align_corners)
            for i in range(num_levels)
        ])

    def forward(self, inputs: Sequence) -> Tuple[Tensor, ...]:
        """Args:
            inputs (Sequence): One backbone output per level, finest first.

        Returns:
            tuple[Tensor]: Fused maps, finest (1/2) first.
        """
        if len(inputs) != self.num_levels:
            raise ValueError(f'DPTNeck expects {self.num_levels} inputs '
                             f'(one per hook), got {len(inputs)}')
        laterals = [
            self._run(lambda x, i=i: self.lateral_convs[i](
                self.reassemble_blocks[i](x)), inputs[i])
            for i in range(self.num_levels)
        ]
        fused: List[Tensor] = []
        x = self._run(self.fusion_blocks[-1], laterals[-1], None, False,
                      self._target_size(laterals, self.num_levels - 1))
        fused.append(x)
        for i in range(self.num_levels - 2, -1, -1):
            # The finest block's maps are 4× the next level's: its backward
            # (both units' activations) was the checkpointed step's peak.
            x = self._run(self.fusion_blocks[i], x, laterals[i],
                          i == 0 and self.with_cp,
                          self._target_size(laterals, i))
            fused.append(x)
        return tuple(reversed(fused))

    def _target_size(self, laterals: List[Tensor],
                     level: int) -> Optional[Tuple[int, int]]:
        """Output size of fusion block ``level``; None means ×2."""
        if not self.upsample_to_lateral or level == 0:
            return None
        return tuple(laterals[level - 1].shape[-2:])

    def _run(self, fn, *args):
        """Call ``fn``, recomputing it in backward when ``with_cp``."""
        return checkpoint_if(self.with_cp and self.training, fn, *args,
                             norms=self)

"""DPT monocular depth head for mmseg 1.x's ``DepthEstimator``."""
from typing import List, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.models.utils import resize
from mmseg.registry import MODELS
from mmseg.utils import ConfigType, SampleList

__all__ = ['DPTDepthHead']

OUTPUT_MODES = ('inverse_depth', 'metric_from_inverse', 'depth',
                'bounded_depth')


@MODELS.register_module()
class DPTDepthHead(BaseDecodeHead):
    """conv3×3 → ×2 → conv3×3 → ReLU → conv1×1 → ReLU, non-negative output.

    The layer widths are C → C/2 → ``channels`` (32) → 1, with bilinear ×2
    (``align_corners=True``) after the first conv: from the 1/2-resolution
    fused map to the input resolution.

    Output modes (``output_mode``):

    * ``'inverse_depth'``: the raw non-negative output, relative inverse
      depth as in the MiDaS models (``Intel/dpt-large``).
    * ``'metric_from_inverse'``: depth = 1 / max(scale·out + shift, 1e-8),
      the NYU (scale 0.000305, shift 0.1378) and KITTI (6.016e-5, 0.00579)
      models of the original release.
    * ``'depth'``: the output is metric depth directly.
    * ``'bounded_depth'``: depth = ``max_depth`` · sigmoid(out) instead of
      the final ReLU, Depth Anything's metric models (20 m indoor, 80 m
      outdoor).

    ``min_depth``/``max_depth`` clamp predictions at test time only, so
    training gradients are never cut.

    Args:
        in_channels (int): Fusion width (256).
        channels (int): Width before the last 1×1 conv (32).
        mid_channels (int, optional): Width after the first conv; default
            ``in_channels // 2``.
        add_projection (bool): Extra conv3×3 + ReLU before the head (used by
            some later DPT variants; Transformers' ``add_projection``).
        upsample_factor (float): Of the bilinear upsampling after the first
            conv: 2 for DPT (the 1/2-resolution map to the input size);
            1.75 for Depth Anything, whose finest fused map is 8 × the
            patch grid and whose output is 14 × the grid (patch 14). With
            ``align_corners=True`` only the output size matters.
        output_mode (str): See above.
        depth_scale (float): Scale for ``metric_from_inverse``.
        depth_shift (float): Shift for ``metric_from_inverse``.
        min_depth (float, optional): Test-time lower clamp.
        max_depth (float, optional): Test-time upper clamp; the scale of
            ``'bounded_depth'``.
        in_index (int): Which neck output to read (0 = finest fused map).
        loss_decode (dict | list[dict]): Depth losses, called as
            ``loss(pred, gt)`` with B×1×H×W tensors at the label size.
        **kwargs: Other :class:`BaseDecodeHead` arguments.
    """

    def __init__(self,
                 in_channels: int = 256,
                 channels: int = 32,
                 mid_channels: Optional[int] = None,
                 add_projection: bool = False,
                 upsample_factor: float = 2.0,
                 output_mode: str = 'inverse_depth',
                 depth_scale: float = 1.0,
                 depth_shift: float = 0.0,
                 min_depth: Optional[float] = None,
                 max_depth: Optional[float] = None,
                 in_index: int = 0,
                 loss_decode: ConfigType = dict(
                     type='ScaleShiftInvariantLoss'),
                 **kwargs) -> None:
        if output_mode not in OUTPUT_MODES:
            raise ValueError(f'DPTDepthHead: output_mode must be one of '
                             f'{OUTPUT_MODES}, got {output_mode!r}')
        if output_mode == 'bounded_depth' and max_depth is None:
            raise ValueError("DPTDepthHead: output_mode='bounded_depth' "
                             'needs max_depth (its sigmoid scale)')
        kwargs.setdefault('dropout_ratio', 0.0)
        # num_classes/out_channels/threshold are segmentation notions of the
        # base class: one output channel, threshold unused for depth.
        super().__init__(
            in_channels,
            channels,
            num_classes=1,
            out_channels=1,
            threshold=0.0,
            in_index=in_index,
            loss_decode=loss_decode,
            **kwargs)
        mid_channels = mid_channels or in_channels // 2
        self.projection = nn.Conv2d(in_channels, in_channels, 3,
                                 padding=1) if add_projection else None
        self.conv1 = nn.Conv2d(in_channels, mid_channels, 3, padding=1)
        self.conv2 = nn.Conv2d(mid_channels, channels, 3, padding=1)
        self.upsample_factor = upsample_factor
        self.output_mode = output_mode
        self.depth_scale = depth_scale
        self.depth_shift = depth_shift
        self.min_depth = min_depth
        self.max_depth = max_depth

    @property
    def depth_type(self) -> str:
        """``'inverse_depth'`` (relative output) or ``'depth'`` (metric)."""
        return ('inverse_depth' if self.output_mode == 'inverse_depth' else
                'depth')

    def forward(self, inputs: Sequence[Tensor]) -> Tensor:
        """Args:
            inputs (Sequence[Tensor]): Neck outputs; ``inputs[in_index]`` is
                B×C×H/2×W/2.

        Returns:
            Tensor: B×1×H×W prediction in the space of ``output_mode``.
        """
        x = self._transform_inputs(inputs)
        if self.projection is not None:
            x = F.relu(self.projection(x))
        x = self.conv1(x)
        x = F.interpolate(x, scale_factor=self.upsample_factor,
                          mode='bilinear', align_corners=True)
        x = F.relu(self.conv2(x))
        if self.output_mode == 'bounded_depth':
            return self.max_depth * torch.sigmoid(self.cls_seg(x))
        out = F.relu(self.cls_seg(x))
        if self.output_mode == 'metric_from_inverse':
            out = 1.0 / torch.clamp(
                self.depth_scale * out + self.depth_shift, min=1e-8)
        return out

    def _stack_batch_gt(self, batch_data_samples: SampleList) -> Tensor:
        if not all('gt_depth_map' in s for s in batch_data_samples):
            raise KeyError(
                'DPTDepthHead needs `gt_depth_map` in every data sample: '
                'load depth with LoadDepthAnnotation / LoadDepthMap and pack '
                'it with PackSegInputs')
        return torch.stack(
            [s.gt_depth_map.data for s in batch_data_samples], dim=0)

    def loss_by_feat(self, pred_depth_map: Tensor,
                     batch_data_samples: SampleList) -> dict:
        """Compute every loss of ``loss_decode`` at the label size.

        Args:
            pred_depth_map (Tensor): B×1×h×w head output.
            batch_data_samples (list[SegDataSample]): With ``gt_depth_map``.

        Returns:
            dict[str, Tensor]: Loss name → value (summed if repeated).
        """
        gt = self._stack_batch_gt(batch_data_samples).to(pred_depth_map)
        if pred_depth_map.shape[-2:] != gt.shape[-2:]:
            pred_depth_map = resize(pred_depth_map, size=gt.shape[-2:],
                                    mode='bilinear',
                                    align_corners=self.align_corners)
        losses = dict()
        loss_modules = self.loss_decode if isinstance(
            self.loss_decode, nn.ModuleList) else [self.loss_decode]
        for loss_module in loss_modules:
            value = loss_module(pred_depth_map, gt)
            name = loss_module.loss_name
            losses[name] = losses[name] + value if name in losses else value
        return losses

    def predict_by_feat(self, seg_logits: Tensor,
                        batch_img_metas: List[dict]) -> Tensor:
        """Resize to the padded input size and apply the depth clamps."""
        depth = super().predict_by_feat(seg_logits, batch_img_metas)
        if self.min_depth is not None or self.max_depth is not None:
            depth = depth.clamp(min=self.min_depth, max=self.max_depth)
        return depth

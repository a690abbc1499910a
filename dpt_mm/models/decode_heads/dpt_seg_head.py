"""DPT semantic segmentation head."""
from typing import Sequence

import torch.nn as nn
from mmcv.cnn import ConvModule
from torch import Tensor

from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.registry import MODELS
from ..layers import checkpoint_if
from .fused_loss import ChunkedLossMixin

__all__ = ['DPTSegHead']


@MODELS.register_module()
class DPTSegHead(ChunkedLossMixin, BaseDecodeHead):
    """conv3×3 (no bias) → BN → ReLU → Dropout → conv1×1 → bilinear ×2.

    Reads the finest fused map (1/2 resolution) and returns logits at the
    input resolution. The auxiliary head of the published models is
    mmseg's ``FCNHead(num_convs=1, concat_input=False)`` on the same map
    (Transformers, weight 0.4) or on the penultimate one (paper, 0.2).

    Args:
        in_channels (int): Fusion width (256).
        channels (int): Width of the 3×3 conv (256).
        num_classes (int): Number of classes (150 for ADE20K).
        dropout_ratio (float): Element-wise dropout before the classifier
            (0.1; ``nn.Dropout`` as in the originals, not the
            ``Dropout2d`` of mmseg's base class).
        norm_cfg (dict): Norm after the 3×3 conv (BN; SyncBN multi-GPU).
        in_index (int): Which neck output to read (0 = finest).
        with_cp (bool): Gradient checkpointing of the conv, BN, ReLU,
            dropout and classifier in training (``torch.utils.checkpoint``;
            BatchNorm's running statistics move once per step).
        chunked_loss (bool): See :class:`ChunkedLossMixin` (default True);
            in training the final ×2 upsample then runs band by band
            inside the loss when it reaches the label size.
        **kwargs: Other :class:`BaseDecodeHead` arguments.
    """

    def __init__(self,
                 in_channels: int = 256,
                 channels: int = 256,
                 dropout_ratio: float = 0.1,
                 norm_cfg: dict = dict(type='BN', requires_grad=True),
                 in_index: int = 0,
                 with_cp: bool = False,
                 **kwargs) -> None:
        super().__init__(in_channels, channels, dropout_ratio=dropout_ratio,
                         norm_cfg=norm_cfg, in_index=in_index, **kwargs)
        self.with_cp = with_cp
        self.conv = ConvModule(in_channels, channels, 3, padding=1,
                               conv_cfg=self.conv_cfg, norm_cfg=norm_cfg,
                               act_cfg=self.act_cfg)
        self.dropout = nn.Dropout(dropout_ratio) if dropout_ratio > 0 \
            else None
        self.upsample = nn.Upsample(scale_factor=2, mode='bilinear',
                                    align_corners=True)

    def logits(self, inputs: Sequence[Tensor]) -> Tensor:
        """Args:
            inputs (Sequence[Tensor]): Neck outputs.

        Returns:
            Tensor: B×num_classes×h×w logits at the fused map's resolution.
        """
        x = self._transform_inputs(inputs)
        return checkpoint_if(self.with_cp and self.training,
                             lambda t: self.cls_seg(self.conv(t)), x,
                             norms=self.conv)

    def forward(self, inputs: Sequence[Tensor]) -> Tensor:
        """Args:
            inputs (Sequence[Tensor]): Neck outputs.

        Returns:
            Tensor: B×num_classes×H×W logits at the input resolution.
        """
        return self.upsample(self.logits(inputs))

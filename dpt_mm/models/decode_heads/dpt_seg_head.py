"""DPT semantic segmentation head."""
from typing import Sequence

import torch
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from torch import Tensor

from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.registry import MODELS
from mmseg.utils import ConfigType, SampleList
from ..layers import Dropout, conv_classifier
from .fused_loss import ChunkedLossMixin

__all__ = ['DPTSegHead']


@MODELS.register_module()
class DPTSegHead(ChunkedLossMixin, BaseDecodeHead):
    """conv3×3 (no bias) → BN → ReLU → Dropout → conv1×1 → bilinear ×2.

    Reads the finest fused map (1/2 resolution) and returns logits at the
    input resolution. The auxiliary head of the published models is
    mmseg's ``FCNHead(num_convs=1, concat_input=False)`` on the same map
    (Transformers, weight 0.4) or on the penultimate one (paper, 0.2); our
    configs use :class:`DPTFCNHead`, the same head with the chunked loss.

    In training the ×2 upsample, mmseg's resize to the label size and the
    cross-entropy are one chunked step when the labels are exactly twice
    the 1/2-resolution logits (:class:`ChunkedLossMixin`), so logits at
    the input resolution are never held.

    Args:
        in_channels (int): Fusion width (256).
        channels (int): Width of the 3×3 conv (256).
        num_classes (int): Number of classes (150 for ADE20K).
        dropout_ratio (float): Element-wise dropout before the classifier
            (0.1; element-wise as in the originals, not ``Dropout2d``;
            :class:`~dpt_mm.models.layers.Dropout`, whose CPU mask is
            drawn by a faster generator than ``nn.Dropout``'s).
        norm_cfg (dict): Norm after the 3×3 conv (BN; SyncBN multi-GPU).
        in_index (int): Which neck output to read (0 = finest).
        with_cp (bool): Gradient checkpointing of the 3×3 conv, BN, ReLU,
            dropout and classifier in training: only the input map is kept
            and backward recomputes the rest
            (:func:`~dpt_mm.models.layers.checkpoint_conv_classifier`;
            BatchNorm's running statistics move once per step; the
            dropout mask is replayed from the saved RNG state, drawn per
            band, so it differs from the mask of ``with_cp=False`` under
            the same seed). Other norms (SyncBN included), activations,
            bf16 or autocast fall back to ``torch.utils.checkpoint``.
        chunked_loss (bool): See :class:`ChunkedLossMixin` (default True).
        conv_cfg (dict, optional): The 3×3 conv's type; by default
            ``DPTConv2d`` (:class:`~dpt_mm.models.layers.Conv2d`: the same
            function, a faster CPU weight gradient), ``dict(type='Conv2d')``
            for ``nn.Conv2d``.
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
        kwargs['conv_cfg'] = kwargs.get('conv_cfg') or dict(type='DPTConv2d')
        super().__init__(in_channels, channels, dropout_ratio=dropout_ratio,
                         norm_cfg=norm_cfg, in_index=in_index, **kwargs)
        self.with_cp = with_cp
        self.conv = ConvModule(in_channels, channels, 3, padding=1,
                               conv_cfg=self.conv_cfg, norm_cfg=norm_cfg,
                               act_cfg=self.act_cfg)
        self.dropout = Dropout(dropout_ratio) if dropout_ratio > 0 \
            else None

    def half_res_logits(self, inputs: Sequence[Tensor]) -> Tensor:
        """Logits before the final ×2 upsample.

        Args:
            inputs (Sequence[Tensor]): Neck outputs.

        Returns:
            Tensor: B×num_classes×h×w logits at the read map's resolution.
        """
        return conv_classifier(self.conv, self.dropout, self.conv_seg,
                               self._transform_inputs(inputs),
                               with_cp=self.with_cp and self.training)

    def forward(self, inputs: Sequence[Tensor]) -> Tensor:
        """Args:
            inputs (Sequence[Tensor]): Neck outputs.

        Returns:
            Tensor: B×num_classes×H×W logits at the input resolution.
        """
        return F.interpolate(self.half_res_logits(inputs), scale_factor=2,
                             mode='bilinear', align_corners=True)

    def loss(self, inputs: Sequence[Tensor], batch_data_samples: SampleList,
             train_cfg: ConfigType) -> dict:
        """Losses of mmseg's ``forward`` → ``loss_by_feat``.

        When the chunked loss applies and the labels are exactly twice the
        size of the 1/2-resolution logits (mmseg's resize to the label size
        is then the identity), the ×2 ``align_corners=True`` upsample is
        done inside the chunked cross-entropy.

        Args:
            inputs (Sequence[Tensor]): Neck outputs.
            batch_data_samples (list[SegDataSample]): With ``gt_sem_seg``.
            train_cfg (dict): The training config (unused, as in mmseg).

        Returns:
            dict[str, Tensor]: mmseg's loss dict (``loss_ce``, ``acc_seg``).
        """
        logits = self.half_res_logits(inputs)
        losses = self.chunked_ce_losses()
        seg_label = self._stack_batch_gt(batch_data_samples).squeeze(1)
        if losses is None or tuple(seg_label.shape[-2:]) != (
                2 * logits.shape[-2], 2 * logits.shape[-1]):
            logits = F.interpolate(logits, scale_factor=2, mode='bilinear',
                                   align_corners=True)
            return self.loss_by_feat(logits, batch_data_samples)
        self.check_labels(batch_data_samples)
        return self.chunked_loss_by_feat(logits, seg_label, losses,
                                         align_corners=True)

    def check_labels(self, batch_data_samples: SampleList) -> None:
        """Raise, naming the annotation file, on a label out of range.

        A label outside ``[0, num_classes)`` that is not the ignore index
        would crash deep inside the loss without saying where it came from.

        Args:
            batch_data_samples (list[SegDataSample]): With ``gt_sem_seg``.
        """
        for sample in batch_data_samples:
            labels = sample.gt_sem_seg.data
            bad = (labels >= self.num_classes) & (labels != self.ignore_index)
            if bad.any() or (labels < 0).any():
                values = torch.unique(labels[bad | (labels < 0)]).tolist()
                source = sample.metainfo.get(
                    'seg_map_path', sample.metainfo.get('img_path', '?'))
                raise ValueError(
                    f'{source}: label values {values[:10]} are outside '
                    f'[0, {self.num_classes}) and not the ignore index '
                    f'{self.ignore_index} (check num_classes, '
                    'reduce_zero_label and the annotation file; '
                    'tools/misc/check_dataset.py lists every such file)')

    def loss_by_feat(self, seg_logits: Tensor,
                     batch_data_samples: SampleList) -> dict:
        """Cross-entropy etc. as mmseg's, after :meth:`check_labels`.

        Args:
            seg_logits (Tensor): B×num_classes×H×W output of ``forward``.
            batch_data_samples (list[SegDataSample]): With ``gt_sem_seg``.

        Returns:
            dict[str, Tensor]: mmseg's loss dict.
        """
        self.check_labels(batch_data_samples)
        return super().loss_by_feat(seg_logits, batch_data_samples)

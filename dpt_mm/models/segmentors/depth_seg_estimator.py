"""One backbone and neck feeding a segmentation and a depth head."""
from typing import List

from torch import Tensor

from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from mmseg.utils import (ConfigType, OptConfigType, OptMultiConfig,
                         OptSampleList, SampleList, add_prefix)
from ..check import check_model_config
from ..layers.postprocess import (network_multiple, pad_to_multiple,
                                  postprocess_depth)
from .dpt_encoder_decoder import DPTEncoderDecoder

__all__ = ['DepthSegEstimator']


@MODELS.register_module()
class DepthSegEstimator(DPTEncoderDecoder):
    """Joint semantic segmentation and depth on shared features.

    ``decode_head`` (and ``auxiliary_head``) are the segmentation heads of
    :class:`EncoderDecoder`; ``depth_head`` reads the same neck outputs.
    Data samples carry both ``gt_sem_seg`` and ``gt_depth_map``; predictions
    carry ``pred_sem_seg``/``seg_logits`` and ``pred_depth_map``.

    Args:
        backbone (dict): Backbone config, e.g. ``DPTViT``.
        decode_head (dict): Segmentation head, e.g. ``DPTSegHead``.
        depth_head (dict): Depth head, e.g. ``DPTDepthHead``.
        depth_loss_weight (float): Multiplies every depth loss.
        **kwargs: Other :class:`EncoderDecoder` arguments (``neck``,
            ``auxiliary_head``, ``train_cfg``, ``test_cfg``,
            ``data_preprocessor``, ``init_cfg``).
    """

    def __init__(self,
                 backbone: ConfigType,
                 decode_head: ConfigType,
                 depth_head: ConfigType,
                 neck: OptConfigType = None,
                 auxiliary_head: OptConfigType = None,
                 depth_loss_weight: float = 1.0,
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptMultiConfig = None) -> None:
        # Fail before building, naming component and key (see
        # check_model_config); the depth head is checked against the neck.
        check_model_config(dict(
            type=type(self), backbone=backbone, neck=neck,
            decode_head=decode_head, auxiliary_head=auxiliary_head,
            depth_head=depth_head, depth_loss_weight=depth_loss_weight))
        super().__init__(
            backbone=backbone,
            decode_head=decode_head,
            neck=neck,
            auxiliary_head=auxiliary_head,
            train_cfg=train_cfg,
            test_cfg=test_cfg,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg)
        self.depth_head = MODELS.build(depth_head)
        self.depth_loss_weight = depth_loss_weight

    def loss(self, inputs: Tensor, data_samples: SampleList) -> dict:
        """Segmentation losses (``decode.*``, ``aux.*``) and ``depth.*``."""
        x = self.extract_feat(inputs)
        losses = self._decode_head_forward_train(x, data_samples)
        if self.with_auxiliary_head:
            losses.update(self._auxiliary_head_forward_train(x, data_samples))
        depth_losses = self.depth_head.loss(x, data_samples, self.train_cfg)
        depth_losses = {
            k: v * self.depth_loss_weight
            for k, v in depth_losses.items()
        }
        losses.update(add_prefix(depth_losses, 'depth'))
        return losses

    def predict(self,
                inputs: Tensor,
                data_samples: OptSampleList = None) -> SampleList:
        """Whole-image prediction of both tasks at the original size."""
        metas = self._batch_metas(inputs, data_samples)
        if data_samples is None:
            data_samples = [SegDataSample(metainfo=m) for m in metas]
        inputs, metas = pad_to_multiple(inputs, metas,
                                        network_multiple(self))
        x = self.extract_feat(inputs)
        seg_logits = self.decode_head.predict(x, metas, self.test_cfg)
        depth = self.depth_head.predict(x, metas, self.test_cfg)
        # DPT's post-processing of both (DPTEncoderDecoder's for the
        # labels; bicubic depth unless test_cfg.depth_resize_mode says
        # 'bilinear').
        data_samples = self.postprocess_result(seg_logits, data_samples)
        head = self.depth_head
        return postprocess_depth(
            depth, data_samples,
            (self.test_cfg or {}).get('depth_resize_mode', 'bicubic'),
            getattr(head, 'min_depth', None), getattr(head, 'max_depth', None),
            getattr(head, 'depth_type', 'inverse_depth'))

    def _forward(self, inputs: Tensor,
                 data_samples: OptSampleList = None) -> tuple:
        """Raw outputs: (B×C×H×W logits, B×1×H×W depth)."""
        x = self.extract_feat(inputs)
        return self.decode_head.forward(x), self.depth_head.forward(x)

    @staticmethod
    def _batch_metas(inputs: Tensor,
                     data_samples: OptSampleList) -> List[dict]:
        if data_samples is not None:
            return [s.metainfo for s in data_samples]
        shape = inputs.shape[2:]
        return [
            dict(ori_shape=shape, img_shape=shape, pad_shape=shape,
                 padding_size=[0, 0, 0, 0])
        ] * inputs.shape[0]

"""mmseg's ``EncoderDecoder`` with DPT's test-time handling."""
from typing import List

import torch.nn as nn
from mmengine.config import ConfigDict
from torch import Tensor

from mmseg.models.segmentors import EncoderDecoder
from mmseg.registry import MODELS
from mmseg.utils import OptSampleList, SampleList, add_prefix
from ..decode_heads.fused_loss import head_loss
from ..layers.postprocess import (network_multiple, pad_to_multiple,
                                  postprocess_seg)

__all__ = ['DPTEncoderDecoder']


@MODELS.register_module()
class DPTEncoderDecoder(EncoderDecoder):
    """Backbone → neck → segmentation head(s), as mmseg's ``EncoderDecoder``.

    Same constructor, training and checkpoint keys. In training, the
    auxiliary heads (mmseg's ``FCNHead``) compute their cross-entropy band
    by band, as ``DPTSegHead`` does, wherever that equals mmseg's loss
    (``chunked_aux_loss``, see ``decode_heads/fused_loss.py``): no
    label-size logits are held. At test time:

    * whole-image inference pads the batch to multiples of 32 itself (the
      patch grid and the fusion need them) and crops the output back;
    * post-processing (``postprocess_seg`` in ``models/layers``) is set by
      ``test_cfg``: ``resize_mode`` (``'bilinear'`` default, as
      Transformers' ``post_process_semantic_segmentation``; ``'bicubic'``)
      and ``max_logits_bytes`` (full-size ``seg_logits`` above it are not
      kept and the labels are computed class by class; default 2 GiB);
    * mixed original sizes in one batch are normal (no warning).

    It is the one path of ``tools/test.py``, ``tools/infer.py`` and
    :func:`dpt_mm.apis.inference_model`.

    Args:
        *args: :class:`EncoderDecoder`'s arguments.
        chunked_aux_loss (bool): The auxiliary heads' chunked loss (False:
            their own ``loss`` always, for comparisons). Defaults to True.
        **kwargs: :class:`EncoderDecoder`'s keyword arguments.
    """

    def __init__(self, *args, chunked_aux_loss: bool = True,
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.chunked_aux_loss = chunked_aux_loss

    def _auxiliary_head_forward_train(self, inputs: List[Tensor],
                                      data_samples: SampleList) -> dict:
        """mmseg's, with :func:`head_loss` in place of ``head.loss``."""
        heads = self.auxiliary_head
        several = isinstance(heads, nn.ModuleList)
        losses = dict()
        for idx, head in enumerate(heads if several else [heads]):
            loss = head_loss(head, inputs, data_samples, self.train_cfg,
                             self.chunked_aux_loss)
            losses.update(add_prefix(loss, f'aux_{idx}' if several else 'aux'))
        return losses

    def inference(self, inputs: Tensor, batch_img_metas: List[dict]) -> Tensor:
        """Logits for a batch with whole-image or sliding-window inference.

        Args:
            inputs (Tensor): B×3×H×W normalised images.
            batch_img_metas (list[dict]): Image meta information.

        Returns:
            Tensor: B×C×H×W logits.
        """
        if not isinstance(self.test_cfg, ConfigDict):
            # mmseg's slide_inference reads it by attribute.
            self.test_cfg = ConfigDict(self.test_cfg or {})
        mode = self.test_cfg.get('mode', 'whole')
        if mode == 'slide':
            return self.slide_inference(inputs, batch_img_metas)
        if mode != 'whole':
            raise ValueError(f"DPTEncoderDecoder: test_cfg.mode must be "
                             f"'whole' or 'slide', got {mode!r}")
        inputs, batch_img_metas = pad_to_multiple(
            inputs, batch_img_metas, network_multiple(self))
        return self.whole_inference(inputs, batch_img_metas)

    def postprocess_result(self,
                           seg_logits: Tensor,
                           data_samples: OptSampleList = None) -> SampleList:
        """B×C×H×W logits → ``seg_logits``/``pred_sem_seg`` at original size.

        Args:
            seg_logits (Tensor): Network output.
            data_samples (list[SegDataSample], optional): Image metas.

        Returns:
            list[SegDataSample]: ``seg_logits`` and ``pred_sem_seg`` (see
            ``postprocess_seg``).
        """
        test_cfg = self.test_cfg or {}
        return postprocess_seg(
            seg_logits, data_samples, test_cfg.get('resize_mode', 'bilinear'),
            getattr(self.decode_head, 'threshold', 0.5),
            test_cfg.get('max_logits_bytes'))

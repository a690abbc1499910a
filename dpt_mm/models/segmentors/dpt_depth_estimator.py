"""mmseg's ``DepthEstimator`` with its test-mode dispatch fixed and DPT's
post-processing (bicubic resize to the original size, as the published
models and Transformers)."""
from typing import List

import torch.nn as nn
from mmengine.config import ConfigDict
from torch import Tensor

from mmseg.models.segmentors import DepthEstimator
from mmseg.registry import MODELS
from mmseg.utils import OptSampleList, SampleList
from ..check import check_model_config
from ..layers.postprocess import (RESIZE_MODES, network_multiple,
                                  pad_to_multiple,
                                  postprocess_depth)

__all__ = ['DPTDepthEstimator', 'mark_depth_type']

TEST_MODES = ('whole', 'slide', 'slide_flip')


def mark_depth_type(data_samples: SampleList,
                    head: nn.Module) -> SampleList:
    """Note in each ``pred_depth_map`` what its values are.

    Pictures (near = bright) and writers read ``depth_type`` from the
    prediction's metainfo: ``'inverse_depth'`` for relative models,
    ``'depth'`` for metric ones.

    Args:
        data_samples (list[SegDataSample]): Predictions.
        head (nn.Module): The depth head (``DPTDepthHead.depth_type``;
            other heads count as relative).

    Returns:
        list[SegDataSample]: The same samples.
    """
    depth_type = getattr(head, 'depth_type', 'inverse_depth')
    for sample in data_samples:
        sample.pred_depth_map.set_metainfo(dict(depth_type=depth_type))
    return data_samples


@MODELS.register_module()
class DPTDepthEstimator(DepthEstimator):
    """Backbone → neck → depth head, as mmseg's ``DepthEstimator``.

    Two fixes over mmseg 1.2.2: ``test_cfg.mode='slide'`` really slides
    (mmseg falls through to whole-image inference after computing it), and
    a plain-dict ``test_cfg`` works (mmseg reads it by attribute).
    Sliding-window depth inference bounds memory on large images:
    ``test_cfg=dict(mode='slide', crop_size=(384, 384), stride=(256, 256))``.

    Post-processing (:func:`postprocess_depth`) is DPT's, set by
    ``test_cfg.resize_mode``: ``'bicubic'`` (default; the published models
    and Transformers) or ``'bilinear'`` (mmseg's ``DepthEstimator``). It is
    the one path of ``tools/test.py``, ``tools/infer.py`` and
    :func:`dpt_mm.apis.inference_model`.
    """

    def __init__(self, *args, **kwargs) -> None:
        # Unknown keys, wrong types and channels that do not fit fail here,
        # naming component and key, before any child is built.
        check_model_config(dict(kwargs, type=type(self)))
        super().__init__(*args, **kwargs)
        self.test_cfg = ConfigDict(self.test_cfg or {})
        mode = self.test_cfg.get('mode', 'whole')
        if mode not in TEST_MODES:
            raise ValueError(f'DPTDepthEstimator: test_cfg.mode must be one '
                             f'of {TEST_MODES}, got {mode!r}')
        if mode != 'whole' and not {'crop_size', 'stride'} <= set(
                self.test_cfg):
            raise ValueError(f'DPTDepthEstimator: test_cfg.mode={mode!r} '
                             'needs test_cfg.crop_size and test_cfg.stride')
        resize_mode = self.test_cfg.get('resize_mode', 'bicubic')
        if resize_mode not in RESIZE_MODES:
            raise ValueError(f'DPTDepthEstimator: test_cfg.resize_mode must '
                             f'be one of {RESIZE_MODES}, got {resize_mode!r}')

    def inference(self, inputs: Tensor, batch_img_metas: List[dict]) -> Tensor:
        """Depth for a batch with whole-image or sliding-window inference.

        Args:
            inputs (Tensor): B×3×H×W normalised images.
            batch_img_metas (list[dict]): Image meta information.

        Returns:
            Tensor: B×1×H×W depth.
        """
        mode = self.test_cfg.get('mode', 'whole')
        if mode == 'slide':
            return self.slide_inference(inputs, batch_img_metas)
        if mode == 'slide_flip':
            return self.slide_flip_inference(inputs, batch_img_metas)
        inputs, batch_img_metas = pad_to_multiple(
            inputs, batch_img_metas, network_multiple(self))
        return self.whole_inference(inputs, batch_img_metas)

    def postprocess_result(self,
                           depth: Tensor,
                           data_samples: OptSampleList = None) -> SampleList:
        """B×1×H×W depth → ``pred_depth_map`` at the original sizes.

        Args:
            depth (Tensor): Network output.
            data_samples (list[SegDataSample], optional): Image metas.

        Returns:
            list[SegDataSample]: See :func:`postprocess_depth`; the map's
            metainfo says ``depth_type``.
        """
        head = self.decode_head
        return postprocess_depth(
            depth, data_samples, self.test_cfg.get('resize_mode', 'bicubic'),
            getattr(head, 'min_depth', None), getattr(head, 'max_depth', None),
            getattr(head, 'depth_type', 'inverse_depth'))

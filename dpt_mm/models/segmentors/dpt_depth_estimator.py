"""mmseg's ``DepthEstimator`` with its test-mode dispatch fixed."""
from typing import List

from mmengine.config import ConfigDict
from torch import Tensor

from mmseg.models.segmentors import DepthEstimator
from mmseg.registry import MODELS
from ..check import check_model_config

__all__ = ['DPTDepthEstimator']

TEST_MODES = ('whole', 'slide', 'slide_flip')


@MODELS.register_module()
class DPTDepthEstimator(DepthEstimator):
    """Backbone → neck → depth head, as mmseg's ``DepthEstimator``.

    Two fixes over mmseg 1.2.2: ``test_cfg.mode='slide'`` really slides
    (mmseg falls through to whole-image inference after computing it), and
    a plain-dict ``test_cfg`` works (mmseg reads it by attribute).
    Sliding-window depth inference bounds memory on large images:
    ``test_cfg=dict(mode='slide', crop_size=(384, 384), stride=(256, 256))``.
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
        return self.whole_inference(inputs, batch_img_metas)

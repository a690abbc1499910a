"""mmseg's ``DepthEstimator`` with its test-mode dispatch fixed and DPT's
post-processing (bicubic resize to the original size, as the published
models and Transformers)."""
from typing import List, Optional

import torch.nn.functional as F
from mmengine.config import ConfigDict
from mmengine.structures import PixelData
from torch import Tensor

from mmseg.models.segmentors import DepthEstimator
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from mmseg.utils import OptSampleList, SampleList
from ...utils.config import check_model_config

__all__ = ['DPTDepthEstimator', 'RESIZE_MODES', 'postprocess_depth']

TEST_MODES = ('whole', 'slide', 'slide_flip')
RESIZE_MODES = ('bicubic', 'bilinear')
NETWORK_MULTIPLE = 32


def postprocess_depth(depth: Tensor,
                      data_samples: OptSampleList,
                      resize_mode: str = 'bicubic',
                      min_depth: Optional[float] = None,
                      max_depth: Optional[float] = None,
                      depth_type: str = 'inverse_depth') -> SampleList:
    """Network depth → ``pred_depth_map`` at each image's original size.

    Per image: crop to ``img_shape`` (drops the bottom/right padding added
    for the batch or the network multiple), undo a flip, resize to
    ``ori_shape`` (``align_corners=False``; bicubic as Transformers'
    ``post_process_depth_estimation``, which may dip slightly below 0 at
    sharp edges), then clamp to the head's ``min_depth``/``max_depth``.

    Args:
        depth (Tensor): B×1×H×W network output.
        data_samples (list[SegDataSample], optional): With ``img_shape``
            and ``ori_shape``; None keeps the network size.
        resize_mode (str): ``'bicubic'`` or ``'bilinear'``.
        min_depth (float, optional): Lower clamp.
        max_depth (float, optional): Upper clamp.
        depth_type (str): Recorded in the map's metainfo.

    Returns:
        list[SegDataSample]: ``pred_depth_map`` (1×H×W) set.
    """
    if resize_mode not in RESIZE_MODES:
        raise ValueError(f'resize_mode must be one of {RESIZE_MODES}, got '
                         f'{resize_mode!r}')
    if data_samples is None:
        shape = tuple(depth.shape[-2:])
        data_samples = [SegDataSample(metainfo=dict(img_shape=shape,
                                                    ori_shape=shape))
                        for _ in range(depth.shape[0])]
    for i, sample in enumerate(data_samples):
        meta = sample.metainfo
        height, width = meta.get('img_shape', depth.shape[-2:])[:2]
        out = depth[i:i + 1, :, :height, :width]
        if meta.get('flip', False):
            dims = (3, ) if meta.get('flip_direction') == 'horizontal' \
                else (2, )
            out = out.flip(dims=dims)
        size = tuple(int(s) for s in meta.get('ori_shape',
                                              out.shape[-2:])[:2])
        if tuple(out.shape[-2:]) != size:
            out = F.interpolate(out, size=size, mode=resize_mode,
                                align_corners=False)
        if min_depth is not None or max_depth is not None:
            out = out.clamp(min=min_depth, max=max_depth)
        sample.pred_depth_map = PixelData(
            data=out[0], metainfo=dict(depth_type=depth_type))
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
        # The patch grid and the fusion's ×2 steps need sides that are
        # multiples of 32: pad bottom/right (postprocess_result crops).
        height, width = inputs.shape[-2:]
        pad_h, pad_w = -height % NETWORK_MULTIPLE, -width % NETWORK_MULTIPLE
        if pad_h or pad_w:
            inputs = F.pad(inputs, (0, pad_w, 0, pad_h), value=0)
            batch_img_metas = [
                dict(meta, pad_shape=tuple(inputs.shape[-2:]))
                for meta in batch_img_metas
            ]
        return self.whole_inference(inputs, batch_img_metas)

    def postprocess_result(self,
                           depth: Tensor,
                           data_samples: OptSampleList = None) -> SampleList:
        """B×1×H×W depth → ``pred_depth_map`` at the original sizes.

        Args:
            depth (Tensor): Network output.
            data_samples (list[SegDataSample], optional): Image metas.

        Returns:
            list[SegDataSample]: See :func:`postprocess_depth`.
        """
        head = self.decode_head
        mode = getattr(head, 'output_mode', 'inverse_depth')
        return postprocess_depth(
            depth, data_samples, self.test_cfg.get('resize_mode', 'bicubic'),
            getattr(head, 'min_depth', None), getattr(head, 'max_depth', None),
            'inverse_depth' if mode == 'inverse_depth' else 'depth')

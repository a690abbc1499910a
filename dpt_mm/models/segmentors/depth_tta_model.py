"""Test-time augmentation for depth: average the predictions of the views."""
from typing import List

import torch
from mmengine.model import BaseTTAModel
from mmengine.structures import PixelData

from mmseg.registry import MODELS
from mmseg.utils import SampleList

__all__ = ['DepthTTAModel']


@MODELS.register_module()
class DepthTTAModel(BaseTTAModel):
    """Averages depth predicted on augmented views (flips, scales).

    The wrapped depth model maps each view's prediction back to the original
    image (padding removed, flip undone, resized to ``ori_shape``), so the
    views' ``pred_depth_map`` align pixel by pixel and are averaged in the
    model's output space (depth or inverse depth). Used by
    ``tools/test.py --tta`` with a config's ``tta_pipeline``, e.g. a
    horizontal flip::

        tta_model = dict(type='DepthTTAModel')
        tta_pipeline = [
            dict(type='LoadImageChecked'),
            dict(type='TestTimeAug', transforms=[
                [dict(type='RandomFlip', prob=0., direction='horizontal'),
                 dict(type='RandomFlip', prob=1., direction='horizontal')],
                [dict(type='LoadDepthMap')],
                [dict(type='PackSegInputs')]])]

    Args:
        module (dict | nn.Module): The depth model, e.g.
            ``DPTDepthEstimator``.
        data_preprocessor (dict | nn.Module, optional): See
            :class:`mmengine.model.BaseTTAModel`.
    """

    def merge_preds(self, data_samples_list: List[SampleList]) -> SampleList:
        """Average each image's predictions over its augmented views.

        Args:
            data_samples_list (list[list[SegDataSample]]): Per image, the
                predictions of all its views.

        Returns:
            list[SegDataSample]: Per image, the first view's sample (its
            ground truth and meta information) with the mean
            ``pred_depth_map``.
        """
        merged = []
        for views in data_samples_list:
            depth = torch.stack(
                [view.pred_depth_map.data for view in views]).mean(dim=0)
            sample = views[0]
            sample.pred_depth_map = PixelData(
                data=depth, metainfo=sample.pred_depth_map.metainfo)
            merged.append(sample)
        return merged

"""Test-time augmentation for joint depth + segmentation models."""
from typing import List

import torch
from mmengine.structures import PixelData

from mmseg.registry import MODELS
from mmseg.utils import SampleList
from .depth_tta_model import DepthTTAModel

__all__ = ['DepthSegTTAModel']


@MODELS.register_module()
class DepthSegTTAModel(DepthTTAModel):
    """Averages both predictions of ``DepthSegEstimator`` over the views.

    Depth as :class:`DepthTTAModel` (mean of the views' ``pred_depth_map``);
    segmentation as mmseg's ``SegTTAModel`` (mean of the class
    probabilities, then argmax). Every view's prediction is already mapped
    back to the original image by the wrapped model.

    Args:
        module (dict | nn.Module): The joint model, ``DepthSegEstimator``.
        data_preprocessor (dict | nn.Module, optional): See
            :class:`mmengine.model.BaseTTAModel`.
    """

    def merge_preds(self, data_samples_list: List[SampleList]) -> SampleList:
        """Average depth and class probabilities over each image's views.

        Args:
            data_samples_list (list[list[SegDataSample]]): Per image, the
                predictions of all its views.

        Returns:
            list[SegDataSample]: Per image, the first view's sample with
            the mean ``pred_depth_map`` and the merged ``pred_sem_seg``.
        """
        probs = [
            torch.stack([view.seg_logits.data.softmax(dim=0)
                         for view in views]).mean(dim=0)
            for views in data_samples_list
        ]
        merged = super().merge_preds(data_samples_list)
        for sample, prob in zip(merged, probs):
            sample.pred_sem_seg = PixelData(
                data=prob.argmax(dim=0, keepdim=True))
        return merged

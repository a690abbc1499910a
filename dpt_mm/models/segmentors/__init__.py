from .depth_seg_estimator import DepthSegEstimator
from .depth_seg_tta_model import DepthSegTTAModel
from .depth_tta_model import DepthTTAModel
from .dpt_depth_estimator import DPTDepthEstimator

__all__ = [
    'DPTDepthEstimator', 'DepthSegEstimator', 'DepthSegTTAModel',
    'DepthTTAModel'
]

from .depth_seg_estimator import DepthSegEstimator
from .dpt_depth_estimator import DPTDepthEstimator

__all__ = ['DPTDepthEstimator', 'DepthSegEstimator']

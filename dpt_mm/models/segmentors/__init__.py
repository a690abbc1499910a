from .dpt_depth_estimator import DPTDepthEstimator

__all__ = ['DPTDepthEstimator']

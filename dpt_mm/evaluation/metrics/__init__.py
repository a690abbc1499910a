from .depth_metric import DPTDepthMetric

__all__ = ['DPTDepthMetric']

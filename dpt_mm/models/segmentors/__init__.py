from .depth_seg_estimator import DepthSegEstimator
from .dpt_depth_estimator import DPTDepthEstimator
from .dpt_encoder_decoder import DPTEncoderDecoder

__all__ = ['DPTDepthEstimator', 'DPTEncoderDecoder', 'DepthSegEstimator']

from .depth_seg_estimator import DepthSegEstimator
from .depth_seg_tta_model import DepthSegTTAModel
from .depth_tta_model import DepthTTAModel
from .dpt_depth_estimator import DPTDepthEstimator
from .dpt_encoder_decoder import DPTEncoderDecoder

__all__ = [
    'DPTDepthEstimator', 'DPTEncoderDecoder', 'DepthSegEstimator',
    'DepthSegTTAModel', 'DepthTTAModel'
]

from .dpt_depth_head import DPTDepthHead
from .dpt_fcn_head import DPTFCNHead
from .dpt_seg_head import DPTSegHead
from .fused_loss import ChunkedLossMixin

__all__ = ['ChunkedLossMixin', 'DPTDepthHead', 'DPTFCNHead', 'DPTSegHead']

from .dpt_depth_head import DPTDepthHead
from .dpt_seg_head import DPTSegHead

__all__ = ['DPTDepthHead', 'DPTSegHead']

from .dpt_dinov2 import DPTDINOv2
from .dpt_vit import DPTViT
from .dpt_vit_hybrid import DPTViTHybrid

__all__ = ['DPTDINOv2', 'DPTViT', 'DPTViTHybrid']

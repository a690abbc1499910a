from .dpt_vit import DPTViT
from .dpt_vit_hybrid import DPTViTHybrid

__all__ = ['DPTViT', 'DPTViTHybrid']

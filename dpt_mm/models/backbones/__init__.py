from .dpt_beit import DPTBEiT
from .dpt_swinv2 import DPTSwinV2
from .dpt_vit import DPTViT
from .dpt_vit_hybrid import DPTViTHybrid

__all__ = ['DPTBEiT', 'DPTSwinV2', 'DPTViT', 'DPTViTHybrid']

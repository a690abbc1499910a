from .dpt_beit import DPTBEiT
from .dpt_dinov2 import DPTDINOv2
from .dpt_swinv2 import DPTSwinV2
from .dpt_vit import DPTViT
from .dpt_vit_hybrid import DPTViTHybrid

__all__ = ['DPTBEiT', 'DPTDINOv2', 'DPTSwinV2', 'DPTViT', 'DPTViTHybrid']

from .dpt_neck import DPTNeck

__all__ = ['DPTNeck']

from .bit_resnet import BiTBottleneck, BiTResNet, StdConv2dSame, pad_same
from .checkpoint import checkpoint_if, frozen_norm_stats
from .dinov2_block import (DINOv2Block, LayerScale, SwiGLUFFN,
                           swiglu_hidden_dim)
from .fusion import FeatureFusionBlock, ResidualConvUnit
# Lives in utils: the timm converter resizes checkpoints with it too.
from ...utils.pos_embed import resize_pos_embed
from .reassemble import READOUT_TYPES, ReassembleBlock, Readout
from .transformer_block import Attention, DropPath, Mlp, TransformerBlock

__all__ = [
    'Attention', 'BiTBottleneck', 'BiTResNet', 'DINOv2Block', 'DropPath',
    'FeatureFusionBlock', 'LayerScale', 'Mlp', 'READOUT_TYPES',
    'ReassembleBlock', 'Readout', 'ResidualConvUnit', 'StdConv2dSame',
    'SwiGLUFFN', 'TransformerBlock', 'checkpoint_if', 'frozen_norm_stats',
    'pad_same', 'resize_pos_embed', 'swiglu_hidden_dim'
]

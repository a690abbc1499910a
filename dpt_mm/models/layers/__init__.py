from .bit_resnet import BiTBottleneck, BiTResNet, StdConv2dSame, pad_same
from .checkpoint import checkpoint_if, frozen_norm_stats
from .fusion import FeatureFusionBlock, ResidualConvUnit
from .pos_embed import resize_pos_embed
from .reassemble import READOUT_TYPES, ReassembleBlock, Readout
from .transformer_block import Attention, DropPath, Mlp, TransformerBlock

__all__ = [
    'Attention', 'BiTBottleneck', 'BiTResNet', 'DropPath',
    'FeatureFusionBlock', 'Mlp', 'READOUT_TYPES', 'ReassembleBlock',
    'Readout', 'ResidualConvUnit', 'StdConv2dSame', 'TransformerBlock',
    'checkpoint_if', 'frozen_norm_stats', 'pad_same', 'resize_pos_embed'
]

from .bit_resnet import BiTBottleneck, BiTResNet, StdConv2dSame, pad_same
from .checkpoint import (checkpoint_conv_classifier, checkpoint_if,
                         conv_classifier, frozen_norm_stats,
                         fusable_conv_classifier)
from .conv import Conv2d, conv2d, conv_input_rows
from .dropout import Dropout, dropout, dropout_mask
from .fusion import FeatureFusionBlock, ResidualConvUnit
from .linear import LINEAR_BACKENDS, Linear, linear, linear_backend
# Lives in utils: the timm converter resizes checkpoints with it too.
from ...utils.pos_embed import resize_pos_embed
from .reassemble import READOUT_TYPES, ReassembleBlock, Readout
from .transformer_block import Attention, DropPath, Mlp, TransformerBlock

__all__ = [
    'Attention', 'BiTBottleneck', 'BiTResNet', 'Conv2d', 'DropPath',
    'Dropout',
    'FeatureFusionBlock', 'LINEAR_BACKENDS', 'Linear', 'Mlp',
    'READOUT_TYPES', 'ReassembleBlock', 'Readout', 'ResidualConvUnit',
    'StdConv2dSame', 'TransformerBlock', 'checkpoint_conv_classifier',
    'checkpoint_if', 'conv2d', 'conv_classifier', 'conv_input_rows',
    'dropout', 'dropout_mask', 'frozen_norm_stats',
    'fusable_conv_classifier', 'linear',
    'linear_backend', 'pad_same', 'resize_pos_embed'
]

"""CPU kernels kept apart from the model code, applied by one switch.

The models in :mod:`dpt_mm.models` are plain PyTorch (``nn.Linear``,
``nn.Conv2d``, ``nn.Dropout``, the paper's concat → Linear readout, the
checkpointed chunked loss).
:func:`accelerate` swaps a built model's layers, in place, for subclasses
that run a faster CPU float32 kernel where the measurement on this machine
says it pays (:func:`accel_decision`) and the plain op everywhere else: while
compiling, exporting or tracing (checked first), off CPU, in other dtypes
and under autocast. The config key ``accel`` (``configs/_base_/
default_runtime.py``) and the tools' ``--accel`` flag choose the mode.
"""
from .conv import BandedConv2d, banded_conv2d
from .decision import accel_decision
from .fast_path import (fold_conv_bn, freeze_weight_standardization,
                        fuse_conv_norms, optimize_for_inference)
from .gate import cpu_float32, is_eager
from .linear import OneDNNLinear, onednn_linear
from .loss import FusedCrossEntropyLoss, fused_resize_cross_entropy
from .readout import SplitReadout, split_readout
from .switch import ACCEL_MODES, KERNELS, accelerate, accelerate_from_cfg

__all__ = [
    'ACCEL_MODES', 'BandedConv2d', 'FusedCrossEntropyLoss', 'KERNELS',
    'OneDNNLinear', 'SplitReadout', 'accel_decision', 'accelerate',
    'accelerate_from_cfg', 'banded_conv2d', 'cpu_float32', 'fold_conv_bn',
    'freeze_weight_standardization', 'fuse_conv_norms',
    'fused_resize_cross_entropy', 'is_eager', 'onednn_linear',
    'optimize_for_inference', 'split_readout'
]

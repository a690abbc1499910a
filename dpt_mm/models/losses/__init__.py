from .gradient_matching_loss import GradientMatchingLoss
from .resize_cross_entropy import (resize_cross_entropy,
                                   resize_cross_entropy_of)
from .silog_loss import DepthSiLogLoss
from .ssi_loss import ScaleShiftInvariantLoss

__all__ = [
    'DepthSiLogLoss', 'GradientMatchingLoss', 'ScaleShiftInvariantLoss',
    'resize_cross_entropy', 'resize_cross_entropy_of'
]

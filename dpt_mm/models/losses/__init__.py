from .gradient_matching_loss import GradientMatchingLoss
from .silog_loss import DepthSiLogLoss
from .ssi_loss import ScaleShiftInvariantLoss

__all__ = [
    'DepthSiLogLoss', 'GradientMatchingLoss', 'ScaleShiftInvariantLoss'
]

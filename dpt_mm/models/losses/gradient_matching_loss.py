"""MiDaS multi-scale gradient matching loss."""
from typing import Optional

import torch
import torch.nn as nn
from mmseg.registry import MODELS
from torch import Tensor

from .depth_utils import (aligned_disparity, batch_based_reduction,
                          check_ssi_options)

__all__ = ['GradientMatchingLoss', 'gradient_matching_term']


def gradient_matching_term(residual: Tensor, mask: Tensor) -> Tensor:
    """Gradient matching at one scale, batch-based reduction.

    ``Σ |∇x R| + |∇y R|`` over pairs of horizontally or vertically
    neighbouring pixels that are both valid, divided by the number ``M``
    of valid pixels at this scale (summed over the batch).

    Args:
        residual (Tensor): Residual ``R``, ``B×H×W``, 0 on invalid pixels.
        mask (Tensor): Boolean validity mask, ``B×H×W``.

    Returns:
        Tensor: Scalar; 0 when no pixel is valid.
    """
    pair_x = mask[:, :, 1:] & mask[:, :, :-1]
    pair_y = mask[:, 1:, :] & mask[:, :-1, :]
    grad_x = torch.where(pair_x,
                         (residual[:, :, 1:] - residual[:, :, :-1]).abs(), 0.0)
    grad_y = torch.where(pair_y,
                         (residual[:, 1:, :] - residual[:, :-1, :]).abs(), 0.0)
    image_loss = grad_x.flatten(1).sum(1) + grad_y.flatten(1).sum(1)
    return batch_based_reduction(image_loss, mask.flatten(1).sum(1))


@MODELS.register_module()
class GradientMatchingLoss(nn.Module):
    """Multi-scale gradient matching loss of MiDaS (Ranftl et al. 2020).

    Computed on the residual between the aligned predicted disparity and
    the target disparity; summed over ``scales`` scales, scale ``k`` taking
    every ``2^k``-th pixel of each row and column (strided, no filtering).
    Alignment and validity work as in :class:`ScaleShiftInvariantLoss`.

    Args:
        scales (int): Number of scales. Defaults to 4.
        alignment (str): ``'lstsq'`` or ``'median'``. Defaults to 'lstsq'.
        target_space (str): ``'disparity'`` or ``'depth'``. Defaults to
            'disparity'.
        min_target (float, optional): Inclusive lower validity bound on the
            raw target. Defaults to None.
        max_target (float, optional): Inclusive upper validity bound on the
            raw target. Defaults to None.
        loss_weight (float): Weight of the loss, MiDaS' alpha. Defaults to
            0.5.
        loss_name (str): Name of the loss item; it must start with
            ``loss_`` to be back-propagated. Defaults to 'loss_grad'.
    """

    def __init__(self,
                 scales: int = 4,
                 alignment: str = 'lstsq',
                 target_space: str = 'disparity',
                 min_target: Optional[float] = None,
                 max_target: Optional[float] = None,
                 loss_weight: float = 0.5,
                 loss_name: str = 'loss_grad') -> None:
        super().__init__()
        check_ssi_options(alignment, target_space)
        if scales < 1:
            raise ValueError(f'scales must be at least 1, got {scales}')
        self.scales = scales
        self.alignment = alignment
        self.target_space = target_space
        self.min_target = min_target
        self.max_target = max_target
        self.loss_weight = loss_weight
        self._loss_name = loss_name

    def forward(self,
                pred: Tensor,
                target: Tensor,
                valid_mask: Optional[Tensor] = None,
                **kwargs) -> Tensor:
        """Compute the loss.

        Args:
            pred (Tensor): Predicted disparity, ``B×1×H×W`` or ``B×H×W``.
            target (Tensor): Target disparity or depth, same shape.
            valid_mask (Tensor, optional): Extra validity mask, same shape;
                combined with the target's own validity. Defaults to None.

        Returns:
            Tensor: Scalar loss.
        """
        pred, target, mask = aligned_disparity(pred, target, valid_mask,
                                               self.alignment,
                                               self.target_space,
                                               self.min_target,
                                               self.max_target)
        residual = torch.where(mask, pred - target, 0.0)
        loss = residual.new_zeros(())
        for scale in range(self.scales):
            step = 2**scale
            loss = loss + gradient_matching_term(
                residual[:, ::step, ::step], mask[:, ::step, ::step])
        return self.loss_weight * loss

    @property
    def loss_name(self) -> str:
        """str: Name of the loss item, used as the key in the loss dict."""
        return self._loss_name

"""MiDaS scale-and-shift-invariant loss on inverse depth."""
from typing import Optional

import torch.nn as nn
from mmseg.registry import MODELS
from torch import Tensor

from .depth_utils import (aligned_disparity, batch_based_reduction,
                          check_ssi_options, trimmed_sum)

__all__ = ['ScaleShiftInvariantLoss']

DATA_TERMS = ('mse', 'mae')


@MODELS.register_module()
class ScaleShiftInvariantLoss(nn.Module):
    """Scale-and-shift-invariant loss of MiDaS (Ranftl et al. 2020).

    The predicted disparity is aligned to the target disparity per image,
    then the data term is summed over the valid pixels and divided by
    ``2·M``, ``M`` being the number of valid pixels. The reduction is
    "batch-based": sums over the batch divided by the total of ``2·M``, and
    0 when no pixel of the batch is valid.

    With ``alignment='lstsq', data_term='mse'`` this is the SSI-MSE of the
    MiDaS gist; ``alignment='median', data_term='mae', trim=0.2`` is the
    trimmed SSI-MAE of the MiDaS paper.

    Args:
        alignment (str): ``'lstsq'`` (closed-form scale and shift) or
            ``'median'`` (median/MAD normalisation of prediction and
            target). Defaults to 'lstsq'.
        data_term (str): ``'mse'`` (squared residual) or ``'mae'``
            (absolute residual). Defaults to 'mse'.
        trim (float): Fraction of each image's largest residuals to drop,
            in [0, 1). ``M`` still counts every valid pixel, as in the
            paper. Defaults to 0.
        target_space (str): ``'disparity'`` or ``'depth'``; depth targets
            are inverted on valid pixels. Defaults to 'disparity'.
        min_target (float, optional): Inclusive lower validity bound on the
            raw target. Defaults to None.
        max_target (float, optional): Inclusive upper validity bound on the
            raw target. Defaults to None.
        loss_weight (float): Weight of the loss. Defaults to 1.0.
        loss_name (str): Name of the loss item; it must start with
            ``loss_`` to be back-propagated. Defaults to 'loss_ssi'.
    """

    def __init__(self,
                 alignment: str = 'lstsq',
                 data_term: str = 'mse',
                 trim: float = 0.0,
                 target_space: str = 'disparity',
                 min_target: Optional[float] = None,
                 max_target: Optional[float] = None,
                 loss_weight: float = 1.0,
                 loss_name: str = 'loss_ssi') -> None:
        super().__init__()
        check_ssi_options(alignment, target_space)
        if data_term not in DATA_TERMS:
            raise ValueError(f'data_term must be one of {DATA_TERMS}, '
                             f'got {data_term!r}')
        if not 0.0 <= trim < 1.0:
            raise ValueError(f'trim must be in [0, 1), got {trim}')
        self.alignment = alignment
        self.data_term = data_term
        self.trim = trim
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
                combined with the target's own validity (finite, > 0,
                within the bounds). Defaults to None.

        Returns:
            Tensor: Scalar loss.
        """
        pred, target, mask = aligned_disparity(pred, target, valid_mask,
                                               self.alignment,
                                               self.target_space,
                                               self.min_target,
                                               self.max_target)
        residual = pred - target
        error = residual.abs() if self.data_term == 'mae' else residual**2
        image_loss = trimmed_sum(error, mask, self.trim)
        loss = batch_based_reduction(image_loss, 2 * mask.flatten(1).sum(1))
        return self.loss_weight * loss

    @property
    def loss_name(self) -> str:
        """str: Name of the loss item, used as the key in the loss dict."""
        return self._loss_name

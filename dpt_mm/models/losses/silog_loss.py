"""Scale-invariant log loss for metric depth (Eigen et al. 2014)."""
from typing import Optional

import torch
import torch.nn as nn
from mmseg.registry import MODELS
from torch import Tensor

from .depth_utils import prepare_depth_inputs

__all__ = ['DepthSiLogLoss']


@MODELS.register_module()
class DepthSiLogLoss(nn.Module):
    """Scale-invariant log loss, safe on empty and corrupt targets.

    Per image, with ``d = log(pred) − log(target)`` over its ``n`` valid
    pixels: ``D = mean(d²) − λ·mean(d)²``, and the loss is ``sqrt(D + eps)``
    (or ``D`` with ``sqrt=False``). The batch loss is the mean over the
    images that have a valid pixel, and 0 if none has; this follows Eigen's
    per-image definition (BTS and AdaBins pool all pixels of the batch).

    Unlike mmseg's ``SiLogLoss``, ``eps`` sits inside the square root, so an
    image with ``D = 0`` (e.g. no valid pixel) has a finite gradient, and
    inf or NaN targets are masked instead of passed on.

    Args:
        lambd (float): Variance focus λ in [0, 1]; 1 makes the loss fully
            invariant to a global scale of the prediction. Defaults to 0.5.
        sqrt (bool): Take ``sqrt(D + eps)``. Defaults to True.
        eps (float): Added inside the square root. Defaults to 1e-6.
        min_pred (float): Predictions are clamped to at least this before
            the log, so that a zero (ReLU) output gives no -inf. Defaults to
            1e-6.
        min_depth (float, optional): Inclusive lower validity bound on the
            target. Defaults to None.
        max_depth (float, optional): Inclusive upper validity bound on the
            target. Defaults to None.
        pool (str): ``'image'`` (Eigen's per-image loss, averaged) or
            ``'batch'``: one loss over the valid pixels of the whole batch,
            as Depth Anything V2's ``SiLogLoss`` (and BTS, AdaBins).
            Defaults to 'image'.
        loss_weight (float): Weight of the loss. Defaults to 1.0.
        loss_name (str): Name of the loss item; it must start with
            ``loss_`` to be back-propagated. Defaults to 'loss_silog'.
    """

    def __init__(self,
                 lambd: float = 0.5,
                 sqrt: bool = True,
                 eps: float = 1e-6,
                 min_pred: float = 1e-6,
                 min_depth: Optional[float] = None,
                 max_depth: Optional[float] = None,
                 pool: str = 'image',
                 loss_weight: float = 1.0,
                 loss_name: str = 'loss_silog') -> None:
        super().__init__()
        # λ > 1 would let D go negative.
        if not 0.0 <= lambd <= 1.0:
            raise ValueError(f'lambd must be in [0, 1], got {lambd}')
        if min_pred <= 0:
            raise ValueError(f'min_pred must be positive, got {min_pred}')
        if pool not in ('image', 'batch'):
            raise ValueError(f"pool must be 'image' or 'batch', got {pool!r}")
        self.pool = pool
        self.lambd = lambd
        self.sqrt = sqrt
        self.eps = eps
        self.min_pred = min_pred
        self.min_depth = min_depth
        self.max_depth = max_depth
        self.loss_weight = loss_weight
        self._loss_name = loss_name

    def forward(self,
                pred: Tensor,
                target: Tensor,
                valid_mask: Optional[Tensor] = None,
                **kwargs) -> Tensor:
        """Compute the loss.

        Args:
            pred (Tensor): Predicted depth, ``B×1×H×W`` or ``B×H×W``.
            target (Tensor): Target depth, same shape.
            valid_mask (Tensor, optional): Extra validity mask, same shape;
                combined with the target's own validity (finite, > 0,
                within the bounds). Defaults to None.

        Returns:
            Tensor: Scalar loss.
        """
        pred, target, mask = prepare_depth_inputs(pred, target, valid_mask,
                                                  self.min_depth,
                                                  self.max_depth)
        log_diff = torch.where(
            mask,
            torch.log(pred.clamp(min=self.min_pred)) -
            torch.log(torch.where(mask, target, 1.0)), 0.0)
        if self.pool == 'batch':  # the whole batch as one image
            log_diff, mask = log_diff.reshape(1, -1), mask.reshape(1, -1)
        count = mask.flatten(1).sum(1)
        norm = count.to(log_diff.dtype).clamp(min=1)
        mean = log_diff.flatten(1).sum(1) / norm
        mean_sq = log_diff.pow(2).flatten(1).sum(1) / norm
        # Clamp: for λ = 1, D is a variance that rounding can make < 0.
        image_loss = (mean_sq - self.lambd * mean.pow(2)).clamp(min=0)
        if self.sqrt:
            image_loss = torch.sqrt(image_loss + self.eps)
        has_valid = count > 0
        loss = torch.where(has_valid, image_loss, 0.0).sum() / \
            has_valid.sum().clamp(min=1)
        return self.loss_weight * loss

    @property
    def loss_name(self) -> str:
        """str: Name of the loss item, used as the key in the loss dict."""
        return self._loss_name

"""Depth metrics with the BTS protocol and the MiDaS zero-shot alignment."""
import math
import warnings
from collections import OrderedDict
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger, print_log
from mmseg.registry import METRICS
from prettytable import PrettyTable
from torch import Tensor

from dpt_mm.models.losses.depth_utils import compute_scale_and_shift

__all__ = ['DPTDepthMetric', 'compute_depth_metrics']

# Official Eigen crop of NYUv2, on the 480×640 image.
NYU_CROP = (45, 471, 41, 601)
NYU_SIZE = (480, 640)
# Garg crop of KITTI as fractions of the image size (BTS eval_with_pngs).
GARG_CROP = (0.40810811, 0.99189189, 0.03594771, 0.96405229)


def compute_depth_metrics(gt: np.ndarray,
                          pred: np.ndarray) -> Dict[str, float]:
    """Depth metrics of one image, as BTS ``compute_errors``.

    ``silog`` is BTS's (and the KITTI benchmark's) ``100·std(log pred −
    log gt)``; mmseg's ``DepthMetric`` instead reports
    ``sqrt(mean(d²) − 0.5·mean(d)²)``.

    Args:
        gt (np.ndarray): Ground-truth depths of the evaluated pixels, ``N``,
            all positive and finite.
        pred (np.ndarray): Predicted depths of the same pixels, ``N``, all
            positive and finite.

    Returns:
        dict[str, float]: ``d1 d2 d3 abs_rel sq_rel rmse rmse_log log10
        silog``.
    """
    gt, pred = gt.astype(np.float64), pred.astype(np.float64)
    thresh = np.maximum(gt / pred, pred / gt)
    diff = pred - gt
    log_diff = np.log(pred) - np.log(gt)
    return {
        'd1': float((thresh < 1.25).mean()),
        'd2': float((thresh < 1.25**2).mean()),
        'd3': float((thresh < 1.25**3).mean()),
        'abs_rel': float((np.abs(diff) / gt).mean()),
        'sq_rel': float((diff**2 / gt).mean()),
        'rmse': float(np.sqrt((diff**2).mean())),
        'rmse_log': float(np.sqrt((log_diff**2).mean())),
        'log10': float(np.abs(np.log10(pred) - np.log10(gt)).mean()),
        # var() rather than mean(d²) − mean(d)², which rounding can make < 0.
        'silog': float(100 * np.sqrt(log_diff.var())),
    }


def _pixel_data(data_sample: Any, key: str) -> Tensor:
    """``data_sample[key].data`` as an ``H×W`` tensor, dict or data element.

    Args:
        data_sample (dict | SegDataSample): One sample.
        key (str): ``'pred_depth_map'`` or ``'gt_depth_map'``.

    Returns:
        Tensor: ``H×W`` map.
    """
    if isinstance(data_sample, dict):
        data = data_sample[key]['data']
    else:
        data = getattr(data_sample, key).data
    if data.dim() == 3 and data.shape[0] == 1:
        data = data[0]
    if data.dim() != 2:
        raise ValueError(f'{key} must be 1×H×W or H×W, got shape '
                         f'{tuple(data.shape)}')
    return data


@METRICS.register_module()
class DPTDepthMetric(BaseMetric):
    """Depth metrics for DPT, following BTS ``eval_with_pngs.py``.

    The interface is that of mmseg's ``DepthMetric`` and the keys are the
    same (``d1 d2 d3 abs_rel sq_rel rmse rmse_log log10 silog``). What
    differs:

    - Predictions are made finite and clamped into
      ``[min_depth_eval, max_depth_eval]`` before the metrics (NaN and +inf
      become ``max_depth_eval``, 0 and negatives ``min_depth_eval``), so no
      metric is inf or nan; mmseg's gives inf/nan for zero predictions.
    - A sample with no valid pixel is skipped with a warning; if no sample
      is left, :meth:`compute_metrics` raises a ValueError.
    - ``crop_type`` also offers the KITTI Garg crop, and the NYU crop is
      scaled to images that are not 480×640.
    - ``align='lstsq_disparity'`` is the MiDaS/DPT zero-shot protocol: per
      image, the prediction's disparity is fitted by least squares (scale
      and shift) to ``1/gt`` on the evaluated pixels; the aligned disparity
      is clamped to at least ``1/max_depth_eval`` and inverted to depth.
    - ``silog`` is BTS's ``100·std(log pred − log gt)``.

    Metrics are computed per image and averaged over images, as BTS
    ``eval_with_pngs.py`` does (and mmseg's ``DepthMetric``), not pooled
    over all pixels of the data set.

    Args:
        depth_metrics (list[str], optional): Metrics to report. Defaults to
            None, meaning all of :attr:`METRICS`.
        min_depth_eval (float): Ground truth must be above this, and
            predictions are clamped to at least this. Must be positive.
            Defaults to 1e-3 (BTS).
        max_depth_eval (float): Ground truth must be below this, and
            predictions are clamped to at most this. Required, finite: NYU
            10, KITTI 80.
        crop_type (str, optional): None, ``'nyu_crop'`` (Eigen crop, rows
            45:471 and columns 41:601 of 480×640, scaled to other sizes) or
            ``'garg_crop'`` (KITTI). Defaults to None.
        align (str, optional): None or ``'lstsq_disparity'``. Defaults to
            None.
        pred_space (str): ``'depth'`` or ``'disparity'``, what the
            prediction holds. A disparity is turned into depth as
            ``1 / max(disparity, 1/max_depth_eval)``; with
            ``align='lstsq_disparity'`` a depth prediction is inverted to
            disparity before the fit. Defaults to 'depth'.
        collect_device (str): Device used to collect results across ranks,
            ``'cpu'`` or ``'gpu'``. Defaults to 'cpu'.
        prefix (str, optional): Prefix of the metric names. Defaults to
            None.
    """
    METRICS = ('d1', 'd2', 'd3', 'abs_rel', 'sq_rel', 'rmse', 'rmse_log',
               'log10', 'silog')
    CROP_TYPES = (None, 'nyu_crop', 'garg_crop')
    ALIGNS = (None, 'lstsq_disparity')
    PRED_SPACES = ('depth', 'disparity')

    def __init__(self,
                 depth_metrics: Optional[Sequence[str]] = None,
                 min_depth_eval: float = 1e-3,
                 max_depth_eval: Optional[float] = None,
                 crop_type: Optional[str] = None,
                 align: Optional[str] = None,
                 pred_space: str = 'depth',
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if depth_metrics is None:
            depth_metrics = self.METRICS
        unknown = [m for m in depth_metrics if m not in self.METRICS]
        if unknown:
            raise ValueError(f'unknown depth metrics {unknown}; supported: '
                             f'{self.METRICS}')
        if max_depth_eval is None or not math.isfinite(max_depth_eval):
            raise ValueError(
                'max_depth_eval must be a finite depth cap (NYU 10, KITTI '
                f'80), got {max_depth_eval}')
        if not 0 < min_depth_eval < max_depth_eval:
            raise ValueError(
                'need 0 < min_depth_eval < max_depth_eval, got '
                f'{min_depth_eval} and {max_depth_eval}')
        for name, value, allowed in (('crop_type', crop_type,
                                      self.CROP_TYPES),
                                     ('align', align, self.ALIGNS),
                                     ('pred_space', pred_space,
                                      self.PRED_SPACES)):
            if value not in allowed:
                raise ValueError(
                    f'{name} must be one of {allowed}, got {value!r}')
        self.metrics = tuple(depth_metrics)
        self.min_depth_eval = float(min_depth_eval)
        self.max_depth_eval = float(max_depth_eval)
        self.crop_type = crop_type
        self.align = align
        self.pred_space = pred_space

    def process(self, data_batch: Any, data_samples: Sequence[Any]) -> None:
        """Compute the metrics of each sample and store them.

        One entry is stored per sample, None for a skipped one: the
        distributed collection interleaves the ranks' lists and cuts the
        padding by count, so every sample must leave an entry.

        Args:
            data_batch (Any): A batch from the dataloader (unused).
            data_samples (Sequence[dict | SegDataSample]): Model outputs
                with ``pred_depth_map.data`` and ``gt_depth_map.data``,
                each ``1×H×W``.
        """
        for data_sample in data_samples:
            pred = _pixel_data(data_sample, 'pred_depth_map')
            gt = _pixel_data(data_sample, 'gt_depth_map')
            if pred.shape != gt.shape:
                raise ValueError(
                    f'pred_depth_map shape {tuple(pred.shape)} and '
                    f'gt_depth_map shape {tuple(gt.shape)} differ')
            pred = pred.detach().to('cpu', torch.float64)
            gt = gt.detach().to('cpu', torch.float64)
            mask = self.eval_mask(gt)
            if not mask.any():
                warnings.warn(
                    f'{self.__class__.__name__}: a sample has no ground-truth'
                    ' pixel in the evaluation range and crop; it is skipped')
                self.results.append(None)
                continue
            depth = self.prediction_to_depth(pred, gt, mask)
            self.results.append(
                compute_depth_metrics(gt[mask].numpy(), depth[mask].numpy()))

    def eval_mask(self, gt: Tensor) -> Tensor:
        """Pixels to evaluate: ground truth in range and inside the crop.

        Args:
            gt (Tensor): Ground-truth depth, ``H×W``.

        Returns:
            Tensor: Boolean mask, ``H×W``.
        """
        # Strict bounds, as BTS; comparisons with NaN are False.
        mask = (gt > self.min_depth_eval) & (gt < self.max_depth_eval)
        if self.crop_type is None:
            return mask
        height, width = gt.shape
        if self.crop_type == 'nyu_crop':
            top, bottom, left, right = NYU_CROP
            # Rounded half up; exact on 480×640 and on its multiples.
            top, bottom = (int(math.floor(row * height / NYU_SIZE[0] + 0.5))
                           for row in (top, bottom))
            left, right = (int(math.floor(col * width / NYU_SIZE[1] + 0.5))
                           for col in (left, right))
        else:
            top, bottom = (int(f * height) for f in GARG_CROP[:2])
            left, right = (int(f * width) for f in GARG_CROP[2:])
        crop = torch.zeros_like(mask)
        crop[top:bottom, left:right] = True
        return mask & crop

    def prediction_to_depth(self, pred: Tensor, gt: Tensor,
                            mask: Tensor) -> Tensor:
        """Turn the prediction into a finite depth map in the eval range.

        Args:
            pred (Tensor): Prediction (depth or disparity), ``H×W``.
            gt (Tensor): Ground-truth depth, ``H×W``.
            mask (Tensor): Boolean mask of the evaluated pixels, ``H×W``.

        Returns:
            Tensor: Depth in ``[min_depth_eval, max_depth_eval]``, ``H×W``.
        """
        min_disparity = 1.0 / self.max_depth_eval
        if self.align == 'lstsq_disparity':
            disparity = pred
            if self.pred_space == 'depth':
                disparity = torch.where(pred > 0, 1.0 / pred, float('nan'))
            # Non-finite predictions stay out of the fit; they are set to
            # max_depth_eval below.
            fit_mask = mask & torch.isfinite(disparity)
            gt_disparity = 1.0 / torch.where(mask, gt, 1.0)
            scale, shift = compute_scale_and_shift(disparity[None],
                                                   gt_disparity[None],
                                                   fit_mask[None])
            aligned = scale[0] * disparity + shift[0]
            depth = 1.0 / aligned.clamp(min=min_disparity)
        elif self.pred_space == 'disparity':
            depth = 1.0 / pred.clamp(min=min_disparity)
        else:
            depth = pred
        depth = torch.nan_to_num(
            depth,
            nan=self.max_depth_eval,
            posinf=self.max_depth_eval,
            neginf=self.min_depth_eval)
        return depth.clamp(self.min_depth_eval, self.max_depth_eval)

    def compute_metrics(
            self, results: List[Optional[dict]]) -> Dict[str, float]:
        """Average the per-image metrics over the images not skipped.

        Args:
            results (list[dict | None]): Per-image metrics from
                :meth:`process`, None for skipped images.

        Returns:
            dict[str, float]: The metrics named in ``depth_metrics``.
        """
        logger: MMLogger = MMLogger.get_current_instance()
        kept = [r for r in results if r is not None]
        if not kept:
            raise ValueError(
                f'{self.__class__.__name__}: none of the {len(results)} '
                'samples has a ground-truth pixel in the evaluation range '
                f'({self.min_depth_eval}, {self.max_depth_eval}) and crop '
                f'{self.crop_type!r}; check the depth units and the crop')
        metrics = OrderedDict(
            (key, float(np.mean([r[key] for r in kept])))
            for key in self.metrics)

        table = PrettyTable()
        for key, value in metrics.items():
            table.add_column(key, [round(value, 5)])
        print_log(f'results ({len(kept)} of {len(results)} images):',
                  logger)
        print_log('\n' + table.get_string(), logger=logger)
        return metrics

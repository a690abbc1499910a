"""mmseg visualiser that also draws depth: image | ground truth | prediction.
"""
from typing import List, Optional, Tuple

import cv2
import mmcv
import numpy as np
from mmengine.dist import master_only
from mmengine.structures import PixelData

from mmseg.registry import VISUALIZERS
from mmseg.structures import SegDataSample
from mmseg.visualization import SegLocalVisualizer
from .render import DEPTH_CMAPS, DEPTH_TYPES, colorize_depth, side_by_side

__all__ = ['DPTLocalVisualizer']


@VISUALIZERS.register_module()
class DPTLocalVisualizer(SegLocalVisualizer):
    """``SegLocalVisualizer`` that colourises depth maps.

    For a data sample with ``pred_depth_map`` and/or ``gt_depth_map`` it
    draws, left to right, the image, the ground truth and the prediction
    (then, for joint depth + segmentation samples, the ground-truth and
    predicted label overlays),
    each colourised with a perceptual colormap with near = bright. Invalid
    ground truth (≤ 0, non-finite) is black. When prediction and ground
    truth are both metric depth they share the ground truth's value range,
    so equal colours mean equal depth; relative (inverse-depth) predictions
    get their own range. Segmentation samples are drawn by
    :class:`SegLocalVisualizer` unchanged.

    Use it in a config so that ``tools/test.py --show-dir`` and the
    validation hook draw depth::

        visualizer = dict(type='DPTLocalVisualizer',
                          vis_backends=[dict(type='LocalVisBackend')],
                          name='visualizer')

    A prediction's ``depth_type`` metainfo (set by
    :func:`dpt_mm.apis.inference_model`) overrides ``pred_depth_type``.

    Args:
        name (str): Instance name (mmengine's visualiser manager).
        classes (list, optional): Class names (segmentation).
        palette (list, optional): RGB colour per class (segmentation).
        dataset_name (str, optional): mmseg data set whose classes and
            palette are the defaults (Cityscapes if None, as in mmseg).
        depth_cmap (str): Colormap, see
            :data:`dpt_mm.visualization.DEPTH_CMAPS`. Defaults to
            ``'inferno'``.
        pred_depth_type (str): ``'inverse_depth'`` (relative DPT/MiDaS
            output, default) or ``'depth'`` (metric models).
        gt_depth_type (str): Space of ``gt_depth_map``; ``'depth'`` (the
            mmseg convention) by default.
        gap (int): White columns between panels.
        **kwargs: :class:`SegLocalVisualizer` arguments (``vis_backends``,
            ``save_dir``, ``classes``, ``palette``, ``alpha``...).

    Examples:
        >>> import numpy as np, torch
        >>> from mmengine.structures import PixelData
        >>> from mmseg.structures import SegDataSample
        >>> vis = DPTLocalVisualizer()
        >>> sample = SegDataSample()
        >>> sample.pred_depth_map = PixelData(data=torch.rand(1, 8, 10))
        >>> vis.add_datasample('demo', np.zeros((8, 10, 3), np.uint8),
        ...                    sample)
        >>> vis.get_image().shape
        (8, 20, 3)
    """

    def __init__(self,
                 name: str = 'visualizer',
                 classes: Optional[List] = None,
                 palette: Optional[List] = None,
                 dataset_name: Optional[str] = None,
                 depth_cmap: str = 'inferno',
                 pred_depth_type: str = 'inverse_depth',
                 gt_depth_type: str = 'depth',
                 gap: int = 0,
                 **kwargs) -> None:
        super().__init__(name=name, **kwargs)
        # mmseg 1.2.2's __init__ passes (palette, classes) to
        # set_dataset_meta(classes, palette): swapped. Set them in order.
        self.set_dataset_meta(classes, palette, dataset_name)
        if depth_cmap not in DEPTH_CMAPS:
            raise ValueError(f'depth_cmap must be one of '
                             f'{tuple(DEPTH_CMAPS)}, got {depth_cmap!r}')
        for name, value in (('pred_depth_type', pred_depth_type),
                            ('gt_depth_type', gt_depth_type)):
            if value not in DEPTH_TYPES:
                raise ValueError(f'{name} must be one of {DEPTH_TYPES}, '
                                 f'got {value!r}')
        self.depth_cmap = depth_cmap
        self.pred_depth_type = pred_depth_type
        self.gt_depth_type = gt_depth_type
        self.gap = gap

    def _depth_panel(self, depth_map: PixelData, size: Tuple[int, int],
                     depth_type: str,
                     value_range: Optional[Tuple[float, float]] = None
                     ) -> Tuple[np.ndarray, Tuple[float, float]]:
        vmin, vmax = value_range if value_range is not None else (None,
                                                                  None)
        rgb, used = colorize_depth(depth_map.data, self.depth_cmap, vmin,
                                   vmax, depth_type)
        if rgb.shape[:2] != size:
            # Nearest keeps invalid ground-truth pixels black.
            rgb = cv2.resize(rgb, (size[1], size[0]),
                             interpolation=cv2.INTER_NEAREST)
        return rgb, used

    def draw_depth(self,
                   image: np.ndarray,
                   data_sample: SegDataSample,
                   draw_gt: bool = True,
                   draw_pred: bool = True) -> np.ndarray:
        """Image | colourised ground truth | colourised prediction.

        Args:
            image (np.ndarray): H×W×3 RGB image.
            data_sample (SegDataSample): With ``pred_depth_map`` and/or
                ``gt_depth_map`` (1×H×W).
            draw_gt (bool): Draw the ground truth if present.
            draw_pred (bool): Draw the prediction if present.

        Returns:
            np.ndarray: The RGB picture, also set as the current image.
        """
        size = image.shape[:2]
        panels = [image]
        gt = data_sample.get('gt_depth_map') if draw_gt else None
        pred = data_sample.get('pred_depth_map') if draw_pred else None
        gt_range = None
        if gt is not None:
            gt_rgb, gt_range = self._depth_panel(gt, size, self.gt_depth_type)
            panels.append(gt_rgb)
        if pred is not None:
            pred_type = pred.metainfo.get('depth_type', self.pred_depth_type)
            shared = gt_range if pred_type == self.gt_depth_type else None
            panels.append(self._depth_panel(pred, size, pred_type, shared)[0])
        drawn = side_by_side(panels, gap=self.gap)
        self.set_image(drawn)
        return drawn

    def _append_segmentation(self, drawn: np.ndarray, image: np.ndarray,
                             data_sample: SegDataSample, draw_gt: bool,
                             draw_pred: bool,
                             with_labels: Optional[bool]) -> np.ndarray:
        """Joint samples: the depth panels, then the label overlays."""
        meta = self.dataset_meta or {}
        panels = [drawn] + [
            self._draw_sem_seg(image.copy(), data_sample.get(key),
                               meta.get('classes'), meta.get('palette'),
                               with_labels)
            for key, wanted in (('gt_sem_seg', draw_gt),
                                ('pred_sem_seg', draw_pred))
            if wanted and key in data_sample
        ]
        if len(panels) == 1:
            return drawn
        drawn = side_by_side(panels, gap=self.gap)
        self.set_image(drawn)
        return drawn

    @master_only
    def add_datasample(self,
                       name: str,
                       image: np.ndarray,
                       data_sample: Optional[SegDataSample] = None,
                       draw_gt: bool = True,
                       draw_pred: bool = True,
                       show: bool = False,
                       wait_time: float = 0,
                       out_file: Optional[str] = None,
                       step: int = 0,
                       with_labels: Optional[bool] = True) -> None:
        """Draw a data sample; depth samples as image | GT | prediction.

        Same arguments as :meth:`SegLocalVisualizer.add_datasample`: the
        picture is shown (``show``), written to ``out_file``, or else added
        to the visualisation backends at ``step``.

        Args:
            name (str): Image identifier.
            image (np.ndarray): H×W×3 RGB image.
            data_sample (SegDataSample, optional): Prediction and/or ground
                truth.
            draw_gt (bool): Draw ground truth.
            draw_pred (bool): Draw the prediction.
            show (bool): Display the picture.
            wait_time (float): Display time (s).
            out_file (str, optional): Write the picture there.
            step (int): Global step for the backends.
            with_labels (bool, optional): Class names on segmentation maps.
        """
        has_depth = data_sample is not None and (
            'pred_depth_map' in data_sample or 'gt_depth_map' in data_sample)
        if not has_depth:
            return super().add_datasample(
                name, image, data_sample, draw_gt=draw_gt,
                draw_pred=draw_pred, show=show, wait_time=wait_time,
                out_file=out_file, step=step, with_labels=with_labels)
        drawn = self.draw_depth(image, data_sample, draw_gt, draw_pred)
        drawn = self._append_segmentation(drawn, image, data_sample, draw_gt,
                                          draw_pred, with_labels)
        if show:
            self.show(drawn, win_name=name, wait_time=wait_time)
        if out_file is not None:
            mmcv.imwrite(mmcv.rgb2bgr(drawn), out_file)
        else:
            self.add_image(name, drawn, step)

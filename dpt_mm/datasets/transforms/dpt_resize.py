"""DPT's inference resize: keep the aspect ratio, sides multiples of 32.

The published DPT models were run with the original ``Resize`` transform of
isl-org/DPT (``keep_aspect_ratio=True``, ``ensure_multiple_of=32``,
``resize_method='minimal'``, OpenCV bicubic on a float image), which
Transformers reproduces in ``DPTImageProcessor`` with
``keep_aspect_ratio=True, ensure_multiple_of=32``. :class:`DPTResize` is that
transform for mmseg pipelines.

Two resampling implementations: ``backend='cv2'`` (the original code's
OpenCV on a float image) and ``backend='pil'`` (Pillow on the uint8 image,
what Transformers' ``DPTImageProcessorPil`` does, so a converted
Transformers model sees the very same network input).
"""
import math
from typing import Optional, Sequence, Tuple, Union

import cv2
import numpy as np
from mmcv.transforms import BaseTransform
from PIL import Image

from mmseg.registry import TRANSFORMS

__all__ = ['DPTResize', 'get_dpt_resize_shape', 'RESIZE_METHODS',
           'INTERPOLATIONS', 'PIL_INTERPOLATIONS', 'pil_resize']

RESIZE_METHODS = ('minimal', 'lower_bound', 'upper_bound')
INTERPOLATIONS = {
    'nearest': cv2.INTER_NEAREST,
    # Pixel-centre nearest neighbour, bit-exact with PIL's NEAREST.
    'nearest_exact': cv2.INTER_NEAREST_EXACT,
    'bilinear': cv2.INTER_LINEAR,
    'bicubic': cv2.INTER_CUBIC,
    'area': cv2.INTER_AREA,
    'lanczos': cv2.INTER_LANCZOS4,
}
# Pillow filters by name; the values are Transformers' ``resample`` ints.
PIL_INTERPOLATIONS = {
    'nearest': Image.Resampling.NEAREST,
    'lanczos': Image.Resampling.LANCZOS,
    'bilinear': Image.Resampling.BILINEAR,
    'bicubic': Image.Resampling.BICUBIC,
    'box': Image.Resampling.BOX,
    'hamming': Image.Resampling.HAMMING,
}
BACKENDS = ('cv2', 'pil')
SizeType = Union[int, Sequence[int]]


def pil_resize(img: np.ndarray, height: int, width: int,
               interpolation: str = 'bicubic') -> np.ndarray:
    """Resize with Pillow as Transformers' PIL image processors do.

    A uint8 image is resized as one 8-bit image (Pillow rounds and clips
    the result to 0–255, as ``transformers.image_transforms.resize``); any
    other type is resized channel by channel in 32-bit float mode.

    Args:
        img (np.ndarray): H×W or H×W×C image.
        height (int): Output height.
        width (int): Output width.
        interpolation (str): A key of :data:`PIL_INTERPOLATIONS`.

    Returns:
        np.ndarray: The resized image, same dtype and channel count (float
        inputs come back as float32).
    """
    resample = PIL_INTERPOLATIONS[interpolation]
    if img.dtype == np.uint8 and (img.ndim == 2 or img.shape[2] in (1, 3)):
        out = np.asarray(Image.fromarray(img.squeeze(-1) if img.ndim == 3
                                         and img.shape[2] == 1 else img)
                         .resize((width, height), resample=resample))
        return out.reshape(height, width, *img.shape[2:])
    planes = img.astype(np.float32)[..., None] if img.ndim == 2 else \
        img.astype(np.float32)
    out = np.stack([
        np.asarray(Image.fromarray(np.ascontiguousarray(
            planes[..., c])).resize((width, height), resample=resample))
        for c in range(planes.shape[2])
    ], axis=-1)
    return out[..., 0] if img.ndim == 2 else out


def _constrain_to_multiple_of(value: float,
                              multiple: int,
                              min_val: int = 0,
                              max_val: Optional[int] = None) -> int:
    # Python's round() is round-half-to-even, like np.round in the original
    # and round() in Transformers.
    out = round(value / multiple) * multiple
    if max_val is not None and out > max_val:
        out = math.floor(value / multiple) * multiple
    if out < min_val:
        out = math.ceil(value / multiple) * multiple
    # A side can round to 0 for extreme aspect ratios (e.g. 1×1000); one
    # multiple is the smallest input the network accepts.
    return max(int(out), multiple)


def get_dpt_resize_shape(height: int,
                         width: int,
                         size: SizeType = 384,
                         keep_aspect_ratio: bool = True,
                         ensure_multiple_of: int = 32,
                         resize_method: str = 'minimal') -> Tuple[int, int]:
    """Network input size for an image, as in DPT and Transformers.

    With ``resize_method='minimal'`` this equals Transformers'
    ``get_resize_output_image_size(keep_aspect_ratio, multiple)``: the side
    whose scale is closer to 1 fits the target, the other follows the aspect
    ratio, and both are rounded to a multiple of ``ensure_multiple_of``.
    ``'lower_bound'``/``'upper_bound'`` (from the original code) make both
    sides at least / at most the target. One deviation: a side never rounds
    below one multiple (Transformers would return 0 for a 1×1000 image).

    Args:
        height (int): Image height.
        width (int): Image width.
        size (int | tuple[int, int]): Target ``(height, width)``; an int is
            square. 384 for the MiDaS models.
        keep_aspect_ratio (bool): Scale both sides by the same factor.
        ensure_multiple_of (int): Both output sides are multiples of this.
        resize_method (str): ``'minimal'``, ``'lower_bound'`` or
            ``'upper_bound'``.

    Returns:
        tuple[int, int]: Output ``(height, width)``.

    Examples:
        >>> get_dpt_resize_shape(480, 640)
        (384, 512)
        >>> get_dpt_resize_shape(1, 1)
        (384, 384)
    """
    if resize_method not in RESIZE_METHODS:
        raise ValueError(f'resize_method must be one of {RESIZE_METHODS}, '
                         f'got {resize_method!r}')
    if height <= 0 or width <= 0:
        raise ValueError(f'cannot resize an empty image ({height}×{width})')
    target_h, target_w = (size, size) if isinstance(size, int) else size
    scale_h = target_h / height
    scale_w = target_w / width
    if keep_aspect_ratio:
        if resize_method == 'lower_bound':
            scale_h = scale_w = max(scale_h, scale_w)
        elif resize_method == 'upper_bound':
            scale_h = scale_w = min(scale_h, scale_w)
        elif abs(1 - scale_w) < abs(1 - scale_h):
            scale_h = scale_w  # scale as little as possible: fit width
        else:
            scale_w = scale_h
    # lower_bound: sides at least the target; upper_bound: at most.
    min_h = target_h if resize_method == 'lower_bound' else 0
    min_w = target_w if resize_method == 'lower_bound' else 0
    max_h = target_h if resize_method == 'upper_bound' else None
    max_w = target_w if resize_method == 'upper_bound' else None
    new_h = _constrain_to_multiple_of(scale_h * height, ensure_multiple_of,
                                      min_h, max_h)
    new_w = _constrain_to_multiple_of(scale_w * width, ensure_multiple_of,
                                      min_w, max_w)
    return new_h, new_w


@TRANSFORMS.register_module()
class DPTResize(BaseTransform):
    """Resize like the published DPT models' inference code.

    The image is converted to float32 before resizing, as in the original
    (which resizes a [0, 1] float image), so bicubic over/undershoot is kept
    instead of being rounded and clipped to uint8. Segmentation and depth
    labels, when present, are resized with nearest neighbour.

    Required Keys:

    - img

    Modified Keys:

    - img, img_shape, gt_seg_map (optional), gt_depth_map (optional)

    Added Keys:

    - scale_factor ``(w_scale, h_scale)``, keep_ratio

    Args:
        size (int | tuple[int, int]): Target ``(height, width)`` (note: not
            mmseg's ``(w, h)`` ``scale``); an int is square. 384 for the
            MiDaS models, 480 for the ADE20K models of the original release.
        keep_aspect_ratio (bool): Keep the aspect ratio. Defaults to True.
        ensure_multiple_of (int): Output sides are multiples of this (32:
            the network's total stride).
        resize_method (str): ``'minimal'`` (default, the published models),
            ``'lower_bound'`` or ``'upper_bound'``.
        interpolation (str): Interpolation of the image. With OpenCV:
            ``'bicubic'`` (default, ``cv2.INTER_CUBIC``), ``'bilinear'``,
            ``'area'``, ``'nearest'``, ``'nearest_exact'`` (same pixels as
            PIL's NEAREST), ``'lanczos'``. With Pillow: ``'bicubic'``,
            ``'bilinear'``, ``'nearest'``, ``'lanczos'``, ``'box'``,
            ``'hamming'``.
        to_float32 (bool): Return the image as float32. Defaults to True.
            With OpenCV the resize itself runs in float32 (no rounding, as
            the original code); Pillow resizes a uint8 image in 8 bits.
        backend (str): ``'cv2'`` (default, the original DPT code) or
            ``'pil'`` (Transformers' ``DPTImageProcessorPil``).
        pad_size_divisor (int, optional): Pad the resized image on all
            sides, centred, to multiples of this, as Transformers'
            ``do_pad=True, size_divisor=...``. The padding belongs to the
            image (``img_shape`` is the padded size), as there.
        pad_val (float | Sequence[float]): Padding value per channel of the
            image as it is (BGR); Transformers pads the normalised image
            with 0, i.e. with the normalisation mean.

    Examples:
        >>> import numpy as np
        >>> out = DPTResize(size=384)(dict(img=np.zeros((480, 640, 3),
        ...                                             np.uint8)))
        >>> out['img'].shape, out['img_shape']
        ((384, 512, 3), (384, 512))
    """

    def __init__(self,
                 size: SizeType = 384,
                 keep_aspect_ratio: bool = True,
                 ensure_multiple_of: int = 32,
                 resize_method: str = 'minimal',
                 interpolation: str = 'bicubic',
                 to_float32: bool = True,
                 backend: str = 'cv2',
                 pad_size_divisor: Optional[int] = None,
                 pad_val: Union[float, Sequence[float]] = 0) -> None:
        if backend not in BACKENDS:
            raise ValueError(f'DPTResize: backend must be one of {BACKENDS}, '
                             f'got {backend!r}')
        choices = INTERPOLATIONS if backend == 'cv2' else PIL_INTERPOLATIONS
        if interpolation not in choices:
            raise ValueError(f'DPTResize: interpolation must be one of '
                             f'{tuple(choices)} with backend={backend!r}, '
                             f'got {interpolation!r}')
        if pad_size_divisor is not None and pad_size_divisor < 1:
            raise ValueError('DPTResize: pad_size_divisor must be >= 1, got '
                             f'{pad_size_divisor}')
        if resize_method not in RESIZE_METHODS:
            raise ValueError(f'resize_method must be one of {RESIZE_METHODS}, '
                             f'got {resize_method!r}')
        if ensure_multiple_of < 1:
            raise ValueError('ensure_multiple_of must be >= 1, got '
                             f'{ensure_multiple_of}')
        self.size = size if isinstance(size, int) else tuple(size)
        self.keep_aspect_ratio = keep_aspect_ratio
        self.ensure_multiple_of = ensure_multiple_of
        self.resize_method = resize_method
        self.interpolation = interpolation
        self.to_float32 = to_float32
        self.backend = backend
        self.pad_size_divisor = pad_size_divisor
        self.pad_val = pad_val

    def transform(self, results: dict) -> dict:
        """Resize ``results['img']`` (and labels) to the DPT network size.

        Args:
            results (dict): Result dict with ``img``.

        Returns:
            dict: ``results`` with the resized image and updated meta keys.
        """
        img = results['img']
        height, width = img.shape[:2]
        new_h, new_w = get_dpt_resize_shape(
            height, width, self.size, self.keep_aspect_ratio,
            self.ensure_multiple_of, self.resize_method)
        if self.backend == 'pil':
            resized = pil_resize(img, new_h, new_w, self.interpolation)
            if self.to_float32:
                resized = resized.astype(np.float32, copy=False)
        else:
            if self.to_float32:
                img = img.astype(np.float32, copy=False)
            resized = cv2.resize(
                img, (new_w, new_h),
                interpolation=INTERPOLATIONS[self.interpolation])
            if img.ndim == 3 and resized.ndim == 2:  # cv2 drops 1 channel
                resized = resized[..., None]
        if self.pad_size_divisor:
            resized = self._center_pad(resized, self.pad_val)
        results['img'] = resized
        results['img_shape'] = resized.shape[:2]
        results['scale_factor'] = (new_w / width, new_h / height)
        results['keep_ratio'] = self.keep_aspect_ratio
        for key in ('gt_seg_map', 'gt_depth_map'):
            if results.get(key) is not None:
                label = cv2.resize(results[key], (new_w, new_h),
                                   interpolation=cv2.INTER_NEAREST)
                if self.pad_size_divisor:  # ignored / invalid padding
                    label = self._center_pad(
                        label, 255 if key == 'gt_seg_map' else 0)
                results[key] = label
        return results

    def _center_pad(self, img: np.ndarray,
                    value: Union[float, Sequence[float]]) -> np.ndarray:
        """Transformers' ``DPTImageProcessor.pad_image``: centred, the
        extra pixel (odd padding) at the bottom/right."""
        divisor = self.pad_size_divisor
        pads = []
        for side in img.shape[:2]:
            extra = -side % divisor
            pads.append((extra // 2, extra - extra // 2))
        if not any(sum(p) for p in pads):
            return img
        values = np.broadcast_to(np.asarray(value, img.dtype),
                                 img.shape[2:])
        out = np.empty((img.shape[0] + sum(pads[0]),
                        img.shape[1] + sum(pads[1]), *img.shape[2:]),
                       img.dtype)
        out[...] = values
        out[pads[0][0]:pads[0][0] + img.shape[0],
            pads[1][0]:pads[1][0] + img.shape[1]] = img
        return out

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(size={self.size}, '
                f'keep_aspect_ratio={self.keep_aspect_ratio}, '
                f'ensure_multiple_of={self.ensure_multiple_of}, '
                f"resize_method='{self.resize_method}', "
                f"interpolation='{self.interpolation}', "
                f'to_float32={self.to_float32}, '
                f"backend='{self.backend}', "
                f'pad_size_divisor={self.pad_size_divisor}, '
                f'pad_val={self.pad_val})')

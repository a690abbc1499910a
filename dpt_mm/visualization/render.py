"""Pictures of predictions: colourised depth, palette maps, overlays.

Every function here takes and returns **RGB** uint8 images (mmseg's
visualiser convention); :func:`dpt_mm.visualization.save_image` writes them
with OpenCV, converting to BGR.
"""
from typing import Optional, Sequence, Tuple, Union

import cv2
import numpy as np
import torch

__all__ = [
    'DEPTH_CMAPS', 'DEPTH_TYPES', 'colorize_depth', 'colorize_seg',
    'default_palette', 'overlay_seg', 'side_by_side', 'to_numpy_map'
]

DEPTH_CMAPS = {
    'inferno': cv2.COLORMAP_INFERNO,
    'magma': cv2.COLORMAP_MAGMA,
    'plasma': cv2.COLORMAP_PLASMA,
    'viridis': cv2.COLORMAP_VIRIDIS,
    'turbo': cv2.COLORMAP_TURBO,
    'jet': cv2.COLORMAP_JET,
    'gray': None,
}
# 'inverse_depth': larger = nearer (the MiDaS/DPT relative output);
# 'depth': metric depth, larger = farther, 0 = invalid (ground truth).
DEPTH_TYPES = ('inverse_depth', 'depth')
ArrayLike = Union[np.ndarray, torch.Tensor]


def to_numpy_map(data: ArrayLike) -> np.ndarray:
    """A H×W numpy map from a tensor/array of shape H×W or 1×H×W.

    Args:
        data (np.ndarray | Tensor): The map (``PixelData.data`` is 1×H×W).

    Returns:
        np.ndarray: H×W array.
    """
    if isinstance(data, torch.Tensor):
        data = data.detach().cpu().numpy()
    data = np.asarray(data)
    if data.ndim == 3 and data.shape[0] == 1:
        data = data[0]
    if data.ndim != 2:
        raise ValueError(f'expected a H×W or 1×H×W map, got shape '
                         f'{data.shape}')
    return data


def colorize_depth(depth: ArrayLike,
                   cmap: str = 'inferno',
                   vmin: Optional[float] = None,
                   vmax: Optional[float] = None,
                   depth_type: str = 'inverse_depth',
                   invalid_color: Tuple[int, int, int] = (0, 0, 0)
                   ) -> Tuple[np.ndarray, Tuple[float, float]]:
    """Colourise a depth map with a perceptual colormap, near = bright.

    For ``'inverse_depth'`` (DPT's relative output) larger values are
    nearer and map to the bright end; for metric ``'depth'`` the scale is
    inverted so that near is bright too. Non-finite values, and for
    ``'depth'`` values ≤ 0 (the usual "no ground truth" marker), are
    invalid: they are drawn in ``invalid_color`` and ignored for the range.

    Args:
        depth (np.ndarray | Tensor): H×W (or 1×H×W) map.
        cmap (str): One of :data:`DEPTH_CMAPS` (OpenCV colormaps):
            ``'inferno'`` (default), ``'turbo'``, ``'magma'``, ``'plasma'``,
            ``'viridis'``, ``'jet'``, ``'gray'``.
        vmin (float, optional): Value at the dark/far end of the range for
            ``'inverse_depth'``, at the near/bright end for ``'depth'``.
            Default: the minimum valid value.
        vmax (float, optional): The other end; default the maximum.
        depth_type (str): ``'inverse_depth'`` or ``'depth'``.
        invalid_color (tuple[int, int, int]): RGB colour of invalid pixels.

    Returns:
        tuple: The H×W×3 RGB uint8 picture and the ``(vmin, vmax)`` range
        used (pass it to the next call to colour several maps alike).

    Examples:
        >>> import numpy as np
        >>> disparity = np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4)
        >>> rgb, (lo, hi) = colorize_depth(disparity, cmap='turbo')
        >>> rgb.shape, rgb.dtype, (lo, hi)
        ((3, 4, 3), dtype('uint8'), (0.0, 1.0))
    """
    if cmap not in DEPTH_CMAPS:
        raise ValueError(f'cmap must be one of {tuple(DEPTH_CMAPS)}, '
                         f'got {cmap!r}')
    if depth_type not in DEPTH_TYPES:
        raise ValueError(f'depth_type must be one of {DEPTH_TYPES}, '
                         f'got {depth_type!r}')
    values = to_numpy_map(depth).astype(np.float64)
    valid = np.isfinite(values)
    if depth_type == 'depth':
        valid &= values > 0
    if valid.any():
        lo = float(values[valid].min()) if vmin is None else float(vmin)
        hi = float(values[valid].max()) if vmax is None else float(vmax)
    else:
        lo = 0.0 if vmin is None else float(vmin)
        hi = 1.0 if vmax is None else float(vmax)
    span = hi - lo
    # A constant map (span 0) is drawn at the dark end rather than dividing
    # by zero.
    scaled = (np.where(valid, values, lo) - lo) / span if span > 0 else \
        np.zeros_like(values)
    if depth_type == 'depth':
        scaled = 1.0 - scaled  # near (small depth) = bright
    gray = np.clip(np.round(scaled * 255.0), 0, 255).astype(np.uint8)
    if DEPTH_CMAPS[cmap] is None:
        rgb = np.repeat(gray[..., None], 3, axis=2)
    else:
        rgb = cv2.applyColorMap(gray, DEPTH_CMAPS[cmap])[..., ::-1]
    rgb = np.ascontiguousarray(rgb)
    rgb[~valid] = invalid_color
    return rgb, (lo, hi)


def default_palette(num_classes: int, seed: int = 0) -> np.ndarray:
    """A fixed pseudo-random RGB palette for models without dataset meta.

    Args:
        num_classes (int): Number of colours.
        seed (int): Random seed; the same seed gives the same palette.

    Returns:
        np.ndarray: num_classes×3 uint8 RGB colours.
    """
    rng = np.random.RandomState(seed)
    return rng.randint(0, 256, size=(num_classes, 3)).astype(np.uint8)


def colorize_seg(seg: ArrayLike,
                 palette: Union[Sequence[Sequence[int]], np.ndarray],
                 ignore_color: Tuple[int, int, int] = (0, 0, 0)
                 ) -> np.ndarray:
    """Paint a label map with a palette.

    Args:
        seg (np.ndarray | Tensor): H×W (or 1×H×W) integer class indices.
        palette (Sequence | np.ndarray): One RGB colour per class (mmseg's
            ``dataset_meta['palette']``).
        ignore_color (tuple[int, int, int]): RGB colour of labels outside
            the palette (e.g. the ignore index 255).

    Returns:
        np.ndarray: H×W×3 RGB uint8 picture.

    Examples:
        >>> import numpy as np
        >>> colorize_seg(np.array([[0, 1]]), [[255, 0, 0], [0, 0, 255]])
        array([[[255,   0,   0],
                [  0,   0, 255]]], dtype=uint8)
    """
    labels = to_numpy_map(seg).astype(np.int64)
    colors = np.asarray(palette, dtype=np.uint8).reshape(-1, 3)
    table = np.concatenate([colors, np.asarray([ignore_color], np.uint8)])
    index = np.where((labels >= 0) & (labels < len(colors)), labels,
                     len(colors))
    return table[index]


def overlay_seg(image: np.ndarray,
                seg: ArrayLike,
                palette: Union[Sequence[Sequence[int]], np.ndarray],
                alpha: float = 0.5) -> np.ndarray:
    """Blend a palette-coloured label map over an image.

    Args:
        image (np.ndarray): H×W×3 RGB image (uint8, or float in 0–255).
        seg (np.ndarray | Tensor): H×W (or 1×H×W) class indices, same size.
        palette (Sequence | np.ndarray): One RGB colour per class.
        alpha (float): Weight of the colours, in [0, 1].

    Returns:
        np.ndarray: H×W×3 RGB uint8 picture.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f'alpha must be in [0, 1], got {alpha}')
    color = colorize_seg(seg, palette)
    if image.shape[:2] != color.shape[:2]:
        raise ValueError(f'image {image.shape[:2]} and label map '
                         f'{color.shape[:2]} sizes differ')
    blend = image.astype(np.float32) * (1 - alpha) + \
        color.astype(np.float32) * alpha
    return np.clip(np.round(blend), 0, 255).astype(np.uint8)


def side_by_side(images: Sequence[np.ndarray], gap: int = 0) -> np.ndarray:
    """Concatenate pictures left to right at the first one's height.

    Args:
        images (Sequence[np.ndarray]): H×W×3 uint8 pictures (H×W gray ones
            are replicated to 3 channels); others are resized (keeping their
            aspect ratio) to the height of the first.
        gap (int): White columns between pictures.

    Returns:
        np.ndarray: The combined H×W'×3 uint8 picture.
    """
    if not images:
        raise ValueError('side_by_side needs at least one image')
    height = images[0].shape[0]
    panels = []
    for img in images:
        img = np.asarray(img)
        if img.ndim == 2:
            img = np.repeat(img[..., None], 3, axis=2)
        img = np.clip(img, 0, 255).astype(np.uint8)
        if img.shape[0] != height:
            width = max(1, round(img.shape[1] * height / img.shape[0]))
            img = cv2.resize(img, (width, height),
                             interpolation=cv2.INTER_AREA)
        if panels and gap > 0:
            panels.append(np.full((height, gap, 3), 255, np.uint8))
        panels.append(img)
    return np.concatenate(panels, axis=1)

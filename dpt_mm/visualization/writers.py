"""Files for predictions: 16-bit PNG depth with a JSON sidecar, .npy, images.

Raw depth as a 16-bit PNG stores ``round(value * scale)`` clipped to
[0, 65535]. The scale (and how to decode) is recorded in a JSON sidecar next
to the PNG, same name with ``.json``::

    kitchen_depth_raw.png    uint16, value = pixel / scale
    kitchen_depth_raw.json   {"scale": 1234.5, "depth_type": ..., ...}

A sidecar rather than a scale in the file name keeps the names predictable
for scripts, and can carry the depth type and value range as well.
:func:`read_depth_png16` decodes the pair.
"""
import json
import os
import os.path as osp
from typing import Optional, Union

import cv2
import numpy as np

from .render import DEPTH_TYPES, ArrayLike, to_numpy_map

__all__ = [
    'PNG16_MAX', 'read_depth_png16', 'save_depth_npy', 'save_image',
    'sidecar_path', 'write_depth_png16'
]

PNG16_MAX = 65535
PathType = Union[str, os.PathLike]


def sidecar_path(png_path: PathType) -> str:
    """The JSON sidecar of a 16-bit depth PNG: same path, ``.json``.

    Args:
        png_path (str | PathLike): Path of the PNG.

    Returns:
        str: Path of the sidecar.
    """
    return osp.splitext(os.fspath(png_path))[0] + '.json'


def _make_parent(path: PathType) -> None:
    parent = osp.dirname(os.fspath(path))
    if parent:
        os.makedirs(parent, exist_ok=True)


def save_image(path: PathType, image: np.ndarray) -> str:
    """Write an RGB uint8 picture (PNG, JPEG... by extension).

    Args:
        path (str | PathLike): Output file; folders are created.
        image (np.ndarray): H×W×3 RGB (converted to BGR for OpenCV) or H×W
            uint8 image.

    Returns:
        str: The path written.
    """
    path = os.fspath(path)
    _make_parent(path)
    out = image[..., ::-1] if image.ndim == 3 else image
    if not cv2.imwrite(path, np.ascontiguousarray(out)):
        raise OSError(f'could not write image {path} (unsupported extension '
                      'or unwritable folder)')
    return path


def write_depth_png16(path: PathType,
                      depth: ArrayLike,
                      scale: Optional[float] = None,
                      depth_type: str = 'inverse_depth') -> float:
    """Write raw depth as a 16-bit PNG plus its JSON sidecar.

    Pixels hold ``round(depth * scale)``, clipped to [0, 65535];
    non-finite values become 0 (bicubic resizing can also undershoot a
    little below 0 at sharp edges; those pixels clip to 0 too).

    Args:
        path (str | PathLike): Output ``.png``; the sidecar is
            :func:`sidecar_path` of it.
        depth (np.ndarray | Tensor): H×W (or 1×H×W) map.
        scale (float, optional): Pixel units per depth unit (e.g. 1000 for
            millimetres from metres, 256 as in KITTI). Default: the largest
            scale that fits the map's maximum, 65535 / max (1 for an empty
            or all-zero map), which keeps the most precision for relative
            depth.
        depth_type (str): ``'inverse_depth'`` or ``'depth'``, recorded in
            the sidecar.

    Returns:
        float: The scale used.

    Examples:
        >>> import numpy as np, tempfile, os.path as osp
        >>> tmp = tempfile.mkdtemp()
        >>> scale = write_depth_png16(osp.join(tmp, 'a_depth_raw.png'),
        ...                           np.full((2, 3), 2.0), scale=1000)
        >>> float(read_depth_png16(osp.join(tmp, 'a_depth_raw.png'))[0, 0])
        2.0
    """
    if depth_type not in DEPTH_TYPES:
        raise ValueError(f'depth_type must be one of {DEPTH_TYPES}, '
                         f'got {depth_type!r}')
    values = to_numpy_map(depth).astype(np.float64)
    finite = np.isfinite(values)
    if scale is None:
        peak = float(values[finite].max()) if finite.any() else 0.0
        scale = PNG16_MAX / peak if peak > 0 else 1.0
    if not scale > 0:
        raise ValueError(f'scale must be positive, got {scale}')
    encoded = np.where(finite, values * scale, 0.0)
    encoded = np.clip(np.round(encoded), 0, PNG16_MAX).astype(np.uint16)
    path = os.fspath(path)
    _make_parent(path)
    if not cv2.imwrite(path, encoded):
        raise OSError(f'could not write 16-bit PNG {path}')
    clipped = int(((values * scale > PNG16_MAX) | (values < 0))[finite].sum())
    meta = dict(
        scale=float(scale),
        decode='value = pixel / scale',
        depth_type=depth_type,
        min=float(values[finite].min()) if finite.any() else None,
        max=float(values[finite].max()) if finite.any() else None,
        clipped_pixels=clipped,
        shape=list(values.shape))
    with open(sidecar_path(path), 'w') as f:
        json.dump(meta, f, indent=2)
    return float(scale)


def read_depth_png16(path: PathType,
                     scale: Optional[float] = None) -> np.ndarray:
    """Decode a 16-bit depth PNG written by :func:`write_depth_png16`.

    Args:
        path (str | PathLike): The ``.png`` file.
        scale (float, optional): Overrides the sidecar's scale; needed when
            there is no sidecar.

    Returns:
        np.ndarray: H×W float32 depth (``pixel / scale``).
    """
    path = os.fspath(path)
    pixels = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if pixels is None:
        raise OSError(f'could not read 16-bit PNG {path}')
    if pixels.dtype != np.uint16:
        raise ValueError(f'{path} is {pixels.dtype}, not a 16-bit PNG')
    if scale is None:
        side = sidecar_path(path)
        if not osp.isfile(side):
            raise FileNotFoundError(
                f'no sidecar {side} for {path}: pass scale= explicitly')
        with open(side) as f:
            scale = float(json.load(f)['scale'])
    return (pixels.astype(np.float64) / scale).astype(np.float32)


def save_depth_npy(path: PathType, depth: ArrayLike) -> str:
    """Save raw depth as a float32 H×W ``.npy`` file.

    Args:
        path (str | PathLike): Output file.
        depth (np.ndarray | Tensor): H×W (or 1×H×W) map.

    Returns:
        str: The path written.
    """
    path = os.fspath(path)
    _make_parent(path)
    np.save(path, to_numpy_map(depth).astype(np.float32))
    return path

"""Loading transforms for images and depth/disparity maps.

Every error raised here names the file it is about: a data set of tens of
thousands of files is only debuggable when the one bad file is named.
"""
import io
import os.path as osp
from typing import Dict, Optional

import cv2
import mmcv
import mmengine.fileio as fileio
import numpy as np
from mmcv.transforms import BaseTransform, LoadImageFromFile
from mmseg.datasets.transforms import LoadAnnotations
from mmseg.registry import TRANSFORMS

from ..pfm import decode_pfm

__all__ = [
    'DataFileError', 'LoadAnnotationsChecked', 'LoadDepthMap',
    'LoadImageChecked', 'check_annotation_size', 'load_depth_map',
    'load_image_checked', 'load_validity_mask'
]

MAP_TYPES = ('depth', 'disparity')


class DataFileError(ValueError):
    """A data file exists but cannot be used; the message names the file."""


def _get_bytes(path: str, what: str,
               backend_args: Optional[dict] = None) -> bytes:
    try:
        data = fileio.get(path, backend_args=backend_args)
    except FileNotFoundError:
        raise FileNotFoundError(f'{what} not found: {path}') from None
    except (IsADirectoryError, PermissionError) as e:
        raise DataFileError(f'cannot read {what} {path}: {e}') from None
    if not data:
        raise DataFileError(f'empty {what} file: {path}')
    return data


def _truncation_reason(data: bytes) -> Optional[str]:
    """Why ``data`` looks cut short, or None.

    libjpeg fills a truncated JPEG with grey and only prints a warning, so a
    half-downloaded file would otherwise train silently.
    """
    if data[:2] == b'\xff\xd8':
        # A JPEG ends with the EOI marker; some writers pad with zeros.
        if not data.rstrip(b'\x00').endswith(b'\xff\xd9'):
            return 'truncated JPEG (no end-of-image marker)'
    elif data[:8] == b'\x89PNG\r\n\x1a\n':
        if b'IEND' not in data[-32:]:
            return 'truncated PNG (no IEND chunk)'
    return None


def load_image_checked(path: str,
                       color_type: str = 'color',
                       backend: str = 'cv2',
                       check_complete: bool = True,
                       backend_args: Optional[dict] = None) -> np.ndarray:
    """Read an image, raising an error that names the file on any problem.

    Args:
        path (str): Image path (any mmengine file backend).
        color_type (str): mmcv decode flag. With ``'color'`` (default) the
            result is always 3-channel BGR: grayscale is replicated and the
            alpha channel of RGBA/LA images is dropped.
        backend (str): mmcv decode backend. Defaults to ``'cv2'``.
        check_complete (bool): Reject JPEGs without an end-of-image marker
            and PNGs without an IEND chunk (truncated downloads). Defaults to
            True.
        backend_args (dict, optional): mmengine file backend arguments.

    Returns:
        np.ndarray: H×W×3 uint8 BGR image for ``color_type='color'``.

    Raises:
        FileNotFoundError: The file does not exist.
        DataFileError: The file is empty, truncated or cannot be decoded.
    """
    data = _get_bytes(path, 'image', backend_args)
    if check_complete:
        reason = _truncation_reason(data)
        if reason is not None:
            raise DataFileError(f'{reason}: {path}')
    try:
        img = mmcv.imfrombytes(data, flag=color_type, backend=backend)
    except Exception as e:  # decoders raise many different types
        raise DataFileError(f'cannot decode image {path}: {e}') from e
    if img is None:
        raise DataFileError(
            f'cannot decode image (corrupt or unsupported format): {path}')
    if color_type == 'color':
        if img.ndim == 2:
            img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
        elif img.shape[2] == 1:
            img = np.repeat(img, 3, axis=2)
        elif img.shape[2] == 4:
            img = cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)
    return img


def _decode_map(data: bytes, path: str, depth_scale: float,
                allow_8bit: bool) -> np.ndarray:
    suffix = osp.splitext(path)[1].lower()
    try:
        if suffix == '.npy':
            values = np.load(io.BytesIO(data), allow_pickle=False)
        elif suffix == '.pfm':
            values, _ = decode_pfm(data)
        else:
            values = cv2.imdecode(
                np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except Exception as e:
        raise DataFileError(f'cannot decode depth map {path}: {e}') from e
    if values is None:
        raise DataFileError(
            f'cannot decode depth map (corrupt or unsupported format): {path}')
    if values.ndim == 3 and values.shape[2] == 1:
        values = values[..., 0]
    if values.ndim != 2:
        raise DataFileError(f'depth map must have a single channel, got '
                            f'shape {values.shape}: {path}')
    if values.dtype == np.uint8 and suffix != '.npy' and not allow_8bit:
        raise DataFileError(
            f'8-bit depth map where a 16-bit one is expected: {path}. '
            'An 8-bit PNG holds only 256 levels (with depth_scale='
            f'{depth_scale:g}, at most {255 / depth_scale:g}); this is '
            'usually a wrong conversion. If the data set really stores '
            '8-bit maps, set allow_8bit=True.')
    if not np.issubdtype(values.dtype, np.number):  # bool, object, str
        raise DataFileError(
            f'depth map has non-numeric dtype {values.dtype}: {path}')
    if np.issubdtype(values.dtype, np.integer):
        # Integer maps store fixed-point values (NYU: mm, KITTI: 1/256 m).
        values = values.astype(np.float32) / np.float32(depth_scale)
    else:
        # Float maps (.npy, .pfm, float TIFF) already hold the values.
        values = values.astype(np.float32)
    return values


def load_validity_mask(path: str,
                       backend_args: Optional[dict] = None) -> np.ndarray:
    """Read a validity mask image (nonzero = valid).

    Args:
        path (str): Mask path (PNG or any format cv2 decodes).
        backend_args (dict, optional): mmengine file backend arguments.

    Returns:
        np.ndarray: H×W bool array, True where the map is valid.
    """
    data = _get_bytes(path, 'validity mask', backend_args)
    mask = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if mask is None:
        raise DataFileError(f'cannot decode validity mask: {path}')
    if mask.ndim == 3:
        mask = mask.max(axis=2)
    return mask != 0


def load_depth_map(path: str,
                   depth_scale: float = 1.0,
                   map_type: str = 'depth',
                   mask_path: Optional[str] = None,
                   allow_8bit: bool = False,
                   backend_args: Optional[dict] = None) -> np.ndarray:
    """Read a depth or disparity map as a depth map with 0 = invalid.

    Args:
        path (str): ``.png`` (16-bit; any cv2 format), ``.npy`` or ``.pfm``.
        depth_scale (float): An integer map's stored value per unit: 1000
            for millimetre PNGs (NYU), 256 for KITTI. Float maps are read as
            they are. Defaults to 1.
        map_type (str): ``'depth'`` or ``'disparity'``. A disparity map is
            inverted (``1 / d`` where ``d > 0``), so the result is always
            depth, up to the data set's scale (and, for relative data, the
            shift in disparity that the evaluation's alignment removes).
        mask_path (str, optional): Validity mask; pixels where it is zero
            become invalid.
        allow_8bit (bool): Accept 8-bit images. Defaults to False.
        backend_args (dict, optional): mmengine file backend arguments.

    Returns:
        np.ndarray: H×W float32 depth; NaN, inf, negative and masked pixels
        are 0.

    Raises:
        FileNotFoundError: The map or the mask does not exist.
        DataFileError: A file cannot be decoded, is 8-bit without
            ``allow_8bit``, is multi-channel, or the mask's size differs.
    """
    if map_type not in MAP_TYPES:
        raise ValueError(f'map_type must be one of {MAP_TYPES}, '
                         f'got {map_type!r}')
    data = _get_bytes(path, 'depth map', backend_args)
    values = _decode_map(data, path, depth_scale, allow_8bit)
    invalid = ~np.isfinite(values) | (values < 0)
    if mask_path is not None:
        valid = load_validity_mask(mask_path, backend_args)
        if valid.shape != values.shape:
            raise DataFileError(
                f'validity mask size {valid.shape} differs from the depth '
                f'map size {values.shape} of {path}: {mask_path}')
        invalid |= ~valid
    values[invalid] = 0
    if map_type == 'disparity':
        depth = np.zeros_like(values)
        positive = values > 0
        depth[positive] = 1.0 / values[positive]
        values = depth
    return values


@TRANSFORMS.register_module()
class LoadImageChecked(LoadImageFromFile):
    """``LoadImageFromFile`` whose errors name the file.

    mmcv's loader turns a missing, empty or corrupt file into an assertion or
    an OpenCV error that does not say which file it was, and reads a
    truncated JPEG as a half-grey image. This loader raises
    ``FileNotFoundError`` / :class:`DataFileError` naming the file, rejects
    truncated JPEG/PNG files, and always returns 3-channel BGR for
    ``color_type='color'`` (grayscale replicated, alpha dropped).

    Required Keys:

    - img_path

    Added Keys:

    - img
    - img_shape
    - ori_shape

    Args:
        check_complete (bool): Reject truncated JPEG/PNG files. Defaults to
            True.
        **kwargs: Arguments of mmcv's ``LoadImageFromFile`` (``to_float32``,
            ``color_type``, ``imdecode_backend``, ``ignore_empty``,
            ``backend_args``). With ``ignore_empty=True`` a bad file returns
            None, and the data set draws another sample, as in mmcv.
    """

    def __init__(self, check_complete: bool = True, **kwargs) -> None:
        super().__init__(**kwargs)
        self.check_complete = check_complete

    def transform(self, results: dict) -> Optional[dict]:
        """Load the image at ``results['img_path']``.

        Args:
            results (dict): Result dict with ``img_path``.

        Returns:
            dict or None: ``results`` with ``img``, ``img_shape`` and
            ``ori_shape``; None for a bad file when ``ignore_empty``.
        """
        filename = results['img_path']
        try:
            img = load_image_checked(
                filename,
                color_type=self.color_type,
                backend=self.imdecode_backend,
                check_complete=self.check_complete,
                backend_args=self.backend_args)
        except (FileNotFoundError, DataFileError):
            if self.ignore_empty:
                return None
            raise
        if self.to_float32:
            img = img.astype(np.float32)
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}('
                f'check_complete={self.check_complete}, '
                f'to_float32={self.to_float32}, '
                f"color_type='{self.color_type}', "
                f"imdecode_backend='{self.imdecode_backend}', "
                f'ignore_empty={self.ignore_empty}, '
                f'backend_args={self.backend_args})')


@TRANSFORMS.register_module()
class LoadDepthMap(BaseTransform):
    """Load a depth or disparity map as ``gt_depth_map`` (metres, 0 = invalid).

    The drop-in for mmseg's ``LoadDepthAnnotation``: the map goes to
    ``results['gt_depth_map']`` and its key to ``results['seg_fields']``, so
    mmseg's ``Resize`` (nearest), ``RandomCrop``, ``RandomFlip`` and
    ``PackSegInputs`` treat it like a label map. On top of that it reads
    16-bit PNG, ``.npy`` and ``.pfm``, applies an optional validity mask,
    inverts disparity maps, and turns NaN/inf/negative values into 0.

    Conventions a data set can put in its data info (the transform's own
    arguments win when given):

    - ``depth_scale``: stored integer value per metre (NYU PNG 1000,
      KITTI 256).
    - ``depth_map_type``: ``'depth'`` or ``'disparity'``.
    - ``mask_path``: validity mask, nonzero = valid (None: no mask).

    8-bit PNGs are rejected with an error naming the file unless
    ``allow_8bit=True``: 256 levels are almost always a broken conversion of
    a 16-bit map, and training on them fails silently.

    Required Keys:

    - depth_map_path

    Added Keys:

    - gt_depth_map (np.ndarray): H×W float32 depth, 0 = invalid.
    - seg_fields (list): ``'gt_depth_map'`` appended.
    - depth_rescale_factor (float): ``1 / depth_scale``, as mmseg's loader
      sets it.

    Args:
        depth_scale (float, optional): Stored integer value per unit. None
            (default): the data info's ``depth_scale``, else 1.
        map_type (str, optional): ``'depth'`` or ``'disparity'``. None
            (default): the data info's ``depth_map_type``, else depth.
        allow_8bit (bool): Accept 8-bit maps. Defaults to False.
        backend_args (dict, optional): mmengine file backend arguments.
    """

    def __init__(self,
                 depth_scale: Optional[float] = None,
                 map_type: Optional[str] = None,
                 allow_8bit: bool = False,
                 backend_args: Optional[dict] = None) -> None:
        super().__init__()
        if map_type is not None and map_type not in MAP_TYPES:
            raise ValueError(f'map_type must be one of {MAP_TYPES}, '
                             f'got {map_type!r}')
        if depth_scale is not None and depth_scale <= 0:
            raise ValueError(f'depth_scale must be > 0, got {depth_scale}')
        self.depth_scale = depth_scale
        self.map_type = map_type
        self.allow_8bit = allow_8bit
        self.backend_args = backend_args.copy() if backend_args else None

    def transform(self, results: Dict) -> Dict:
        """Load ``results['depth_map_path']`` into ``gt_depth_map``.

        Args:
            results (dict): Result dict with ``depth_map_path``.

        Returns:
            dict: ``results`` with ``gt_depth_map`` added.
        """
        path = results.get('depth_map_path')
        if path is None:
            raise ValueError(
                f'no depth map for {results.get("img_path")}: its '
                'depth_map_path is None (e.g. "None" in a KITTI split file).'
                ' Drop such samples or leave LoadDepthMap out of the '
                'pipeline.')
        depth_scale = self.depth_scale
        if depth_scale is None:
            depth_scale = float(results.get('depth_scale', 1.0))
        map_type = self.map_type or results.get('depth_map_type', 'depth')
        depth = load_depth_map(
            path,
            depth_scale=depth_scale,
            map_type=map_type,
            mask_path=results.get('mask_path'),
            allow_8bit=self.allow_8bit,
            backend_args=self.backend_args)
        check_annotation_size(depth, results, path)
        results['gt_depth_map'] = depth
        results.setdefault('seg_fields', []).append('gt_depth_map')
        results['depth_rescale_factor'] = 1.0 / depth_scale
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(depth_scale={self.depth_scale}, '
                f'map_type={self.map_type!r}, allow_8bit={self.allow_8bit}, '
                f'backend_args={self.backend_args})')


def check_annotation_size(annotation: np.ndarray, results: Dict,
                          path: str) -> None:
    """Raise if an annotation's size differs from its image's original size.

    Compared with ``ori_shape`` (set by the image loader), so it holds in
    pipelines that load the annotation after resizing the image.

    Args:
        annotation (np.ndarray): H×W label or depth map.
        results (dict): Pipeline results with ``ori_shape`` and ``img_path``.
        path (str): The annotation file, for the message.

    Raises:
        DataFileError: Naming both files and both sizes.
    """
    ori_shape = results.get('ori_shape')
    if ori_shape is None or tuple(annotation.shape[:2]) == tuple(
            ori_shape[:2]):
        return
    raise DataFileError(
        f'annotation size {annotation.shape[0]}x{annotation.shape[1]} of '
        f'{path} differs from the image size {ori_shape[0]}x{ori_shape[1]} '
        f'of {results.get("img_path")}')


@TRANSFORMS.register_module()
class LoadAnnotationsChecked(LoadAnnotations):
    """mmseg's ``LoadAnnotations`` that refuses a label map of the wrong size.

    A label map whose size differs from its image would otherwise be cropped
    and flipped at the wrong coordinates and train on misaligned labels
    without any error.
    """

    def transform(self, results: dict) -> dict:
        results = super().transform(results)
        if 'gt_seg_map' in results:
            check_annotation_size(results['gt_seg_map'], results,
                                  results.get('seg_map_path'))
        return results

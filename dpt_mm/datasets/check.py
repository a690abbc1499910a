"""Per-sample checks of a data set's files, for ``tools/misc/check_dataset``.

A check reads the raw files of a data info (not the pipeline's output), so
every problem is reported against the file that has it.
"""
import copy
import inspect
import os
import os.path as osp
from dataclasses import dataclass
from typing import (Any, Callable, List, Mapping, Optional, Sequence,
                    Tuple)

import mmcv
import mmengine.fileio as fileio
import numpy as np
from mmengine.config import Config
from mmseg.registry import DATASETS

from ..utils.errors import InputError
from .transforms.loading import (DataFileError, load_depth_map,
                                 load_image_checked, load_validity_mask)

__all__ = [
    'DepthCheckOptions', 'Problem', 'build_datasets_for_check',
    'check_data_paths', 'check_dataset', 'check_not_empty', 'check_sample'
]

_MAX_VALUES_LISTED = 10


@dataclass(frozen=True)
class Problem:
    """One bad file.

    Attributes:
        path (str): The file.
        reason (str): What is wrong with it.
    """
    path: str
    reason: str

    def __str__(self) -> str:
        return f'{self.path}: {self.reason}'


@dataclass(frozen=True)
class DepthCheckOptions:
    """How depth maps are read, as the pipeline's depth loader reads them.

    Attributes:
        depth_scale (float, optional): ``LoadDepthMap``'s ``depth_scale``;
            None takes the data info's (as the transform does).
        allow_8bit (bool): Whether 8-bit maps are accepted.
    """
    depth_scale: Optional[float] = None
    allow_8bit: bool = False


def _error_reason(error: Exception) -> str:
    # Our loaders put the path in the message; the report names it anyway.
    return f'{type(error).__name__}: {error}'


def _check_labels(info: dict, image_shape: Tuple[int, int],
                  num_classes: Optional[int], ignore_index: int,
                  backend_args: Optional[dict]) -> List[Problem]:
    path = info['seg_map_path']
    try:
        data = fileio.get(path, backend_args=backend_args)
    except FileNotFoundError:
        return [Problem(path, 'missing annotation (file not found)')]
    try:
        labels = mmcv.imfrombytes(data, flag='unchanged', backend='cv2')
    except Exception as e:  # cv2 raises on an empty buffer
        return [Problem(path, f'unreadable annotation: {e}')]
    if labels is None:
        return [Problem(path, 'unreadable annotation')]
    labels = labels.squeeze()
    problems = []
    if labels.ndim != 2:
        return [
            Problem(
                path, f'annotation has shape {labels.shape}; a label map '
                'is a single-channel index image')
        ]
    if labels.shape != tuple(image_shape):
        problems.append(
            Problem(
                path, f'annotation size {labels.shape[1]}x{labels.shape[0]} '
                f'differs from the image size {image_shape[1]}x'
                f'{image_shape[0]} ({info["img_path"]})'))
    if labels.dtype != np.uint8 and labels.max(initial=0) > 255:
        problems.append(
            Problem(
                path, f'{labels.dtype} annotation with values above 255; '
                'LoadAnnotations casts labels to uint8 and would wrap them'))
    if num_classes is not None:
        values = np.unique(labels).astype(np.int64)
        if info.get('reduce_zero_label', False):
            # LoadAnnotations: 0 -> ignore, v -> v - 1, so 255 stays ignore.
            bad = values[(values != 0) & (values != 255) &
                         (values - 1 >= num_classes)]
        else:
            bad = values[(values >= num_classes) & (values != ignore_index)]
        if bad.size:
            shown = ', '.join(str(v) for v in bad[:_MAX_VALUES_LISTED])
            more = ', ...' if bad.size > _MAX_VALUES_LISTED else ''
            zero = (', stored with reduce_zero_label, so 1..'
                    f'{num_classes} are the classes'
                    if info.get('reduce_zero_label', False) else '')
            problems.append(
                Problem(
                    path, f'label values {shown}{more} outside the '
                    f'{num_classes} classes{zero} and not the ignore index '
                    f'{ignore_index}'))
    return problems


def _check_depth(info: dict, image_shape: Tuple[int, int],
                 options: DepthCheckOptions,
                 backend_args: Optional[dict]) -> List[Problem]:
    path = info['depth_map_path']
    depth_scale = options.depth_scale
    if depth_scale is None:
        depth_scale = float(info.get('depth_scale', 1.0))
    mask_path = info.get('mask_path')
    try:
        depth = load_depth_map(
            path,
            depth_scale=depth_scale,
            map_type=info.get('depth_map_type', 'depth'),
            allow_8bit=options.allow_8bit,
            backend_args=backend_args)
    except FileNotFoundError:
        return [Problem(path, 'missing depth annotation (file not found)')]
    except (DataFileError, ValueError) as e:
        return [Problem(path, _error_reason(e))]
    problems = []
    if depth.shape != tuple(image_shape):
        problems.append(
            Problem(
                path, f'depth map size {depth.shape[1]}x{depth.shape[0]} '
                f'differs from the image size {image_shape[1]}x'
                f'{image_shape[0]} ({info["img_path"]})'))
    if not (depth > 0).any():
        problems.append(
            Problem(path, 'depth map has no valid pixel (all zero/invalid)'))
    if mask_path is not None:
        try:
            mask = load_validity_mask(mask_path, backend_args)
        except FileNotFoundError:
            problems.append(Problem(mask_path, 'missing validity mask'))
        except DataFileError as e:
            problems.append(Problem(mask_path, _error_reason(e)))
        else:
            if mask.shape != depth.shape:
                problems.append(
                    Problem(
                        mask_path, f'mask size {mask.shape[1]}x'
                        f'{mask.shape[0]} differs from the depth map size '
                        f'{depth.shape[1]}x{depth.shape[0]} ({path})'))
            elif not (mask & (depth > 0)).any():
                problems.append(
                    Problem(mask_path, 'mask leaves no valid depth pixel'))
    return problems


def check_sample(info: dict,
                 num_classes: Optional[int] = None,
                 ignore_index: int = 255,
                 depth: Optional[DepthCheckOptions] = None,
                 backend_args: Optional[dict] = None) -> List[Problem]:
    """Check the files of one data info.

    Checks that the image decodes (not truncated), that the annotation
    exists, decodes and has the image's size; for label maps, that every
    value is a class or the ignore index (after ``reduce_zero_label`` when
    the info has it); for depth maps, that they are 16-bit (unless
    ``allow_8bit``) and have at least one valid pixel, and that a validity
    mask, when given, matches.

    Args:
        info (dict): A data info from ``dataset.get_data_info(i)``:
            ``img_path`` and ``seg_map_path`` and/or ``depth_map_path``
            (plus ``mask_path``, ``reduce_zero_label``...).
        num_classes (int, optional): Number of classes for the label range
            check; None skips it.
        ignore_index (int): The ignore label. Defaults to 255.
        depth (DepthCheckOptions, optional): How depth maps are read.
            Defaults to ``DepthCheckOptions()``.
        backend_args (dict, optional): mmengine file backend arguments.

    Returns:
        list[Problem]: Empty when every file is fine.
    """
    depth = depth or DepthCheckOptions()
    img_path = info['img_path']
    try:
        image = load_image_checked(img_path, backend_args=backend_args)
    except FileNotFoundError:
        return [Problem(img_path, 'missing image (file not found)')]
    except DataFileError as e:
        return [Problem(img_path, f'unreadable image: {e}')]
    shape = image.shape[:2]
    problems = []
    if info.get('seg_map_path') is not None:
        problems += _check_labels(info, shape, num_classes, ignore_index,
                                  backend_args)
    if info.get('depth_map_path') is not None:
        problems += _check_depth(info, shape, depth, backend_args)
    return problems


def check_dataset(dataset: Any,
                  depth: Optional[DepthCheckOptions] = None,
                  progress: Optional[Callable[[], None]] = None
                  ) -> List[Problem]:
    """Check every sample of a built data set.

    Args:
        dataset (BaseSegDataset): The data set (its pipeline is not run).
        depth (DepthCheckOptions, optional): How depth maps are read.
        progress (Callable, optional): Called once per sample.

    Returns:
        list[Problem]: Every problem found, in sample order.
    """
    label_map = dataset.metainfo.get('label_map')
    classes = dataset.metainfo.get('classes')
    # With a label_map the files hold the original class ids.
    num_classes = len(label_map) if label_map else (
        len(classes) if classes else None)
    ignore_index = getattr(dataset, 'ignore_index', 255)
    backend_args = getattr(dataset, 'backend_args', None)
    problems = []
    for index in range(len(dataset)):
        info = dataset.get_data_info(index)
        problems += check_sample(info, num_classes, ignore_index, depth,
                                 backend_args)
        if progress is not None:
            progress()
    return problems


_DEPTH_LOADERS = ('LoadDepthMap', 'LoadDepthAnnotation')


def _depth_options(pipeline: Sequence[dict]) -> DepthCheckOptions:
    for transform in pipeline:
        if not isinstance(transform, dict):
            continue
        if transform.get('type') == 'LoadDepthMap':
            return DepthCheckOptions(
                transform.get('depth_scale'),
                bool(transform.get('allow_8bit', False)))
        if transform.get('type') == 'LoadDepthAnnotation':
            # mmseg's loader multiplies by depth_rescale_factor.
            factor = transform.get('depth_rescale_factor', 1.0)
            return DepthCheckOptions(1.0 / factor, allow_8bit=False)
    return DepthCheckOptions()


def _leaf_dataset_cfgs(cfg: dict) -> List[dict]:
    """Unwrap ConcatDataset / RepeatDataset-style wrappers."""
    if 'datasets' in cfg:
        return [c for sub in cfg['datasets'] for c in _leaf_dataset_cfgs(sub)]
    if 'dataset' in cfg:
        return _leaf_dataset_cfgs(cfg['dataset'])
    return [cfg]


def _check_paths_exist(cfg: dict) -> None:
    """Fail early, and clearly, on a data_root or prefix that is not there."""
    data_root = cfg.get('data_root')
    if data_root and not osp.isdir(data_root) and '://' not in data_root:
        raise FileNotFoundError(
            f'data_root does not exist: {data_root} ({cfg.get("type")})')
    for key, prefix in (cfg.get('data_prefix') or {}).items():
        # Masks are optional: RelativeDepthDataset accepts a missing folder.
        if not prefix or '://' in str(prefix) or key == 'mask_path':
            continue
        path = osp.join(data_root or '', prefix)
        if not osp.isdir(path):
            raise FileNotFoundError(
                f'data_prefix {key}={prefix!r} is not a folder: {path} '
                f'({cfg.get("type")}, data_root={data_root})')
    ann_file = cfg.get('ann_file')
    if ann_file and '://' not in ann_file:
        path = osp.join(data_root or '', ann_file)
        if not osp.isfile(path):
            raise FileNotFoundError(f'ann_file not found: {path} '
                                    f'({cfg.get("type")})')


def _img_suffix(cfg: dict) -> Optional[str]:
    """The image suffix a data set lists, from its config or class default."""
    if cfg.get('img_suffix'):
        return cfg['img_suffix']
    cls = DATASETS.get(cfg.get('type', ''))
    param = inspect.signature(cls.__init__).parameters.get(
        'img_suffix') if cls is not None else None
    if param is None or not isinstance(param.default, str):
        return None
    return param.default


def _has_file(folder: str, suffix: Optional[str]) -> bool:
    """Whether ``folder`` (recursively) holds a file ending with ``suffix``.

    Stops at the first one, so it is cheap on a real data set.
    """
    for _, _, files in os.walk(folder, followlinks=True):
        if any(suffix is None or f.endswith(suffix) for f in files):
            return True
    return False


def check_not_empty(cfg: dict) -> None:
    """Fail on a data set whose split file or image folder lists nothing.

    mmengine's ``BaseDataset`` otherwise fails on an empty sample list with
    numpy's "need at least one array to concatenate". Call after the paths
    were found to exist (:func:`_check_paths_exist`).

    Args:
        cfg (dict): A leaf data set's config.

    Raises:
        ValueError: ``<type>: no samples found in <split file or image
            folder>``.
    """
    data_root = cfg.get('data_root') or ''
    ann_file = cfg.get('ann_file')
    if ann_file:
        path = osp.join(data_root, ann_file)
        if '://' not in path and osp.isfile(path):
            with open(path) as f:
                if not any(line.strip() for line in f):
                    raise ValueError(f'{cfg.get("type")}: no samples found '
                                     f'in {path} (empty split file)')
        return
    prefix = (cfg.get('data_prefix') or {}).get('img_path')
    folder = osp.join(data_root, prefix or '')
    if '://' in folder or not osp.isdir(folder):
        return
    suffix = _img_suffix(cfg)
    if not _has_file(folder, suffix):
        what = f'no *{suffix} file' if suffix else 'no file'
        raise ValueError(f'{cfg.get("type")}: no samples found in {folder} '
                         f'({what})')


def build_datasets_for_check(
        cfg: Config, split: str = 'train'
) -> List[Tuple[Any, DepthCheckOptions]]:
    """Build the data set(s) of ``{split}_dataloader`` without pipelines.

    Args:
        cfg (Config): A full config (``import dpt_mm`` done).
        split (str): ``'train'``, ``'val'`` or ``'test'``.

    Returns:
        list[tuple]: ``(dataset, depth options)`` per leaf data set.

    Raises:
        KeyError: The config has no such dataloader.
        FileNotFoundError: data_root, a prefix folder or ann_file is
            missing.
        ValueError: A data set holds no sample.
    """
    key = f'{split}_dataloader'
    if key not in cfg or cfg[key] is None:
        raise KeyError(f'the config has no {key}')
    built = []
    for ds_cfg in _leaf_dataset_cfgs(cfg[key]['dataset']):
        ds_cfg = copy.deepcopy(dict(ds_cfg))
        options = _depth_options(ds_cfg.get('pipeline') or [])
        ds_cfg['pipeline'] = []
        # Serialising an empty data list fails with numpy's "need at least
        # one array to concatenate"; the check below says what is wrong.
        ds_cfg['serialize_data'] = False
        _check_paths_exist(ds_cfg)
        check_not_empty(ds_cfg)
        dataset = DATASETS.build(ds_cfg)
        if len(dataset) == 0:
            raise ValueError(
                f'{ds_cfg.get("type")}: no samples found (data_root='
                f'{ds_cfg.get("data_root")}, data_prefix='
                f'{ds_cfg.get("data_prefix")}, ann_file='
                f'{ds_cfg.get("ann_file")!r})')
        built.append((dataset, options))
    return built


def check_data_paths(cfg: Config, mode: str = 'train') -> None:
    """Fail before training or testing on a data folder that is not there.

    mmseg's data sets (``NYUDataset``, ``ADE20KDataset``...) only fail when
    the dataloader is built, after the model, with a bare ``os.scandir``
    error. This checks ``data_root``, each ``data_prefix`` folder and
    ``ann_file`` of the dataloaders ``mode`` uses (train: train, and val
    when ``val_cfg`` is set; test: test), through wrappers such as
    ``ConcatDataset``. Remote paths (``s3://``...) are not checked.

    Args:
        cfg (Config): Full config.
        mode (str): ``'train'`` or ``'test'``.

    Raises:
        FileNotFoundError: Names the dataloader, the key and the path.
        InputError: An image folder or split file lists no sample (a
            ValueError).
    """
    if mode not in ('train', 'test'):
        raise ValueError(f"mode must be 'train' or 'test', got {mode!r}")
    loaders = ['test_dataloader'] if mode == 'test' else ['train_dataloader']
    if mode == 'train' and cfg.get('val_cfg'):
        loaders.append('val_dataloader')
    for loader in loaders:
        dataset = (cfg.get(loader) or {}).get('dataset')
        if not isinstance(dataset, Mapping):
            continue
        for leaf in _leaf_dataset_cfgs(dict(dataset)):
            try:
                _check_paths_exist(leaf)
                check_not_empty(leaf)
            except FileNotFoundError as err:
                raise FileNotFoundError(f'{loader}.dataset: {err}') from None
            except ValueError as err:
                raise InputError(f'{loader}.dataset: {err}') from None

"""Your own images with depth or disparity maps: the fine-tuning data set."""
import logging
import os.path as osp
from typing import Dict, List, Optional, Sequence, Union

import mmengine
import mmengine.fileio as fileio
from mmengine.logging import print_log
from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS

__all__ = ['RelativeDepthDataset']

_MAX_LISTED = 20


@DATASETS.register_module()
class RelativeDepthDataset(BaseSegDataset):
    """A folder of images with depth or disparity maps, matched by file name.

    This is the data set to fine-tune DPT on your own data, with metric depth
    (``map_type='depth'``) or with relative disparity known only up to scale
    and shift (``map_type='disparity'``, as MiDaS/DPT train on). Put the
    files in this tree (folder names are free, they are set in
    ``data_prefix``):

    .. code-block:: none

        data/my_depth/                   <- data_root
        ├── train/
        │   ├── images/                  <- data_prefix['img_path']
        │   │   ├── kitchen/0001.jpg     sub-folders are allowed
        │   │   └── 0002.png
        │   ├── disparity/               <- data_prefix['depth_map_path']
        │   │   ├── kitchen/0001.png     16-bit PNG (value / depth_scale)
        │   │   └── 0002.npy             or float .npy, or .pfm
        │   └── masks/                   <- data_prefix['mask_path'], optional
        │       └── 0002.png             nonzero = valid; a map may have none,
        │                                a missing folder means no masks
        ├── val/ ...
        └── val.txt                      <- ann_file, optional: stems to use

    Each image ``<stem>.<jpg|jpeg|png>`` is paired with the one map
    ``<stem>.<png|npy|pfm>`` under the map folder (same relative path), and
    with ``<stem>.png`` under the mask folder when there is one. In a map, 0,
    negative, NaN and infinite values mean "no data"; a mask hides more.

    Values: an integer PNG is divided by ``depth_scale``, float ``.npy`` /
    ``.pfm`` maps are read as they are. ``LoadDepthMap`` puts the map into
    ``gt_depth_map`` as depth (a disparity map is inverted, ``1 / d``), so
    choose ``depth_scale`` such that these depths fall inside the
    evaluator's ``(min_depth_eval, max_depth_eval)``. Relative data are
    evaluated with ``DPTDepthMetric(align='lstsq_disparity')``, which fits
    each prediction to the ground truth's disparity by scale and shift.

    The data set fails at construction, listing the files, when an image has
    no map or two maps (``a.png`` and ``a.npy``), and when no image is found:
    better than a crash mid-epoch.

    Data info keys: ``img_path``, ``depth_map_path``, ``mask_path`` (None
    without a mask), ``depth_map_type``, ``depth_scale``, ``seg_fields``.

    Args:
        data_prefix (dict): ``img_path``, ``depth_map_path`` and optional
            ``mask_path`` folders, relative to ``data_root``. Defaults to
            ``dict(img_path='images', depth_map_path='depths')``.
        map_type (str): ``'disparity'`` (default) or ``'depth'``.
        depth_scale (float): Stored integer value per unit. Defaults to 1.
        ann_file (str): Optional text file of image stems (relative paths
            without extension), one per line, to select a split. Defaults to
            '' (every image in ``img_path``).
        img_suffix (str | Sequence[str]): Image extensions. Defaults to
            ``('.jpg', '.jpeg', '.png')``.
        map_suffixes (Sequence[str]): Map extensions. Defaults to
            ``('.png', '.npy', '.pfm')``.
        mask_suffix (str): Mask extension. Defaults to '.png'.
        **kwargs: Other :class:`BaseSegDataset` arguments (``data_root``,
            ``pipeline``, ``test_mode``, ...).
    """
    METAINFO = dict(classes=('depth', ), palette=[[255, 255, 255]])
    MAP_TYPES = ('depth', 'disparity')

    def __init__(self,
                 data_prefix: dict = dict(
                     img_path='images', depth_map_path='depths'),
                 map_type: str = 'disparity',
                 depth_scale: float = 1.0,
                 ann_file: str = '',
                 img_suffix: Union[str, Sequence[str]] = ('.jpg', '.jpeg',
                                                          '.png'),
                 map_suffixes: Sequence[str] = ('.png', '.npy', '.pfm'),
                 mask_suffix: str = '.png',
                 **kwargs) -> None:
        if map_type not in self.MAP_TYPES:
            raise ValueError(f'map_type must be one of {self.MAP_TYPES}, '
                             f'got {map_type!r}')
        if depth_scale <= 0:
            raise ValueError(f'depth_scale must be > 0, got {depth_scale}')
        self.map_type = map_type
        self.depth_scale = float(depth_scale)
        self.map_suffixes = tuple(s.lower() for s in map_suffixes)
        self.mask_suffix = mask_suffix.lower()
        if isinstance(img_suffix, str):
            img_suffix = (img_suffix, )
        super().__init__(
            ann_file=ann_file,
            data_prefix=data_prefix,
            img_suffix=tuple(s.lower() for s in img_suffix),
            **kwargs)

    def _index(self, folder: str, suffixes: Sequence[str],
               what: str) -> Dict[str, List[str]]:
        """Relative stem -> files with one of ``suffixes`` under ``folder``."""
        if not fileio.isdir(folder, self.backend_args):
            raise FileNotFoundError(
                f'{type(self).__name__}: {what} folder not found: {folder} '
                f'(data_root={self.data_root})')
        index: Dict[str, List[str]] = {}
        for name in fileio.list_dir_or_file(
                folder, list_dir=False, recursive=True,
                backend_args=self.backend_args):
            stem, suffix = osp.splitext(name)
            if suffix.lower() in suffixes:
                index.setdefault(stem, []).append(name)
        return index

    def _problem(self, message: str, names: List[str]) -> ValueError:
        listed = '\n  '.join(names[:_MAX_LISTED])
        more = (f'\n  ... and {len(names) - _MAX_LISTED} more'
                if len(names) > _MAX_LISTED else '')
        return ValueError(f'{type(self).__name__}: {len(names)} {message}:'
                          f'\n  {listed}{more}')

    def load_data_list(self) -> List[dict]:
        """Pair images with maps and masks by relative stem.

        Returns:
            list[dict]: One data info per image, sorted by path (or in the
            order of ``ann_file``).
        """
        img_dir = self.data_prefix.get('img_path') or ''
        map_dir = self.data_prefix.get('depth_map_path')
        mask_dir: Optional[str] = self.data_prefix.get('mask_path')
        if not map_dir:
            raise ValueError(f'{type(self).__name__}: data_prefix needs '
                             "'depth_map_path', the folder of maps")
        images = self._index(img_dir, self.img_suffix, 'image')
        maps = self._index(map_dir, self.map_suffixes, 'depth/disparity map')
        masks: Dict[str, List[str]] = {}
        if mask_dir and fileio.isdir(mask_dir, self.backend_args):
            masks = self._index(mask_dir, (self.mask_suffix, ), 'mask')
        elif mask_dir:
            # Masks are optional, so a config can name the folder for data
            # sets that have none; say so in case it is a typo.
            print_log(
                f'{type(self).__name__}: mask folder {mask_dir} not found; '
                'using no validity masks',
                logger='current',
                level=logging.WARNING)

        if self.ann_file:
            if not fileio.exists(self.ann_file, self.backend_args):
                raise FileNotFoundError(f'{type(self).__name__}: ann_file '
                                        f'not found: {self.ann_file}')
            stems = [
                line.strip() for line in mmengine.list_from_file(
                    self.ann_file, backend_args=self.backend_args)
                if line.strip()
            ]
            unknown = [s for s in stems if s not in images]
            if unknown:
                raise self._problem(
                    f'stems listed in {self.ann_file} have no image in '
                    f'{img_dir}', unknown)
        else:
            stems = sorted(images)
        if not stems:
            suffixes = '/'.join(self.img_suffix)
            raise ValueError(
                f'{type(self).__name__}: no images ({suffixes}) found in '
                f'{img_dir} (data_root={self.data_root})')

        ambiguous = []
        for stem in stems:
            for kind in (images, maps):
                if len(kind.get(stem, ())) > 1:
                    ambiguous.extend(kind[stem])
        if ambiguous:
            raise self._problem(
                'files share a stem with another image or map, so the '
                'pairing is ambiguous', ambiguous)
        missing = [images[s][0] for s in stems if s not in maps]
        if missing:
            raise self._problem(
                f'images have no map ({"/".join(self.map_suffixes)}) of the '
                f'same name in {map_dir}', missing)

        return [
            dict(
                img_path=osp.join(img_dir, images[s][0]),
                depth_map_path=osp.join(map_dir, maps[s][0]),
                mask_path=osp.join(mask_dir, masks[s][0])
                if s in masks else None,
                depth_map_type=self.map_type,
                depth_scale=self.depth_scale,
                seg_fields=[]) for s in stems
        ]

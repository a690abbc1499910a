"""KITTI depth (Eigen split) in the layout that BTS and most depth work use."""
import os.path as osp
from typing import List, Optional, Tuple

import mmengine
import mmengine.fileio as fileio
from mmengine.logging import print_log
from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS

__all__ = ['KITTIDepthDataset', 'parse_split_line']


def parse_split_line(line: str) -> Tuple[str, Optional[str], Optional[float]]:
    """Parse one line of a BTS-style KITTI split file.

    Args:
        line (str): ``image_path depth_path [focal]``; ``depth_path`` may be
            ``None``. Leading slashes are dropped, as BTS does, so that the
            paths join onto the data prefixes.

    Returns:
        tuple: ``(image_path, depth_path or None, focal or None)``.

    Raises:
        ValueError: The line does not have two or three fields, or the
            focal length is not a number.
    """
    fields = line.split()
    if len(fields) not in (2, 3):
        raise ValueError('expected "image_path depth_path [focal]", got '
                         f'{len(fields)} fields')
    image = fields[0].lstrip('/')
    depth = None if fields[1] == 'None' else fields[1].lstrip('/')
    focal = float(fields[2]) if len(fields) == 3 else None
    return image, depth, focal


@DATASETS.register_module()
class KITTIDepthDataset(BaseSegDataset):
    """KITTI depth prediction with a split file (Eigen split).

    Images come from the KITTI raw data, sparse ground truth from the
    official "data_depth_annotated" maps (projected, accumulated LiDAR):
    16-bit PNG, depth in metres = value / 256, 0 = no measurement.
    ``tools/dataset_converters/kitti_depth.py`` builds this layout from the
    official downloads:

    .. code-block:: none

        data/kitti/
        ├── raw/                              <- data_prefix['img_path']
        │   └── 2011_09_26/2011_09_26_drive_0002_sync/image_02/data/
        │       └── 0000000069.png
        ├── gt_depth/                         <- data_prefix['depth_map_path']
        │   └── 2011_09_26_drive_0002_sync/proj_depth/groundtruth/image_02/
        │       └── 0000000069.png
        └── splits/                           <- ann_file
            ├── eigen_train_files_with_gt.txt
            └── eigen_test_files_with_gt.txt

    Split file format (that of BTS), one sample per line, fields separated
    by spaces, blank lines and lines starting with ``#`` ignored::

        <image path> <depth path | None> [<focal length in pixels>]

    for example, with ``D = 2011_09_26_drive_0002_sync`` (one line)::

        2011_09_26/D/image_02/data/0000000069.png
        D/proj_depth/groundtruth/image_02/0000000069.png 721.5377

    The image path is relative to ``data_prefix['img_path']``, the depth
    path to ``data_prefix['depth_map_path']``. ``None`` marks a frame
    without ground truth (the Eigen test list has some).

    Data info keys: ``img_path``, ``depth_map_path`` (None when missing),
    ``focal`` (None when the line has none), ``depth_scale`` (read by
    ``LoadDepthMap``), ``seg_fields``.

    Args:
        ann_file (str): Split file, relative to ``data_root``.
        data_prefix (dict): ``img_path`` and ``depth_map_path`` folders.
            Defaults to ``dict(img_path='raw', depth_map_path='gt_depth')``.
        depth_scale (float): Stored value per metre. Defaults to 256.
        drop_missing_depth (bool): Drop lines whose depth is ``None``
            (default). Keep them (``depth_map_path=None``) only for
            pipelines that do not load depth, e.g. to predict on all frames.
        **kwargs: Other :class:`BaseSegDataset` arguments (``data_root``,
            ``pipeline``, ``test_mode``, ...).
    """
    METAINFO = dict(classes=('depth', ), palette=[[255, 255, 255]])

    def __init__(self,
                 ann_file: str = '',
                 data_prefix: dict = dict(
                     img_path='raw', depth_map_path='gt_depth'),
                 depth_scale: float = 256.0,
                 drop_missing_depth: bool = True,
                 **kwargs) -> None:
        self.depth_scale = float(depth_scale)
        self.drop_missing_depth = drop_missing_depth
        super().__init__(ann_file=ann_file, data_prefix=data_prefix, **kwargs)

    def load_data_list(self) -> List[dict]:
        """Read the split file.

        Returns:
            list[dict]: One data info per kept line, in file order.
        """
        if not self.ann_file:
            raise ValueError(f'{type(self).__name__} needs ann_file, a split '
                             'file of "image_path depth_path focal" lines')
        if not fileio.exists(self.ann_file, self.backend_args):
            raise FileNotFoundError(
                f'{type(self).__name__}: split file not found: '
                f'{self.ann_file} (data_root={self.data_root})')
        img_dir = self.data_prefix.get('img_path', '') or ''
        depth_dir = self.data_prefix.get('depth_map_path', '') or ''
        lines = mmengine.list_from_file(
            self.ann_file, backend_args=self.backend_args)
        data_list, dropped = [], 0
        for number, line in enumerate(lines, 1):
            line = line.strip()
            if not line or line.startswith('#'):
                continue
            try:
                image, depth, focal = parse_split_line(line)
            except ValueError as e:
                raise ValueError(
                    f'{self.ann_file}:{number}: {e}: {line!r}') from None
            if depth is None and self.drop_missing_depth:
                dropped += 1
                continue
            data_list.append(
                dict(
                    img_path=osp.join(img_dir, image),
                    depth_map_path=None
                    if depth is None else osp.join(depth_dir, depth),
                    focal=focal,
                    depth_scale=self.depth_scale,
                    seg_fields=[]))
        if dropped:
            print_log(
                f'{type(self).__name__}: dropped {dropped} lines of '
                f'{self.ann_file} without ground truth ("None")',
                logger='current')
        if not data_list:
            raise ValueError(
                f'{type(self).__name__}: no samples in {self.ann_file}'
                + (f' ({dropped} lines without ground truth dropped)'
                   if dropped else ''))
        return data_list

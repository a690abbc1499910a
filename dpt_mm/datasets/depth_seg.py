"""Images with both a semantic label map and a depth map (joint training)."""
import os.path as osp
from typing import List, Optional

from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS

__all__ = ['DepthSegDataset']

_MAX_LISTED = 20


@DATASETS.register_module()
class DepthSegDataset(BaseSegDataset):
    """Images, semantic label maps and depth maps, matched by file name.

    The data set of :class:`~dpt_mm.models.segmentors.DepthSegEstimator`
    (one backbone, a segmentation and a depth head), laid out as NYUv2 with
    its semantic labels:

    .. code-block:: none

        data/nyu_seg/                    <- data_root
        ├── images/train/0001.jpg        <- data_prefix['img_path']
        ├── labels/train/0001.png        <- data_prefix['seg_map_path']
        └── depth/train/0001.png         <- data_prefix['depth_map_path']

    Label maps are read as mmseg reads them (``LoadAnnotations``, with
    ``reduce_zero_label`` when 0 means "unlabelled"); depth maps by
    ``LoadDepthMap``: integer PNGs divided by ``depth_scale`` (metres), 0 =
    no data. Both go through the same geometric transforms and are packed
    as ``gt_sem_seg`` and ``gt_depth_map``.

    The data set fails at construction, listing the files, when an image has
    no label map or no depth map. ``metainfo=dict(classes=..., palette=...)``
    names the classes (there is no default class list).

    Data info keys: ``img_path``, ``seg_map_path``, ``depth_map_path``,
    ``depth_scale``, ``label_map``, ``reduce_zero_label``, ``seg_fields``.

    Args:
        depth_suffix (str): Depth map extension. Defaults to '.png'.
        depth_scale (float): Stored integer value per metre. Defaults to
            1000 (NYU's millimetres).
        img_suffix (str): Image extension. Defaults to '.jpg'.
        seg_map_suffix (str): Label map extension. Defaults to '.png'.
        reduce_zero_label (bool): Label 0 is "unlabelled". Defaults to True.
        **kwargs: Other :class:`BaseSegDataset` arguments (``data_root``,
            ``data_prefix`` with ``img_path``, ``seg_map_path`` and
            ``depth_map_path``, ``metainfo``, ``ann_file``, ``pipeline``,
            ``test_mode`` ...).
    """

    def __init__(self,
                 depth_suffix: str = '.png',
                 depth_scale: float = 1000,
                 img_suffix: str = '.jpg',
                 seg_map_suffix: str = '.png',
                 reduce_zero_label: bool = True,
                 metainfo: Optional[dict] = None,
                 **kwargs) -> None:
        if not (metainfo or {}).get('classes'):
            raise ValueError('DepthSegDataset: set metainfo=dict(classes=..., '
                             'palette=...); it has no default class list')
        if depth_scale <= 0:
            raise ValueError(f'DepthSegDataset: depth_scale must be > 0, got '
                             f'{depth_scale}')
        self.depth_suffix = depth_suffix
        self.depth_scale = depth_scale
        super().__init__(img_suffix=img_suffix, seg_map_suffix=seg_map_suffix,
                         reduce_zero_label=reduce_zero_label,
                         metainfo=metainfo, **kwargs)

    def load_data_list(self) -> List[dict]:
        """Each image with its label map and its depth map.

        Returns:
            list[dict]: Data infos, sorted by image path.

        Raises:
            ValueError: A data_prefix folder is not set, or label or depth
                maps are missing (listed).
        """
        for key in ('img_path', 'seg_map_path', 'depth_map_path'):
            if not self.data_prefix.get(key):
                raise ValueError(f'DepthSegDataset: data_prefix needs '
                                 f'{key!r}, got {dict(self.data_prefix)}')
        img_dir = self.data_prefix['img_path']
        depth_dir = self.data_prefix['depth_map_path']
        data_list = super().load_data_list()
        missing = []
        for info in data_list:
            stem = osp.relpath(info['img_path'],
                               img_dir)[:-len(self.img_suffix)]
            info['depth_map_path'] = osp.join(depth_dir,
                                              stem + self.depth_suffix)
            info['depth_scale'] = self.depth_scale
            for key in ('seg_map_path', 'depth_map_path'):
                if '://' not in info[key] and not osp.isfile(info[key]):
                    missing.append(info[key])
        if missing:
            listed = '\n  '.join(missing[:_MAX_LISTED])
            more = (f'\n  ... and {len(missing) - _MAX_LISTED} more'
                    if len(missing) > _MAX_LISTED else '')
            raise ValueError(f'DepthSegDataset: {len(missing)} label or '
                             f'depth maps missing:\n  {listed}{more}')
        return data_list

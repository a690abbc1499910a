from . import transforms  # noqa: F401
from .check import (DepthCheckOptions, Problem, build_datasets_for_check,
                    check_data_paths, check_dataset, check_sample)
from .depth_seg import DepthSegDataset
from .kitti_depth import KITTIDepthDataset, parse_split_line
from .relative_depth import RelativeDepthDataset

__all__ = [
    'DepthCheckOptions', 'DepthSegDataset', 'KITTIDepthDataset', 'Problem',
    'RelativeDepthDataset', 'build_datasets_for_check', 'check_data_paths',
    'check_dataset',
    'check_sample', 'parse_split_line', 'transforms'
]

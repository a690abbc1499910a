from .dpt_resize import DPTResize, get_dpt_resize_shape
from .loading import (DataFileError, LoadAnnotationsChecked, LoadDepthMap,
                      LoadImageChecked, load_depth_map, load_image_checked,
                      load_validity_mask)

__all__ = [
    'DPTResize', 'DataFileError', 'LoadAnnotationsChecked', 'LoadDepthMap',
    'LoadImageChecked', 'get_dpt_resize_shape', 'load_depth_map',
    'load_image_checked', 'load_validity_mask'
]

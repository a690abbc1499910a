from .dpt_visualizer import DPTLocalVisualizer
from .render import (DEPTH_CMAPS, DEPTH_TYPES, colorize_depth, colorize_seg,
                     default_palette, overlay_seg, side_by_side, to_numpy_map)
from .writers import (read_depth_png16, save_depth_npy, save_image,
                      sidecar_path, write_depth_png16)

__all__ = [
    'DEPTH_CMAPS', 'DEPTH_TYPES', 'DPTLocalVisualizer', 'colorize_depth',
    'colorize_seg', 'default_palette', 'overlay_seg', 'read_depth_png16',
    'save_depth_npy', 'save_image', 'side_by_side', 'sidecar_path',
    'to_numpy_map', 'write_depth_png16'
]

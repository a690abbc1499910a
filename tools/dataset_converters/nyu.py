"""Convert the official labelled NYU Depth v2 into mmseg's NYU layout.

Inputs (from the NYU Depth v2 page):

* ``nyu_depth_v2_labeled.mat``: 1449 RGB-D frames (MATLAB v7.3, i.e. HDF5;
  needs ``h5py``).
* ``splits.mat``: the official 795/654 train/test indices (needs
  ``scipy``).

Output (``OUT_DIR``, the ``data_root`` of ``configs/_base_/datasets/
nyu.py``), read by mmseg's ``NYUDataset``::

    images/{train,test}/<scene>_<index>.jpg        640x480 RGB
    annotations/{train,test}/<scene>_<index>.png   16-bit depth in mm, 0 = none

``<scene>`` is the NYU scene name (``kitchen_0028a``), whose text before
the first digit is the category NYUDataset reads; ``<index>`` is the
frame's 1-based index in the .mat file. Depth is the in-painted ``depths``
field (what BTS and DPT evaluate on) unless ``--raw-depth`` is given.

Example::

    python tools/dataset_converters/nyu.py nyu_depth_v2_labeled.mat \
        splits.mat --out-dir data/nyu
"""
import argparse
import os
import os.path as osp
import sys
from typing import Iterator, List, Optional, Sequence, Tuple

import cv2
import numpy as np

__all__ = ['depth_to_png16', 'read_nyu_mat', 'read_splits', 'write_nyu_frames']

DEPTH_SCALE = 1000  # millimetres


def _input_error(message: str) -> ValueError:
    """A ValueError that the CLI prints as a message, without a traceback.

    ``dpt_mm`` is imported here, on the failure path only: the conversion
    itself does not need it.
    """
    from dpt_mm.utils import InputError
    return InputError(message)


def depth_to_png16(depth: np.ndarray) -> np.ndarray:
    """Metric depth to the 16-bit millimetre map of mmseg's NYU layout.

    Args:
        depth (np.ndarray): H×W depth in metres; NaN, inf, 0 and negative
            values mean no data.

    Returns:
        np.ndarray: H×W uint16 millimetres, 0 where there is no data,
        saturated at 65535.
    """
    depth = np.asarray(depth, np.float64)
    valid = np.isfinite(depth) & (depth > 0)
    mm = np.where(valid, np.round(depth * DEPTH_SCALE), 0)
    return np.clip(mm, 0, np.iinfo(np.uint16).max).astype(np.uint16)


def write_nyu_frames(frames: Iterator[Tuple[str, np.ndarray, np.ndarray]],
                     out_dir: str,
                     split: str,
                     jpeg_quality: int = 95) -> List[str]:
    """Write RGB-D frames as mmseg's NYU layout.

    Args:
        frames (Iterator[tuple]): ``(name, rgb, depth)`` per frame: the file
            stem (``<category>..._<id>``), an H×W×3 uint8 RGB image and an
            H×W depth map in metres.
        out_dir (str): The data root.
        split (str): ``'train'`` or ``'test'``.
        jpeg_quality (int): JPEG quality. Defaults to 95.

    Returns:
        list[str]: Stems written, in order.
    """
    image_dir = osp.join(out_dir, 'images', split)
    depth_dir = osp.join(out_dir, 'annotations', split)
    os.makedirs(image_dir, exist_ok=True)
    os.makedirs(depth_dir, exist_ok=True)
    names = []
    for name, rgb, depth in frames:
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise _input_error(f'{name}: expected an H×W×3 uint8 RGB image, '
                                f'got {rgb.shape} {rgb.dtype}')
        if depth.shape != rgb.shape[:2]:
            raise _input_error(f'{name}: depth size {depth.shape} differs '
                                f'from the image size {rgb.shape[:2]}')
        if not any(c.isdigit() for c in name):
            raise _input_error(f'{name}: NYUDataset needs a digit in the name '
                                '(the category is the text before it)')
        cv2.imwrite(
            osp.join(image_dir, f'{name}.jpg'),
            np.ascontiguousarray(rgb[..., ::-1]),
            [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])
        cv2.imwrite(osp.join(depth_dir, f'{name}.png'), depth_to_png16(depth))
        names.append(name)
    return names


def read_splits(path: str) -> Tuple[np.ndarray, np.ndarray]:
    """Read the official split (``splits.mat``).

    Args:
        path (str): ``splits.mat``.

    Returns:
        tuple[np.ndarray, np.ndarray]: 0-based train and test indices.
    """
    try:
        from scipy.io import loadmat
    except ImportError:
        raise ImportError('reading splits.mat needs scipy: '
                          'pip install scipy') from None
    splits = loadmat(path)
    return (splits['trainNdxs'].ravel().astype(np.int64) - 1,
            splits['testNdxs'].ravel().astype(np.int64) - 1)


def read_nyu_mat(path: str, indices: Sequence[int], raw_depth: bool = False
                 ) -> Iterator[Tuple[str, np.ndarray, np.ndarray]]:
    """Read frames of ``nyu_depth_v2_labeled.mat``.

    Args:
        path (str): The .mat (HDF5) file.
        indices (Sequence[int]): 0-based frame indices.
        raw_depth (bool): Read ``rawDepths`` (with holes) instead of the
            in-painted ``depths``. Defaults to False.

    Yields:
        tuple: ``(name, rgb, depth)``: ``<scene>_<1-based index>``, 480×640×3
        uint8 RGB and 480×640 float32 metres.
    """
    try:
        import h5py
    except ImportError:
        raise ImportError(
            'nyu_depth_v2_labeled.mat is a MATLAB v7.3 (HDF5) file; reading '
            'it needs h5py: pip install h5py') from None
    with h5py.File(path, 'r') as mat:
        images, depths = mat['images'], mat['rawDepths' if raw_depth
                                             else 'depths']
        scenes = mat['scenes'][0]
        for index in indices:
            # MATLAB stores column-major: N×C×W×H here.
            rgb = np.transpose(images[index], (2, 1, 0))
            depth = np.asarray(depths[index], np.float32).T
            scene = ''.join(chr(c) for c in mat[scenes[index]][:].ravel())
            yield f'{scene}_{index + 1:04d}', np.ascontiguousarray(rgb), depth


def main(argv: Optional[List[str]] = None) -> int:
    """Run the converter.

    Args:
        argv (list[str], optional): Arguments; None reads ``sys.argv``.

    Returns:
        int: Exit status.
    """
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('labeled_mat', help='nyu_depth_v2_labeled.mat')
    parser.add_argument('splits_mat', help='splits.mat')
    parser.add_argument('--out-dir', default='data/nyu',
                        help='output data_root (default data/nyu)')
    parser.add_argument('--raw-depth', action='store_true',
                        help='use rawDepths (with holes) instead of depths')
    parser.add_argument('--debug', action='store_true',
                        help='show the Python traceback of an error')
    args = parser.parse_args(argv)
    train, test = read_splits(args.splits_mat)
    for split, indices in (('train', train), ('test', test)):
        names = write_nyu_frames(
            read_nyu_mat(args.labeled_mat, indices, args.raw_depth),
            args.out_dir, split)
        print(f'{split}: {len(names)} frames')
    return 0


if __name__ == '__main__':
    try:
        sys.exit(main())
    except Exception as error:  # a user's mistake: message and hint only
        from dpt_mm.utils.cli import exit_if_user_error
        exit_if_user_error(error)
        raise

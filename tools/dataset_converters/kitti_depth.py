"""Build the KITTIDepthDataset layout from the official KITTI downloads.

Inputs:

* ``RAW_ROOT``: the KITTI raw data (``2011_09_26/calib_cam_to_cam.txt``,
  ``2011_09_26/2011_09_26_drive_0001_sync/image_02/data/*.png``...).
* ``DEPTH_ROOT``: the "data_depth_annotated" download
  (``{train,val}/2011_09_26_drive_0001_sync/proj_depth/groundtruth/
  image_02/*.png``).
* One or more Eigen split files, in any of these formats (one image a line):

  - BTS: ``2011_09_26/<drive>/image_02/data/<frame>.png <depth> <focal>``
  - monodepth: ``2011_09_26/<drive>/image_02/data/<frame>.jpg <right image>``
  - monodepth2: ``2011_09_26/<drive> <frame index> l``  (``r`` = image_03)

Output (``OUT_DIR``, the ``data_root`` of ``configs/_base_/datasets/
kitti.py``): ``raw/`` and ``gt_depth/`` trees with links (or copies) of the
listed images and their ground truth, and ``splits/<name>`` for each split
file, in the ``image depth focal`` format of :class:`KITTIDepthDataset`,
with ``None`` where a frame has no ground truth. Focal lengths come from
the ``P_rect_02``/``P_rect_03`` rows of each date's calibration.

Example::

    python tools/dataset_converters/kitti_depth.py \
        --raw-root data/kitti_raw --depth-root data/data_depth_annotated \
        --split eigen_train_files.txt eigen_train_files_with_gt.txt \
        --split eigen_test_files.txt eigen_test_files_with_gt.txt \
        --out-dir data/kitti
"""
import argparse
import os
import os.path as osp
import shutil
import sys
from typing import Dict, Iterable, List, Optional, Tuple

__all__ = ['convert_split', 'parse_eigen_line', 'read_focal']

LINK_MODES = ('symlink', 'hardlink', 'copy')
_CAMERAS = {'l': 'image_02', 'r': 'image_03'}


def _input_error(message: str) -> ValueError:
    """A ValueError that the CLI prints as a message, without a traceback.

    ``dpt_mm`` is imported here, on the failure path only: the conversion
    itself does not need it.
    """
    from dpt_mm.utils import InputError
    return InputError(message)


def parse_eigen_line(line: str) -> Tuple[str, str, str, str]:
    """Parse one line of an Eigen split file in any common format.

    Args:
        line (str): A BTS, monodepth or monodepth2 split line.

    Returns:
        tuple[str, str, str, str]: ``(date, drive, camera, frame)``, e.g.
        ``('2011_09_26', '2011_09_26_drive_0002_sync', 'image_02',
        '0000000069')``.

    Raises:
        ValueError: The line matches none of the formats.
    """
    fields = line.split()
    if len(fields) == 3 and fields[2] in _CAMERAS and fields[1].isdigit():
        date, drive = fields[0].strip('/').split('/')[-2:]
        return date, drive, _CAMERAS[fields[2]], f'{int(fields[1]):010d}'
    if fields:
        parts = fields[0].strip('/').split('/')
        # .../<date>/<drive>/<camera>/data/<frame>.<ext>
        if len(parts) >= 5 and parts[-2] == 'data':
            frame = osp.splitext(parts[-1])[0]
            return parts[-5], parts[-4], parts[-3], frame
    raise _input_error(f'not an Eigen split line: {line!r}')


def read_focal(calib_file: str, camera: str) -> float:
    """Focal length (pixels) of a rectified camera from calib_cam_to_cam.

    Args:
        calib_file (str): ``<date>/calib_cam_to_cam.txt``.
        camera (str): ``'image_02'`` or ``'image_03'``.

    Returns:
        float: ``P_rect_0X[0, 0]``.
    """
    key = f'P_rect_{camera[-2:]}:'
    with open(calib_file) as f:
        for line in f:
            if line.startswith(key):
                return float(line.split()[1])
    raise _input_error(f'{key} not found in {calib_file}')


def _place(src: str, dst: str, mode: str) -> None:
    os.makedirs(osp.dirname(dst), exist_ok=True)
    if osp.lexists(dst):
        os.remove(dst)
    if mode == 'symlink':
        os.symlink(osp.abspath(src), dst)
    elif mode == 'hardlink':
        os.link(src, dst)
    else:
        shutil.copyfile(src, dst)


def _find_image(raw_root: str, date: str, drive: str, camera: str,
                frame: str) -> Optional[str]:
    folder = osp.join(raw_root, date, drive, camera, 'data')
    for ext in ('.png', '.jpg'):  # some split files name .jpg conversions
        path = osp.join(folder, frame + ext)
        if osp.isfile(path):
            return path
    return None


def convert_split(lines: Iterable[str],
                  raw_root: str,
                  depth_root: str,
                  out_dir: str,
                  split_name: str,
                  link: str = 'symlink') -> Dict[str, int]:
    """Convert one Eigen split into the KITTIDepthDataset layout.

    Args:
        lines (Iterable[str]): Lines of the split file (any format of
            :func:`parse_eigen_line`; blank and ``#`` lines skipped).
        raw_root (str): KITTI raw data root.
        depth_root (str): data_depth_annotated root (with ``train/`` and
            ``val/``, or the drives directly).
        out_dir (str): Output data root.
        split_name (str): File name written under ``out_dir/splits``.
        link (str): ``'symlink'``, ``'hardlink'`` or ``'copy'``.

    Returns:
        dict[str, int]: Counts: ``frames`` written, ``with_gt``,
        ``missing_image`` (skipped lines).
    """
    if link not in LINK_MODES:
        raise ValueError(f'link must be one of {LINK_MODES}, got {link!r}')
    focal_cache: Dict[Tuple[str, str], float] = {}
    out_lines: List[str] = []
    counts = dict(frames=0, with_gt=0, missing_image=0)
    for line in lines:
        line = line.strip()
        if not line or line.startswith('#'):
            continue
        date, drive, camera, frame = parse_eigen_line(line)
        image = _find_image(raw_root, date, drive, camera, frame)
        if image is None:
            counts['missing_image'] += 1
            print(f'warning: no image for {line!r}', file=sys.stderr)
            continue
        image_rel = osp.join(date, drive, camera, 'data',
                             osp.basename(image))
        _place(image, osp.join(out_dir, 'raw', image_rel), link)

        depth_rel = osp.join(drive, 'proj_depth', 'groundtruth', camera,
                             frame + '.png')
        depth = next((p for p in (osp.join(depth_root, sub, depth_rel)
                                  for sub in ('train', 'val', ''))
                      if osp.isfile(p)), None)
        if depth is not None:
            _place(depth, osp.join(out_dir, 'gt_depth', depth_rel), link)
            counts['with_gt'] += 1
        if (date, camera) not in focal_cache:
            focal_cache[date, camera] = read_focal(
                osp.join(raw_root, date, 'calib_cam_to_cam.txt'), camera)
        out_lines.append(f'{image_rel} '
                         f'{depth_rel if depth is not None else "None"} '
                         f'{focal_cache[date, camera]:.4f}')
        counts['frames'] += 1
    os.makedirs(osp.join(out_dir, 'splits'), exist_ok=True)
    with open(osp.join(out_dir, 'splits', split_name), 'w') as f:
        f.writelines(f'{line}\n' for line in out_lines)
    return counts


def main(argv: Optional[List[str]] = None) -> int:
    """Run the converter.

    Args:
        argv (list[str], optional): Arguments; None reads ``sys.argv``.

    Returns:
        int: Exit status.
    """
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--raw-root', required=True, help='KITTI raw data')
    parser.add_argument('--depth-root', required=True,
                        help='data_depth_annotated folder')
    parser.add_argument('--split', nargs=2, action='append', required=True,
                        metavar=('SPLIT_FILE', 'OUT_NAME'),
                        help='an Eigen split file and the name of the '
                        'split file to write; repeat for each split')
    parser.add_argument('--out-dir', required=True, help='output data_root')
    parser.add_argument('--link', default='symlink', choices=LINK_MODES,
                        help='how files are placed (default symlink)')
    parser.add_argument('--debug', action='store_true',
                        help='show the Python traceback of an error')
    args = parser.parse_args(argv)
    for split_file, out_name in args.split:
        with open(split_file) as f:
            counts = convert_split(f, args.raw_root, args.depth_root,
                                   args.out_dir, out_name, args.link)
        print(f'{out_name}: {counts["frames"]} frames, {counts["with_gt"]} '
              f'with ground truth, {counts["missing_image"]} lines without '
              'an image skipped')
    return 0


if __name__ == '__main__':
    try:
        sys.exit(main())
    except Exception as error:  # a user's mistake: message and hint only
        from dpt_mm.utils.cli import exit_if_user_error
        exit_if_user_error(error)
        raise

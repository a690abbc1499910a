"""Run a DPT model on images, folders and videos; write pictures and raw maps.

Usage::

    python tools/infer.py CONFIG CHECKPOINT INPUTS... --out-dir DIR
        [--device cpu] [--batch-size N] [--side-by-side] [--no-npy]
        [--no-png16]

Each input is an image file, a folder (its images, sorted) or a video file.
Outputs are named after the input's stem (``kitchen.jpg`` → ``kitchen_*``):

* depth models: ``kitchen_depth.png`` (colourised, near = bright),
  ``kitchen_depth_raw.png`` (16-bit, value = pixel / scale) with
  ``kitchen_depth_raw.json`` (the scale), ``kitchen_depth.npy`` (float32);
* segmentation models: ``kitchen_seg.png`` (palette), ``kitchen_overlay.png``,
  ``kitchen_seg_labels.png`` (class indices, uint8/uint16);
* ``--side-by-side``: ``kitchen_side_by_side.png`` (image | prediction);
* videos: ``clip_depth.mp4`` (or ``clip_overlay.mp4`` for segmentation;
  side by side with the frame with ``--side-by-side``), mp4v codec, no raw
  maps.

Inputs that fail are reported at the end and make the exit code 1; the
others are processed and written anyway. Folder entries named like images
that are not image files (a folder ``x.jpg/``, a symlink loop, a broken
link) are skipped and listed at the end. An ``--out-dir`` that cannot be
created stops the tool before the model is loaded (exit code 2).
"""
import argparse
import errno
import os
import os.path as osp
import sys
from typing import TYPE_CHECKING, List, Optional, Sequence

import cv2
import numpy as np

HERE = osp.dirname(osp.abspath(__file__))
if osp.dirname(HERE) not in sys.path:  # run from a checkout
    sys.path.insert(0, osp.dirname(HERE))

# Imported in main(), after the arguments, so that --help is instant.
if TYPE_CHECKING:
    from dpt_mm.apis import DPTInferencer, InferenceFailure

VIDEO_EXTENSIONS = ('.mp4', '.avi', '.mov', '.mkv', '.webm', '.m4v',
                    '.mpg', '.mpeg', '.wmv')


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='DPT depth / segmentation inference on images, folders '
        'and videos')
    parser.add_argument('config', help='config file or name (configs/<name>)')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('inputs', nargs='+',
                        help='image files, folders and/or video files')
    parser.add_argument('--out-dir', required=True, help='output folder')
    parser.add_argument('--device', default='cpu', help='e.g. cpu, cuda:0')
    parser.add_argument('--batch-size', type=int, default=1,
                        help='images (or video frames) per forward pass')
    parser.add_argument('--side-by-side', action='store_true',
                        help='also write image | prediction pictures')
    parser.add_argument('--no-npy', action='store_true',
                        help='do not write .npy raw depth')
    parser.add_argument('--no-png16', action='store_true',
                        help='do not write 16-bit PNG raw depth')
    parser.add_argument(
        '--accel',
        choices=['auto', 'on', 'off'],
        help="dpt_mm.accel's CPU kernels (default: the config's accel key, "
        "'auto': those measured faster on this machine)")
    parser.add_argument('--cmap', default='inferno',
                        help='depth colormap (inferno, turbo, magma, ...)')
    parser.add_argument('--debug', action='store_true',
                        help='show the Python traceback of an error')
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        parser.error('--batch-size must be >= 1')
    return args


def check_out_dir(out_dir: str) -> None:
    """Create ``out_dir``, or fail before any input is processed.

    Args:
        out_dir (str): The output folder.

    Raises:
        OSError: It exists as a file, cannot be created or is not
            writable; the message names it.
    """
    if osp.exists(out_dir) and not osp.isdir(out_dir):
        raise NotADirectoryError(
            f'--out-dir {out_dir} exists and is not a folder')
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as error:
        raise OSError(f'--out-dir {out_dir} cannot be created: '
                      f'{error.strerror}') from None
    if not os.access(out_dir, os.W_OK | os.X_OK):
        raise PermissionError(f'--out-dir {out_dir} is not writable')


def unusable_reason(path: str) -> Optional[str]:
    """Why a path named like an image cannot be read as one, if it cannot.

    Args:
        path (str): A file system path.

    Returns:
        str | None: ``'symlink loop'``, ``'broken symlink'``, ``'a folder
        named like an image'`` or the OS error; None for a regular file (or
        a path that does not exist and is no link: "not found" is reported
        elsewhere).
    """
    try:
        os.stat(path)
    except OSError as error:
        if error.errno == errno.ELOOP:
            return 'symlink loop'
        if osp.islink(path):
            return 'broken symlink'
        return None if error.errno == errno.ENOENT else error.strerror
    return 'a folder named like an image' if osp.isdir(path) else None


def skipped_entries(folder: str) -> List['InferenceFailure']:
    """Entries of ``folder`` named like images that are not image files.

    ``DPTInferencer.list_inputs`` reads the image files of a folder and
    passes over anything else; these are the entries a user expects read.

    Args:
        folder (str): An input folder.

    Returns:
        list[InferenceFailure]: Path and reason per skipped entry, sorted.
    """
    from dpt_mm.apis import InferenceFailure
    from dpt_mm.apis.inferencer import IMAGE_EXTENSIONS
    skipped = []
    for name in sorted(os.listdir(folder)):
        path = osp.join(folder, name)
        reason = unusable_reason(path) if name.lower().endswith(
            IMAGE_EXTENSIONS) else None
        if reason is not None:
            skipped.append(InferenceFailure(path, f'skipped: {reason}'))
    return skipped


def is_video(path: str) -> bool:
    """Whether a path names a video file (by extension)."""
    return osp.isfile(path) and path.lower().endswith(VIDEO_EXTENSIONS)


def process_video(inferencer: 'DPTInferencer', path: str, out_dir: str,
                  batch_size: int, with_side_by_side: bool) -> str:
    """Predict every frame of a video and write the pictures as a video.

    Args:
        inferencer (DPTInferencer): The model.
        path (str): Input video.
        out_dir (str): Output folder.
        batch_size (int): Frames per forward pass.
        with_side_by_side (bool): Frame | prediction in each output frame.

    Returns:
        str: The video written (``<stem>_depth.mp4`` or
        ``<stem>_overlay.mp4``).
    """
    from dpt_mm.apis import inference_model, render_prediction
    capture = cv2.VideoCapture(path)
    if not capture.isOpened():
        raise OSError(f'cannot open video {path}')
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    key = 'depth' if inferencer.task == 'depth' else 'overlay'
    out_path = osp.join(
        out_dir, f'{osp.splitext(osp.basename(path))[0]}_{key}.mp4')
    writer = None
    frames_done = 0
    try:
        while True:
            frames: List[np.ndarray] = []
            while len(frames) < batch_size:
                ok, frame = capture.read()
                if not ok:
                    break
                frames.append(frame)
            if not frames:
                break
            samples = inference_model(inferencer.model, frames,
                                      return_seg_logits=False)
            for frame, sample in zip(frames, samples):
                pictures = render_prediction(frame, sample,
                                             inferencer.palette,
                                             inferencer.cmap,
                                             inferencer.alpha,
                                             with_side_by_side)
                picture = pictures['side_by_side' if with_side_by_side
                                   else key]
                bgr = np.ascontiguousarray(picture[..., ::-1])
                if writer is None:
                    os.makedirs(out_dir, exist_ok=True)
                    height, width = bgr.shape[:2]
                    writer = cv2.VideoWriter(
                        out_path, cv2.VideoWriter_fourcc(*'mp4v'), fps,
                        (width, height))
                    if not writer.isOpened():
                        raise OSError(f'cannot write video {out_path} '
                                      '(mp4v codec unavailable?)')
                writer.write(bgr)
                frames_done += 1
    finally:
        capture.release()
        if writer is not None:
            writer.release()
    if frames_done == 0:
        raise ValueError(f'no frames could be read from video {path}')
    return out_path


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the CLI.

    Args:
        argv (Sequence[str], optional): Arguments; default ``sys.argv``.

    Returns:
        int: 0 when every input succeeded, 1 otherwise.
    """
    args = parse_args(argv)
    try:
        check_out_dir(args.out_dir)  # before the model runs on anything
    except OSError as error:
        print(f'error: {error}', file=sys.stderr)
        return 2
    import dpt_mm  # noqa: F401  (registers the components)
    from dpt_mm.apis import DPTInferencer, InferenceFailure
    from dpt_mm.apis.inferencer import IMAGE_EXTENSIONS
    inferencer = DPTInferencer(
        args.config, args.checkpoint, args.device, cmap=args.cmap,
        cfg_options=None if args.accel is None else dict(accel=args.accel))
    failures: List[InferenceFailure] = []
    skipped: List[InferenceFailure] = []
    images: List[str] = []
    videos: List[str] = []
    for source in args.inputs:
        if is_video(source):
            videos.append(source)
            continue
        reason = unusable_reason(source)
        if reason is not None and not osp.isdir(source):
            failures.append(InferenceFailure(source, reason))
            continue
        if osp.isdir(source):
            skipped += skipped_entries(source)
        try:
            images += [n for n, _ in inferencer.list_inputs(source)]
        except (FileNotFoundError, ValueError) as error:
            failures.append(InferenceFailure(source, str(error)))
        if osp.isfile(source) and not source.lower().endswith(
                IMAGE_EXTENSIONS):
            print(f'note: {source} has no image extension; trying to '
                  'decode it as an image')
    written = 0
    if images:
        result = inferencer(images, batch_size=args.batch_size,
                            out_dir=args.out_dir,
                            save_npy=not args.no_npy,
                            save_png16=not args.no_png16,
                            with_side_by_side=args.side_by_side,
                            log_failures=False)
        failures += result.failures
        written += len(result.names)
    for video in videos:
        try:
            out_path = process_video(inferencer, video, args.out_dir,
                                     args.batch_size, args.side_by_side)
            print(f'{video} -> {out_path}')
            written += 1
        except Exception as error:  # report and go on with the others
            failures.append(
                InferenceFailure(video, f'{type(error).__name__}: {error}'))
    print(f'{written} input(s) written to {args.out_dir}')
    if skipped:
        entries = 'entry' if len(skipped) == 1 else 'entries'
        print(f'{len(skipped)} folder {entries} named like images skipped:',
              file=sys.stderr)
        for entry in skipped:
            print(f'  {entry}', file=sys.stderr)
    if failures:
        print(f'{len(failures)} input(s) failed:', file=sys.stderr)
        for failure in failures:
            print(f'  {failure}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    try:
        sys.exit(main())
    except Exception as error:  # a user's mistake: message and hint only
        from dpt_mm.utils.cli import exit_if_user_error
        exit_if_user_error(error)
        raise

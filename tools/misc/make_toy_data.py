"""Write the synthetic toy scenes in the layouts of the real data sets.

Example::

    python tools/misc/make_toy_data.py data/toy --num-train 200 --num-val 40

writes ``data/toy/{ade,pascal_context,nyu,kitti,relative}``; point a config
at one with ``--cfg-options train_dataloader.dataset.data_root=data/toy/ade``
(see ``dpt_mm/datasets/toy_scenes.py`` for the trees).
"""
import argparse
import importlib
import importlib.util
import os.path as osp
import sys
import time
import types
from typing import Callable, List, Optional

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if ROOT not in sys.path:  # run from a checkout
    sys.path.insert(0, ROOT)
_PRIVATE_PACKAGE = '_dpt_mm_toy_data'


def _toy_scenes() -> types.ModuleType:
    """``dpt_mm.datasets.toy_scenes``, without importing ``dpt_mm``.

    The generator needs only NumPy and OpenCV, but ``import dpt_mm``
    registers every component first (torch, mmengine, mmseg): that import
    was 13 of this tool's 14 s. The module's folder is imported as a
    private package instead, so its relative imports (``.pfm``) work and
    ``dpt_mm`` itself stays unimported.

    Returns:
        module: The toy-scene generator.
    """
    if 'dpt_mm' in sys.modules:  # already paid for (tests, in-process use)
        return importlib.import_module('dpt_mm.datasets.toy_scenes')
    spec = importlib.util.find_spec('dpt_mm')  # finds it, imports nothing
    if spec is None or not spec.submodule_search_locations:
        raise ImportError('dpt_mm is neither installed nor in this checkout')
    package = types.ModuleType(_PRIVATE_PACKAGE)
    package.__path__ = [
        osp.join(spec.submodule_search_locations[0], 'datasets')
    ]
    sys.modules[_PRIVATE_PACKAGE] = package
    return importlib.import_module(f'{_PRIVATE_PACKAGE}.toy_scenes')


def _progress(total: int) -> Callable[[], None]:
    """A one-line counter, updated once per scene."""
    done = [0]

    def update() -> None:
        done[0] += 1
        print(f'\r{done[0]}/{total} scenes', end='', flush=True)

    return update


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse the command line.

    Args:
        argv (list[str], optional): Arguments; None reads ``sys.argv``.

    Returns:
        argparse.Namespace: The parsed arguments.
    """
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('out_dir', help='output folder')
    parser.add_argument('--num-train', type=int, default=64,
                        help='training scenes (default 64)')
    parser.add_argument('--num-val', type=int, default=16,
                        help='validation/test scenes (default 16)')
    parser.add_argument('--size', type=int, nargs=2, default=(96, 128),
                        metavar=('H', 'W'),
                        help='image height and width (default 96 128)')
    parser.add_argument('--seed', type=int, default=0,
                        help='seed; the same seed gives identical files')
    layouts = _toy_scenes().LAYOUTS
    parser.add_argument('--layouts', nargs='+', default=list(layouts),
                        choices=layouts, help='layouts to write (default all)')
    parser.add_argument('--quiet', action='store_true',
                        help='no progress bar')
    parser.add_argument('--debug', action='store_true',
                        help='show the Python traceback of an error')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    """Run the tool.

    Args:
        argv (list[str], optional): Arguments; None reads ``sys.argv``.

    Returns:
        int: Exit status.
    """
    args = parse_args(argv)
    if args.num_train < 0 or args.num_val < 0:
        print('--num-train and --num-val must be >= 0', file=sys.stderr)
        return 2
    total = args.num_train + args.num_val
    progress = None if args.quiet or total == 0 else _progress(total)
    start = time.time()
    roots = _toy_scenes().generate_toy_data(
        args.out_dir,
        num_train=args.num_train,
        num_val=args.num_val,
        size=tuple(args.size),
        seed=args.seed,
        layouts=args.layouts,
        progress=progress)
    if not args.quiet:
        print(f'\n{total} scenes in {time.time() - start:.1f} s:')
        for layout, root in roots.items():
            print(f'  {layout:15s} data_root={root}')
    return 0


if __name__ == '__main__':
    try:
        sys.exit(main())
    except Exception as error:  # a user's mistake: message and hint only
        from dpt_mm.utils.cli import exit_if_user_error
        exit_if_user_error(error)
        raise

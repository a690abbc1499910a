"""Write the synthetic toy scenes in the layouts of the real data sets.

Example::

    python tools/misc/make_toy_data.py data/toy --num-train 200 --num-val 40

writes ``data/toy/{ade,pascal_context,nyu,kitti,relative}``; point a config
at one with ``--cfg-options train_dataloader.dataset.data_root=data/toy/ade``
(see ``dpt_mm/datasets/toy_scenes.py`` for the trees).
"""
import argparse
import sys
import time
from typing import List, Optional

from mmengine.utils import ProgressBar

from dpt_mm.datasets.toy_scenes import LAYOUTS, generate_toy_data


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
    parser.add_argument('--layouts', nargs='+', default=list(LAYOUTS),
                        choices=LAYOUTS, help='layouts to write (default all)')
    parser.add_argument('--quiet', action='store_true',
                        help='no progress bar')
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
    bar = None if args.quiet or total == 0 else ProgressBar(total)
    start = time.time()
    roots = generate_toy_data(
        args.out_dir,
        num_train=args.num_train,
        num_val=args.num_val,
        size=tuple(args.size),
        seed=args.seed,
        layouts=args.layouts,
        progress=bar.update if bar else None)
    if not args.quiet:
        print(f'\n{total} scenes in {time.time() - start:.1f} s:')
        for layout, root in roots.items():
            print(f'  {layout:15s} data_root={root}')
    return 0


if __name__ == '__main__':
    sys.exit(main())

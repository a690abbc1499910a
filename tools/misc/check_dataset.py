"""Walk every sample of a config's data set and list every bad file.

Example::

    python tools/misc/check_dataset.py configs/_base_/datasets/nyu.py \
        --split val --cfg-options val_dataloader.dataset.data_root=data/nyu

Reports unreadable or truncated images, missing annotations, annotations
whose size differs from the image's, label values outside the classes
(other than the ignore index), and depth maps that are 8-bit where 16-bit
is expected or hold no valid pixel. Exits with 1 when anything is wrong,
2 when the data set cannot be built at all, 0 otherwise.
"""
import argparse
import sys
from typing import List, Optional

from mmengine.config import DictAction


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse the command line.

    Args:
        argv (list[str], optional): Arguments; None reads ``sys.argv``.

    Returns:
        argparse.Namespace: The parsed arguments.
    """
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='config file')
    parser.add_argument('--split', default='train',
                        choices=('train', 'val', 'test'),
                        help='which dataloader to check (default train)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config keys, xxx=yyy')
    parser.add_argument('--quiet', action='store_true',
                        help='no progress bar')
    parser.add_argument('--debug', action='store_true',
                        help='show the Python traceback of an error')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    """Run the check.

    Args:
        argv (list[str], optional): Arguments; None reads ``sys.argv``.

    Returns:
        int: 0 if every file is fine, 1 if some are bad, 2 if the data set
        cannot be built.
    """
    args = parse_args(argv)
    # Imported once the arguments are known: --help is instant.
    from mmengine.registry import init_default_scope
    from mmengine.utils import ProgressBar

    import dpt_mm  # noqa: F401  (registers dpt_mm's data sets and transforms)
    from dpt_mm.datasets.check import build_datasets_for_check, check_dataset
    from dpt_mm.utils import load_config
    cfg = load_config(args.config, args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    try:
        datasets = build_datasets_for_check(cfg, args.split)
    except Exception as e:  # report any build failure as one clear line
        print(f'cannot build the {args.split} data set: '
              f'{type(e).__name__}: {e}', file=sys.stderr)
        return 2

    problems = []
    for dataset, depth_options in datasets:
        print(f'checking {len(dataset)} samples of {type(dataset).__name__}'
              f' ({dataset.data_root})')
        bar = None if args.quiet else ProgressBar(len(dataset))
        problems += check_dataset(
            dataset, depth_options, progress=bar.update if bar else None)
        if bar is not None:
            print()
    for problem in problems:
        print(problem)
    bad_files = len({problem.path for problem in problems})
    print(f'{len(problems)} problems in {bad_files} files' if problems else
          'all files are fine')
    return 1 if problems else 0


if __name__ == '__main__':
    try:
        sys.exit(main())
    except Exception as error:  # a user's mistake: message and hint only
        from dpt_mm.utils.cli import exit_if_user_error
        exit_if_user_error(error)
        raise

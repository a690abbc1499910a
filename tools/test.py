"""Evaluate a checkpoint: ``python tools/test.py CONFIG CHECKPOINT``.

Same flags as mmseg's ``tools/test.py``.
"""
import argparse
import json
import os
import os.path as osp
import sys

from mmengine.config import DictAction

HERE = osp.dirname(osp.abspath(__file__))
sys.path[:0] = [osp.dirname(HERE), HERE]  # dpt_mm, cpu_dist


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test a DPT model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--work-dir',
        help='the directory to save the file containing evaluation metrics')
    parser.add_argument(
        '--out',
        type=str,
        help='the directory to save the output prediction for offline '
        'evaluation')
    parser.add_argument(
        '--show', action='store_true', help='show prediction results')
    parser.add_argument(
        '--show-dir',
        help='directory where a picture of every test image is written, '
        'named after the image (segmentation: ground truth | prediction '
        'overlays; depth: image | ground truth | prediction; joint depth + '
        'segmentation: both)')
    parser.add_argument(
        '--wait-time', type=float, default=2, help='the interval of show (s)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings in the config, key=value pairs')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    parser.add_argument(
        '--tta', action='store_true', help='Test time augmentation')
    parser.add_argument(
        '--metrics-json',
        help='also write the evaluation metrics to this JSON file')
    parser.add_argument(
        '--accel',
        choices=['auto', 'on', 'off'],
        help="dpt_mm.accel's CPU kernels (default: the config's accel key, "
        "'auto': those measured faster on this machine)")
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    parser.add_argument('--debug', action='store_true',
                        help='show the Python traceback of an error')
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def trigger_visualization_hook(cfg, args) -> None:
    """Draw every test image: shown (--show) and/or written (--show-dir)."""
    default_hooks = cfg.default_hooks
    if 'visualization' not in default_hooks:
        from dpt_mm.utils import InputError
        raise InputError(
            'VisualizationHook must be included in default_hooks to use '
            '--show or --show-dir; see configs/_base_/default_runtime.py')
    hook = default_hooks['visualization']
    hook['draw'] = True
    hook['interval'] = 1  # mmseg's 50 skips whole small test sets
    if args.show:
        hook['show'] = True
        hook['wait_time'] = args.wait_time
    if args.show_dir:
        # One picture per test image, written in --show-dir itself.
        hook['type'] = 'ShowDirHook'
        hook['out_dir'] = args.show_dir


def main() -> None:
    args = parse_args()
    # Imported once the arguments are known: --help is instant.
    from mmengine.runner import Runner

    import dpt_mm  # noqa: F401  (registers components before any build)
    from cpu_dist import finish_cpu_distributed, setup_cpu_distributed
    from dpt_mm.accel import accelerate_from_cfg
    from dpt_mm.apis.inference import (adopt_checkpoint_numerics,
                                       use_dpt_segmentor)
    from dpt_mm.datasets import check_data_paths
    from dpt_mm.models import check_model_config
    from dpt_mm.utils import (explain_registry_errors, load_config,
                              setup_cli_config)
    from dpt_mm.utils.console import log_run_summary, short_console
    from mmseg.registry import RUNNERS
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint not found: {args.checkpoint}')
    cfg = load_config(args.config, args.cfg_options)
    # Weights converted for other numerics (the hybrid's weight
    # standardisation, meta['numerics']) are run with theirs, with a warning.
    adopt_checkpoint_numerics(cfg, args.checkpoint)
    use_dpt_segmentor(cfg)  # the test path of inference_model / infer.py
    check_model_config(cfg.get('model'))  # fail before any work dir or log
    check_data_paths(cfg, 'test')
    setup_cli_config(cfg, args.config, args.work_dir, args.launcher)
    setup_cpu_distributed(cfg, args.launcher)
    cfg.load_from = args.checkpoint
    if args.show or args.show_dir:
        trigger_visualization_hook(cfg, args)
    if args.tta:
        cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
        cfg.tta_model.module = cfg.model
        cfg.model = cfg.tta_model
    if args.out is not None:
        cfg.test_evaluator['output_dir'] = args.out
        cfg.test_evaluator['keep_results'] = True

    with explain_registry_errors():
        with short_console():  # the full config and environment: log file
            runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg \
                else RUNNERS.build(cfg)
        accelerate_from_cfg(runner.model, cfg, args.accel)
        log_run_summary(runner, args.config)
        metrics = runner.test()
    del runner  # DDP goes before its process group (CPU runs)
    finish_cpu_distributed()
    if args.metrics_json:
        os.makedirs(osp.dirname(osp.abspath(args.metrics_json)),
                    exist_ok=True)
        with open(args.metrics_json, 'w') as f:
            json.dump({k: float(v) for k, v in metrics.items()}, f,
                      indent=2)


if __name__ == '__main__':
    try:
        sys.exit(main())
    except Exception as error:  # a user's mistake: message and hint only
        from dpt_mm.utils.cli import exit_if_user_error
        exit_if_user_error(error)
        raise

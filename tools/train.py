"""Train a dpt_mm (or any mmseg) model: ``python tools/train.py CONFIG``.

Same flags as mmseg's ``tools/train.py``; ``--resume`` also takes a
checkpoint path.
"""
import argparse
import logging
import os
import os.path as osp
import sys

from mmengine.config import DictAction

HERE = osp.dirname(osp.abspath(__file__))
sys.path[:0] = [osp.dirname(HERE), HERE]  # dpt_mm, cpu_dist


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a DPT model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--resume',
        nargs='?',
        const='auto',
        default=None,
        help='resume from the latest checkpoint in the work dir, or from '
        'the given checkpoint')
    parser.add_argument(
        '--partial-load',
        action='store_true',
        help='with load_from: load the weights that fit (e.g. all but a new '
        'head) and list the rest, instead of refusing the checkpoint')
    parser.add_argument(
        '--amp',
        action='store_true',
        default=False,
        help='enable automatic-mixed-precision training (float16 with a '
        'loss scale on a GPU, bfloat16 autocast on a CPU)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings in the config, key=value pairs, e.g. '
        'train_dataloader.dataset.data_root=data/mine')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
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


AMP_WRAPPERS = {
    'OptimWrapper': 'AmpOptimWrapper',
    'NonFiniteGuardOptimWrapper': 'NonFiniteGuardAmpOptimWrapper',
}
# mmengine's AmpOptimWrapper asserts a GPU; on CPU, bfloat16 autocast.
CPU_AMP_WRAPPERS = {
    'OptimWrapper': 'CPUAmpOptimWrapper',
    'NonFiniteGuardOptimWrapper': 'NonFiniteGuardCPUAmpOptimWrapper',
}


def _has_accelerator() -> bool:
    from mmengine.device import (is_cuda_available, is_mlu_available,
                                 is_musa_available, is_npu_available)
    return (is_cuda_available() or is_npu_available() or is_mlu_available()
            or is_musa_available())


def enable_amp(cfg) -> None:
    """Switch the optimiser wrapper to its mixed-precision counterpart.

    With a GPU (NPU, MLU, MUSA): mmengine's float16 ``AmpOptimWrapper`` with
    a dynamic loss scale. Without one: dpt_mm's ``CPUAmpOptimWrapper``,
    bfloat16 autocast, which needs no loss scale.
    """
    from mmengine.logging import print_log
    wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
    if wrapper in (*AMP_WRAPPERS.values(), *CPU_AMP_WRAPPERS.values()):
        print_log('AMP training is already enabled in your config.',
                  logger='current', level=logging.WARNING)
        return
    if wrapper not in AMP_WRAPPERS:
        from dpt_mm.utils import InputError
        raise InputError(
            f'--amp supports the optimiser wrappers {sorted(AMP_WRAPPERS)}, '
            f'got {wrapper}; set mixed precision in the config instead')
    if _has_accelerator():
        cfg.optim_wrapper.type = AMP_WRAPPERS[wrapper]
        cfg.optim_wrapper.loss_scale = 'dynamic'
    else:
        cfg.optim_wrapper.type = CPU_AMP_WRAPPERS[wrapper]
        cfg.optim_wrapper.dtype = 'bfloat16'


def main() -> None:
    args = parse_args()
    # Imported once the arguments are known: --help is instant.
    from mmengine.runner import Runner

    import dpt_mm  # noqa: F401  (registers components before any build)
    from dpt_mm.accel import accelerate_from_cfg
    from cpu_dist import finish_cpu_distributed, setup_cpu_distributed
    from dpt_mm.datasets import check_data_paths
    from dpt_mm.models import check_model_config
    from dpt_mm.utils import (explain_registry_errors, load_config,
                              setup_cli_config)
    from dpt_mm.utils.console import log_run_summary, short_console
    from mmseg.registry import RUNNERS
    cfg = load_config(args.config, args.cfg_options)
    check_model_config(cfg.get('model'))  # fail before any work dir or log
    check_data_paths(cfg, 'train')
    setup_cli_config(cfg, args.config, args.work_dir, args.launcher)
    setup_cpu_distributed(cfg, args.launcher)
    if args.amp:
        enable_amp(cfg)
    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume
    if args.partial_load:
        cfg.load_from_partial = True

    with explain_registry_errors():
        with short_console():  # the full config and environment: log file
            runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg \
                else RUNNERS.build(cfg)
        accelerate_from_cfg(runner.model, cfg, args.accel)
        log_run_summary(runner, args.config)
        runner.train()
    del runner  # DDP goes before its process group (CPU runs)
    finish_cpu_distributed()


if __name__ == '__main__':
    try:
        sys.exit(main())
    except Exception as error:  # a user's mistake: message and hint only
        from dpt_mm.utils.cli import exit_if_user_error
        exit_if_user_error(error)
        raise

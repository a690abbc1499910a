"""Distributed runs on CPU (gloo) for ``tools/train.py`` and ``tools/test.py``.

mmengine 0.10.7 assumes CUDA for DDP: it passes ``device_ids`` and calls
``torch.cuda.set_device`` before ``init_process_group``. These helpers make
``dist_train.sh`` work on a machine without GPUs.
"""
from mmengine.config import Config

__all__ = ['finish_cpu_distributed', 'setup_cpu_distributed']


def setup_cpu_distributed(cfg: Config, launcher: str) -> Config:
    """Use gloo and a CPU-friendly DDP wrapper when there is no CUDA.

    Args:
        cfg (Config): Loaded config, modified in place.
        launcher (str): ``--launcher``; ``'none'`` changes nothing.

    Returns:
        Config: ``cfg``.
    """
    if launcher == 'none':
        return cfg
    import torch
    if not torch.cuda.is_available():
        env_cfg = cfg.setdefault('env_cfg', {})
        dist_cfg = env_cfg.setdefault('dist_cfg', {})
        dist_cfg['backend'] = 'gloo'
        _cpu_model_wrapper(cfg)
        if launcher == 'pytorch':
            _init_cpu_process_group(dist_cfg)
    return cfg


def _cpu_model_wrapper(cfg: Config) -> None:
    """DDP without ``device_ids``, which must be None for CPU modules.

    mmengine's Runner (0.10.7) passes ``device_ids=[LOCAL_RANK]`` unless the
    ``model_wrapper_cfg`` sets them.
    """
    wrapper = cfg.get('model_wrapper_cfg', None)
    if wrapper is None:
        cfg.model_wrapper_cfg = dict(
            type='MMDistributedDataParallel',
            device_ids=None,
            broadcast_buffers=False,  # mmengine's defaults otherwise
            find_unused_parameters=cfg.get('find_unused_parameters', False))
    elif wrapper.get('type', 'MMDistributedDataParallel') in (
            'MMDistributedDataParallel', 'DistributedDataParallel'):
        wrapper.setdefault('device_ids', None)


def _init_cpu_process_group(dist_cfg: dict) -> None:
    """Join the torchrun process group with gloo, without CUDA.

    mmengine's ``init_dist`` (0.10.7) calls ``torch.cuda.set_device`` before
    ``init_process_group`` whatever the backend, which fails on a machine
    (or a torch build) without CUDA. The Runner skips ``init_dist`` when a
    process group exists, so it is created here first.
    """
    import datetime

    import torch.distributed as torch_dist
    if torch_dist.is_initialized():
        return
    kwargs = {
        k: v
        for k, v in dist_cfg.items() if k not in ('backend', 'init_backend')
    }
    if kwargs.get('timeout') is not None:  # seconds, as mmengine takes it
        kwargs['timeout'] = datetime.timedelta(seconds=kwargs['timeout'])
    torch_dist.init_process_group(backend='gloo', **kwargs)
    global _OWN_CPU_GROUP
    _OWN_CPU_GROUP = True


_OWN_CPU_GROUP = False


def finish_cpu_distributed() -> None:
    """Tear down the gloo group of :func:`setup_cli_config`, after success.

    Left to interpreter exit, a CPU DistributedDataParallel run sometimes
    aborts a rank after it has finished ("terminate called without an
    active exception", exit code -6, so torchrun reports a failure): seen
    with torch 2.13 in about 1 run out of 5, with plain torch DDP too.
    Freeing the DDP model first, then a barrier, then destroying the group
    made 32 runs out of 32 exit cleanly. Call it once the runner is no
    longer referenced, on the success path only (a failed rank must not
    wait in the barrier). Does nothing for groups it did not create.
    """
    global _OWN_CPU_GROUP
    if not _OWN_CPU_GROUP:
        return
    import gc

    import torch.distributed as torch_dist
    _OWN_CPU_GROUP = False
    gc.collect()  # the DDP wrapper (its reducer) must go before the group
    if torch_dist.is_initialized():
        torch_dist.barrier()
        torch_dist.destroy_process_group()



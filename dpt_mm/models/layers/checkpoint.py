"""Gradient checkpointing for the ``with_cp`` options of dpt_mm's modules.

Through ``torch.utils.checkpoint`` only (non-reentrant), as timm does: it
saves and replays the RNG state of the segment's device, so dropout masks
are the same in the recomputation on any device.
"""
from contextlib import contextmanager, nullcontext
from typing import Any, Callable, Iterator, Optional

import torch
import torch.nn as nn
import torch.utils.checkpoint as cp

__all__ = ['checkpoint_if', 'frozen_norm_stats']


@contextmanager
def frozen_norm_stats(module: nn.Module) -> Iterator[None]:
    """Restore the running statistics of ``module``'s BatchNorm layers on
    exit.

    A checkpointed segment runs its forward twice (three times when
    nested); training-mode BatchNorm normalises with the batch's
    statistics either way, but would move its running statistics and
    ``num_batches_tracked`` on every run. Recomputation under this context
    leaves them as the first run set them: once per step, as without
    checkpointing.

    Args:
        module (nn.Module): Its ``_BatchNorm`` submodules (itself included)
            that track running statistics are restored.
    """
    saved = [(buf, buf.clone()) for m in module.modules()
             if isinstance(m, nn.modules.batchnorm._BatchNorm)
             and m.track_running_stats
             for buf in (m.running_mean, m.running_var, m.num_batches_tracked)
             if buf is not None]
    try:
        yield
    finally:
        with torch.no_grad():
            for buf, value in saved:
                buf.copy_(value)


def checkpoint_if(enabled: bool, fn: Callable[..., Any], *args: Any,
                  norms: Optional[nn.Module] = None) -> Any:
    """``fn(*args)``, recomputed in backward when ``enabled`` and autograd
    is recording (non-reentrant ``torch.utils.checkpoint``).

    Args:
        enabled (bool): The caller's condition, e.g.
            ``self.with_cp and self.training``.
        fn (callable): The segment.
        *args: Its inputs.
        norms (nn.Module, optional): A module holding the segment's
            BatchNorm layers; the recomputation leaves their running
            statistics alone (:func:`frozen_norm_stats`).

    Returns:
        Any: ``fn(*args)``.
    """
    if enabled and torch.is_grad_enabled():
        if norms is None:
            return cp.checkpoint(fn, *args, use_reentrant=False)
        return cp.checkpoint(
            fn, *args, use_reentrant=False,
            context_fn=lambda: (nullcontext(), frozen_norm_stats(norms)))
    return fn(*args)

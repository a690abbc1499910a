"""Mixed-precision training on CPU: bfloat16 autocast, no loss scaler.

mmengine 0.10.7's ``AmpOptimWrapper`` asserts a GPU/NPU/MLU/MUSA device.
On CPU, ``torch.autocast`` supports bfloat16 only, and bfloat16 has the
exponent range of float32, so gradients do not underflow and no
``GradScaler`` is needed: the wrapper is ``OptimWrapper`` with the forward
pass under ``torch.autocast('cpu', dtype=torch.bfloat16)``. Weights,
gradients and optimiser state stay float32.

Config (``tools/train.py --amp`` picks it on a machine without a GPU)::

    optim_wrapper = dict(type='CPUAmpOptimWrapper',
                         optimizer=dict(type='AdamW', lr=1e-4))
"""
from contextlib import contextmanager
from typing import Any, Iterator, Union

import torch
import torch.nn as nn
from mmengine.optim import OptimWrapper
from mmseg.registry import OPTIM_WRAPPERS

from .nonfinite_guard import _NonFiniteGuard

__all__ = ['CPUAmpOptimWrapper', 'NonFiniteGuardCPUAmpOptimWrapper']


@OPTIM_WRAPPERS.register_module()
class CPUAmpOptimWrapper(OptimWrapper):
    """``OptimWrapper`` whose forward pass runs in CPU bfloat16 autocast.

    Args:
        dtype (str | torch.dtype): Autocast dtype; CPU autocast supports
            ``'bfloat16'`` only. Defaults to ``'bfloat16'``.
        loss_scale (str | float | dict | None): Accepted so that a config
            written for ``AmpOptimWrapper`` works unchanged, and ignored:
            bfloat16 needs no loss scaling. Defaults to None.
        **kwargs: Keyword arguments of :class:`mmengine.optim.OptimWrapper`
            (``optimizer``, ``clip_grad``, ``accumulative_counts``).
    """

    def __init__(self,
                 dtype: Union[str, torch.dtype] = 'bfloat16',
                 loss_scale: Any = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if isinstance(dtype, str):
            dtype = getattr(torch, dtype, None)
        if dtype is not torch.bfloat16:
            raise ValueError(f'{type(self).__name__}: CPU autocast supports '
                             f'dtype bfloat16 only, got {dtype}')
        self.cast_dtype = dtype

    @contextmanager
    def optim_context(self, model: nn.Module) -> Iterator[None]:
        """Gradient-accumulation context of ``OptimWrapper`` plus autocast.

        Args:
            model (nn.Module): The training model.
        """
        with super().optim_context(model), torch.autocast(
                device_type='cpu', dtype=self.cast_dtype):
            yield


@OPTIM_WRAPPERS.register_module()
class NonFiniteGuardCPUAmpOptimWrapper(_NonFiniteGuard, CPUAmpOptimWrapper):
    """:class:`CPUAmpOptimWrapper` that never applies a NaN/inf update.

    Without a loss scaler nothing else skips bad steps, so losses and
    gradients are both checked, as in
    :class:`~dpt_mm.engine.optimizers.NonFiniteGuardOptimWrapper`.

    Args:
        *args: Positional arguments of :class:`CPUAmpOptimWrapper`.
        on_nonfinite (str): ``'skip'`` or ``'raise'``. Defaults to ``'skip'``.
        max_consecutive_skips (int | None): See
            :class:`~dpt_mm.engine.optimizers.NonFiniteGuardOptimWrapper`.
            Defaults to 10.
        **kwargs: Keyword arguments of :class:`CPUAmpOptimWrapper`.
    """

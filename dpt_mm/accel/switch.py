"""The one switch: swap a built model's layers for accelerated ones."""
from typing import Any, Dict, Optional

import torch.nn as nn

from mmseg.models.losses import CrossEntropyLoss
from ..models.layers.reassemble import Readout
from .conv import BandedConv2d
from .decision import accel_decision
from .linear import OneDNNLinear
from .loss import FusedCrossEntropyLoss
from .readout import SplitReadout

__all__ = ['ACCEL_MODES', 'KERNELS', 'accelerate', 'accelerate_from_cfg']

#: ``auto``: the kernels the measurement on this machine found faster
#: (:func:`~dpt_mm.accel.accel_decision`); ``on``: all of them; ``off``:
#: none (and layers swapped before are restored).
ACCEL_MODES = ('auto', 'on', 'off')
#: Kernel name → (plain class, its accelerated subclass). Only modules of
#: exactly the plain class are swapped: a subclass (e.g. the hybrid stem's
#: ``StdConv2dSame``) has a forward of its own.
KERNELS: Dict[str, tuple] = {
    'linear': (nn.Linear, OneDNNLinear),
    'conv': (nn.Conv2d, BandedConv2d),
    'readout': (Readout, SplitReadout),
    'loss': (CrossEntropyLoss, FusedCrossEntropyLoss),
}


def _check_mode(mode: Any, source: str) -> str:
    if mode not in ACCEL_MODES:
        raise ValueError(f'{source}: accel must be one of {ACCEL_MODES}, '
                         f'got {mode!r}')
    return mode


def accelerate(model: nn.Module, mode: str = 'auto') -> int:
    """Swap ``model``'s eligible layers for the accelerator's, in place.

    ``nn.Linear`` → :class:`~dpt_mm.accel.OneDNNLinear`, ``nn.Conv2d``
    → :class:`~dpt_mm.accel.BandedConv2d`, DPT's ``Readout`` →
    :class:`~dpt_mm.accel.SplitReadout` and mmseg's ``CrossEntropyLoss`` →
    :class:`~dpt_mm.accel.FusedCrossEntropyLoss` (the decode heads'
    chunked loss with its gradient computed in forward): subclasses with
    the same parameters, buffers and state-dict keys (only ``__class__``
    changes), which run their kernel in CPU float32 eager execution and
    fall back to the plain forward anywhere else (GPU, other dtypes,
    autocast, ``torch.compile``, export, tracing). Call it on the built
    model, before ``torch.compile``.

    Args:
        model (nn.Module): The model.
        mode (str): One of :data:`ACCEL_MODES`.

    Returns:
        int: How many layers were swapped (0 for ``off``).
    """
    _check_mode(mode, 'accelerate')
    if mode == 'auto':
        wanted = accel_decision()['kernels']
    else:
        wanted = {name: mode == 'on' for name in KERNELS}
    swapped = 0
    for module in model.modules():
        for name, (plain, accel) in KERNELS.items():
            if type(module) is accel and not wanted.get(name, False):
                module.__class__ = plain
            elif type(module) is plain and wanted.get(name, False):
                module.__class__ = accel
                swapped += 1
    return swapped


def accelerate_from_cfg(model: nn.Module, cfg: Any,
                        mode: Optional[str] = None) -> int:
    """:func:`accelerate` with the mode given, else the config's ``accel``
    key, else ``'auto'``.

    Args:
        model (nn.Module): The built model.
        cfg (Config | dict): The config (its top-level ``accel``).
        mode (str, optional): An override, e.g. a CLI ``--accel`` flag.

    Returns:
        int: How many layers were swapped.
    """
    if mode is None:
        mode = _check_mode(cfg.get('accel', 'auto'), "config key 'accel'")
    return accelerate(model, mode)

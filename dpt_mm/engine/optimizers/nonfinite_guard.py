"""Optimiser wrappers that keep NaN/inf out of the weights.

One bad sample (an all-invalid depth map, a corrupt label) can make the loss
NaN; a single optimiser step with NaN gradients then poisons every weight
and the rest of the run is wasted. These wrappers check before stepping,
skip the step, zero the gradients and say which files the batch came from
(with :class:`~dpt_mm.engine.hooks.SampleTrackerHook` in ``custom_hooks``).

Config::

    optim_wrapper = dict(
        type='NonFiniteGuardOptimWrapper',  # AMP: ...GuardAmpOptimWrapper
        optimizer=dict(type='AdamW', lr=1e-4),
        on_nonfinite='skip', max_consecutive_skips=10)
    custom_hooks = [dict(type='SampleTrackerHook')]
"""
import logging
from typing import Any, Dict, List, Optional

import torch
from mmengine.dist import all_reduce, get_world_size
from mmengine.logging import MessageHub, print_log
from mmengine.optim import AmpOptimWrapper, OptimWrapper
from mmseg.registry import OPTIM_WRAPPERS

from ..hooks.sample_tracker_hook import current_samples

__all__ = ['NonFiniteGuardAmpOptimWrapper', 'NonFiniteGuardOptimWrapper']

_MODES = ('skip', 'raise')
_MAX_NAMED_PARAMS = 5


def _format_value(tensor: torch.Tensor) -> str:
    values = tensor.detach().float().flatten()
    if values.numel() == 1:
        return str(values.item())
    return str(values[:8].tolist())


def _where() -> str:
    """Iteration and batch files of the current step, for messages."""
    message_hub = MessageHub.get_current_instance()
    where = f'iteration {message_hub.get_info("iter", -1) + 1}'
    samples = current_samples()
    if samples is None:
        return (f'{where} (add dict(type="SampleTrackerHook") to '
                'custom_hooks to name the files)')
    return f'{where}, samples {samples}'


class _NonFiniteGuard:
    """Shared logic; mixed in before an mmengine ``OptimWrapper`` class."""

    # Whether step() inspects gradients itself (AMP's GradScaler does).
    _check_gradients = True

    def __init__(self,
                 *args: Any,
                 on_nonfinite: str = 'skip',
                 max_consecutive_skips: Optional[int] = 10,
                 **kwargs: Any) -> None:
        if on_nonfinite not in _MODES:
            raise ValueError(f'on_nonfinite must be one of {_MODES}, '
                             f'got {on_nonfinite!r}')
        if max_consecutive_skips is not None and max_consecutive_skips < 0:
            raise ValueError('max_consecutive_skips must be >= 0 or None, '
                             f'got {max_consecutive_skips}')
        super().__init__(*args, **kwargs)
        self.on_nonfinite = on_nonfinite
        self.max_consecutive_skips = max_consecutive_skips
        self.consecutive_skips = 0
        # Problems seen since the last step (several with accumulation).
        self._problems: List[str] = []

    def update_params(self,
                      loss: torch.Tensor,
                      step_kwargs: Optional[Dict] = None,
                      zero_kwargs: Optional[Dict] = None) -> None:
        """Backward and step as ``OptimWrapper``, skipping non-finite steps.

        Backward runs even for a non-finite loss so that distributed ranks
        stay in lockstep; the step it would lead to is skipped.

        Args:
            loss (torch.Tensor): The loss of the current iteration.
            step_kwargs (dict, optional): Arguments for ``optimizer.step``.
            zero_kwargs (dict, optional): Arguments for
                ``optimizer.zero_grad``.
        """
        if not bool(torch.isfinite(loss.detach()).all()):
            self._problems.append(
                f'non-finite loss {_format_value(loss)} at {_where()}')
        super().update_params(loss, step_kwargs, zero_kwargs)

    def step(self, **kwargs: Any) -> None:
        """Step unless a loss or gradient since the last step is non-finite.

        A skipped step zeroes the gradients and warns (or raises).

        Args:
            **kwargs: Arguments for ``optimizer.step``.

        Raises:
            RuntimeError: With ``on_nonfinite='raise'``, or when more than
                ``max_consecutive_skips`` steps in a row were skipped.
        """
        problems, self._problems = self._problems, []
        # A non-finite loss already decides it; spare the pass over grads.
        if not problems and self._check_gradients:
            problems = self._nonfinite_gradients()
        skip = self._agree_across_ranks(bool(problems))
        if not skip:
            self.consecutive_skips = 0
            super().step(**kwargs)
            return

        # Weights and optimiser state stay as they were before this step.
        self.zero_grad()
        self.consecutive_skips += 1
        if not problems:
            problems = ['a non-finite loss or gradient on another rank']
        message = (f'{type(self).__name__}: ' + '; '.join(problems) + '. ')
        if self.on_nonfinite == 'raise':
            raise RuntimeError(message + 'The optimizer step was not taken '
                               "(on_nonfinite='raise').")
        if (self.max_consecutive_skips is not None
                and self.consecutive_skips > self.max_consecutive_skips):
            raise RuntimeError(
                message + f'{self.consecutive_skips} steps in a row were '
                f'skipped, more than max_consecutive_skips='
                f'{self.max_consecutive_skips}: training has diverged.')
        print_log(
            message + 'Skipped the optimizer step and zeroed the gradients '
            f'({self.consecutive_skips} in a row).',
            logger='current',
            level=logging.WARNING)

    def _nonfinite_gradients(self) -> List[str]:
        grads, names = [], []
        for group in self.optimizer.param_groups:
            group_names = group.get('param_names')
            for index, param in enumerate(group['params']):
                if param.grad is None:
                    continue
                grads.append(param.grad)
                names.append(group_names[index] if group_names else
                             f'{tuple(param.shape)} tensor')
        if not grads:
            return []
        device = grads[0].device
        # One host sync for all tensors, not one per tensor.
        finite = torch.stack(
            [torch.isfinite(grad).all().to(device) for grad in grads])
        if bool(finite.all()):
            return []
        bad = [names[i] for i in (~finite).nonzero().flatten().tolist()]
        shown = ', '.join(bad[:_MAX_NAMED_PARAMS])
        more = '' if len(bad) <= _MAX_NAMED_PARAMS else ', ...'
        return [
            f'non-finite gradients in {len(bad)} parameter tensors '
            f'({shown}{more}) at {_where()}'
        ]

    def _agree_across_ranks(self, skip: bool) -> bool:
        # A rank that skips alone would let the weights diverge across ranks.
        if get_world_size() <= 1:
            return skip
        device = self.optimizer.param_groups[0]['params'][0].device
        flag = torch.tensor([float(skip)], device=device)
        all_reduce(flag, op='max')
        return bool(flag.item())


@OPTIM_WRAPPERS.register_module()
class NonFiniteGuardOptimWrapper(_NonFiniteGuard, OptimWrapper):
    """``OptimWrapper`` that never applies a NaN/inf update.

    Before each optimizer step it checks the losses since the last step and
    every gradient. If any is NaN or inf, the step is not taken (weights,
    momentum and weight decay untouched), gradients are zeroed and a warning
    names the loss value, the iteration and the batch's files (from
    :class:`~dpt_mm.engine.hooks.SampleTrackerHook`). Gradient clipping runs
    only for steps that are taken. With gradient accumulation, one bad
    micro-batch drops the whole accumulated update. Under distributed
    training the decision is all-reduced, so all ranks skip together.

    Args:
        *args: Positional arguments of :class:`mmengine.optim.OptimWrapper`
            (``optimizer``...).
        on_nonfinite (str): ``'skip'`` to warn and go on, ``'raise'`` to
            raise a RuntimeError with the same message. Defaults to
            ``'skip'``.
        max_consecutive_skips (int | None): In ``'skip'`` mode, raise once
            more than this many steps in a row were skipped (the run has
            diverged rather than met one bad batch). None never raises.
            Defaults to 10.
        **kwargs: Keyword arguments of :class:`mmengine.optim.OptimWrapper`
            (``optimizer``, ``clip_grad``, ``accumulative_counts``).
    """


@OPTIM_WRAPPERS.register_module()
class NonFiniteGuardAmpOptimWrapper(_NonFiniteGuard, AmpOptimWrapper):
    """``AmpOptimWrapper`` that skips steps whose loss is NaN/inf.

    Mixed precision differs in one point: overflowing (inf) scaled gradients
    are routine there, and ``GradScaler`` already skips those steps and
    lowers the loss scale. So this wrapper checks only the (unscaled) loss:
    a non-finite loss skips the step without touching the scaler, zeroes
    the gradients and warns (or raises) as
    :class:`NonFiniteGuardOptimWrapper` does; non-finite gradients from a
    finite loss are left to ``GradScaler``, without a warning.

    Args:
        *args: Positional arguments of :class:`mmengine.optim.AmpOptimWrapper`.
        on_nonfinite (str): ``'skip'`` or ``'raise'``. Defaults to ``'skip'``.
        max_consecutive_skips (int | None): See
            :class:`NonFiniteGuardOptimWrapper`. Defaults to 10.
        **kwargs: Keyword arguments of
            :class:`mmengine.optim.AmpOptimWrapper` (``loss_scale``,
            ``dtype``, ``optimizer``...).
    """

    _check_gradients = False

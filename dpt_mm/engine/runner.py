"""A Runner whose checkpoint loads are strict and whose work dir is locked.

mmengine's ``Runner`` loads ``load_from``, ``--resume`` and the checkpoint of
``tools/test.py`` with ``strict=False``: a checkpoint of another model is
half-loaded after a notice buried in the log, and evaluation or training
goes on. :class:`DPTRunner` (``runner_type = 'DPTRunner'`` in
``configs/_base_/default_runtime.py``) changes three things:

* every load compares keys and shapes first and refuses a checkpoint that
  does not fit with :class:`~dpt_mm.converters.common.CheckpointMismatchError`
  naming the file and the missing, unexpected and mismatched keys; nothing
  is loaded then. Fine-tuning from a checkpoint with another head is an
  explicit opt-in, ``load_from_partial = True`` in the config
  (``tools/train.py --partial-load``): the keys that fit are loaded and a
  warning lists the ones that were not. Resuming is never partial;
* a resume checkpoint must hold what resuming restores (``meta`` with the
  epoch and iteration, ``message_hub``, ``optimizer``, ``param_schedulers``
  when the run has schedulers); a missing part, or an optimizer state that
  does not fit this run's optimizer, is a :class:`ResumeError` naming the
  file;
* ``train()`` holds a :class:`~dpt_mm.engine.work_dir_lock.WorkDirLock` on
  the work dir, so a second run in the same folder stops at once, naming the
  first.
"""
import logging
import re
from typing import Any, Callable, Dict, List, Mapping, Sequence, Tuple, Union

import torch.nn as nn
from mmengine.dist import broadcast_object_list, get_world_size, \
    is_main_process
from mmengine.logging import print_log
from mmengine.model import BaseTTAModel, is_model_wrapper
from mmengine.runner import Runner
from mmengine.runner.checkpoint import _load_checkpoint
from mmseg.registry import RUNNERS

from ..converters.common import CheckpointMismatchError, compare_state_dict
from .work_dir_lock import WorkDirLock, WorkDirLockedError

__all__ = ['DPTRunner', 'ResumeError', 'load_state_dict_partially']

RevisedKeys = Sequence[Tuple[str, str]]


class ResumeError(RuntimeError):
    """A checkpoint cannot continue this training run."""


def _state_dict_of(checkpoint: Any, filename: str) -> Dict[str, Any]:
    if not isinstance(checkpoint, Mapping):
        raise TypeError(f'checkpoint {filename} holds a '
                        f'{type(checkpoint).__name__}, not a dict of '
                        'weights')
    state_dict = checkpoint.get('state_dict', checkpoint)
    if not isinstance(state_dict, Mapping):
        raise TypeError(f'checkpoint {filename}: "state_dict" is a '
                        f'{type(state_dict).__name__}, not a dict of weights')
    return dict(state_dict)


def _revise(state_dict: Dict[str, Any],
            revise_keys: RevisedKeys) -> Dict[str, Any]:
    for pattern, replacement in revise_keys:
        state_dict = {re.sub(pattern, replacement, key): value
                      for key, value in state_dict.items()}
    return state_dict


def load_state_dict_partially(model: nn.Module, state_dict: Mapping[str, Any],
                              context: str) -> List[str]:
    """Load the keys that fit (name and shape), warn about the others.

    Args:
        model (nn.Module): Target model.
        state_dict (Mapping[str, Any]): Flat weights.
        context (str): What is loaded, for the messages.

    Returns:
        list[str]: One line per model or checkpoint key that was not loaded.

    Raises:
        CheckpointMismatchError: Not a single key fits: a partial load of
            nothing is a wrong file, not a fine-tuning start.
    """
    missing, unexpected, mismatched = compare_state_dict(model, state_dict)
    skipped = {line.split(':')[0] for line in mismatched}
    fitting = {key: value for key, value in state_dict.items()
               if key not in skipped and key not in unexpected}
    if not fitting:
        raise CheckpointMismatchError(missing, unexpected, mismatched,
                                      context + ' (partial load)')
    model.load_state_dict(fitting, strict=False)
    not_loaded = ([f'missing in the checkpoint, kept as initialised: {k}'
                   for k in missing]
                  + [f'not in the model, ignored: {k}' for k in unexpected]
                  + [f'shape differs, kept as initialised: {k}'
                     for k in mismatched])
    if not_loaded:
        print_log(
            f'{context}: partial load (load_from_partial=True), loaded '
            f'{len(fitting)} of {len(model.state_dict())} model tensors; '
            f'{len(not_loaded)} keys were not loaded:\n' +
            '\n'.join(f'  {line}' for line in not_loaded),
            logger='current', level=logging.WARNING)
    return not_loaded


@RUNNERS.register_module()
class DPTRunner(Runner):
    """``Runner`` with strict checkpoint loading and a work-dir lock.

    Built from a config like mmengine's ``Runner``; reads one extra config
    key, ``load_from_partial`` (bool, default False): load ``load_from``
    partially, for fine-tuning with a different head.
    """

    _resuming = False

    @property
    def load_from_partial(self) -> bool:
        """Whether ``load_from`` may load partially (config opt-in)."""
        return bool(self.cfg.get('load_from_partial', False))

    def train(self) -> nn.Module:
        """Train while holding the work-dir lock.

        Returns:
            nn.Module: The model after training.

        Raises:
            WorkDirLockedError: Another run trains in this work dir.
        """
        lock = WorkDirLock(self.work_dir)
        error = None
        if is_main_process():
            try:
                lock.acquire()
            except WorkDirLockedError as locked:
                error = str(locked)
        if get_world_size() > 1:
            # Every rank stops, not only the one that took the lock.
            shared = [error]
            broadcast_object_list(shared)
            error = shared[0]
        if error is not None:
            raise WorkDirLockedError(error)
        try:
            return super().train()
        finally:
            lock.release()

    def resume(self,
               filename: str,
               resume_optimizer: bool = True,
               resume_param_scheduler: bool = True,
               map_location: Union[str, Callable] = 'default') -> None:
        """Resume strictly; a checkpoint that cannot continue is refused.

        Args:
            filename (str): Checkpoint path or URL.
            resume_optimizer (bool): Restore the optimizer state.
            resume_param_scheduler (bool): Restore the schedulers.
            map_location (str | Callable): As in ``Runner.resume``.

        Raises:
            CheckpointMismatchError: The model weights do not fit.
            ResumeError: Parts needed to resume are missing, or the
                optimizer state does not fit this run's optimizer.
        """
        self._resuming = True
        self._resume_parts = dict(optimizer=resume_optimizer,
                                  param_schedulers=resume_param_scheduler)
        try:
            super().resume(filename, resume_optimizer, resume_param_scheduler,
                           map_location)
        except (ValueError, KeyError, IndexError) as error:
            # Raised by torch's or mmengine's state loaders once the model
            # has loaded: the optimizer or schedulers are another run's.
            raise ResumeError(
                f'cannot resume from {filename}: its optimizer or scheduler '
                f'state does not fit this run ({type(error).__name__}: '
                f'{error}). Resume only the run that wrote it; to start a new '
                'run from its weights, use load_from instead.') from error
        finally:
            self._resuming = False

    def load_checkpoint(self,
                        filename: str,
                        map_location: Union[str, Callable] = 'cpu',
                        strict: bool = True,
                        revise_keys: RevisedKeys = ((r'^module.', ''), )
                        ) -> dict:
        """Load a checkpoint into the model, strictly unless opted out.

        Args:
            filename (str): Checkpoint path or URL.
            map_location (str | Callable): As in ``torch.load``.
            strict (bool): Refuse a checkpoint that does not fit. When
                ``load_from_partial`` is set and this is not a resume, the
                load is partial regardless. Defaults to True (mmengine's
                default is False).
            revise_keys (Sequence[tuple[str, str]]): ``(pattern,
                replacement)`` renames applied to checkpoint keys; strips
                DDP's ``module.`` prefix by default.

        Returns:
            dict: The loaded checkpoint.

        Raises:
            CheckpointMismatchError: The checkpoint does not fit the model;
                the model is left untouched.
            ResumeError: While resuming, a part needed to resume is missing.
        """
        checkpoint = _load_checkpoint(filename, map_location=map_location)
        if self._resuming:
            self._check_resume_parts(checkpoint, filename)
        self.call_hook('after_load_checkpoint', checkpoint=checkpoint)
        model = self.model
        # DDP and test-time-augmentation wrappers hold the model as .module.
        while is_model_wrapper(model) or isinstance(model, BaseTTAModel):
            model = model.module
        state_dict = _revise(_state_dict_of(checkpoint, filename),
                             revise_keys)
        context = f'checkpoint {filename}'
        if not self._resuming and (self.load_from_partial or not strict):
            load_state_dict_partially(model, state_dict, context)
        else:
            missing, unexpected, mismatched = compare_state_dict(
                model, state_dict)
            if missing or unexpected or mismatched:
                hint = ('A resumed run must be the one that wrote the '
                        'checkpoint.' if self._resuming else
                        'To fine-tune with another head, set '
                        'load_from_partial=True or pass --partial-load to '
                        'tools/train.py: what fits is loaded, the rest is '
                        'listed.')
                raise CheckpointMismatchError(missing, unexpected, mismatched,
                                              context, hint)
            model.load_state_dict(state_dict, strict=True)
        self._has_loaded = True
        self.logger.info(f'Load checkpoint from {filename}')
        return checkpoint

    def _check_resume_parts(self, checkpoint: Any, filename: str) -> None:
        if not isinstance(checkpoint, Mapping):
            raise ResumeError(f'cannot resume from {filename}: it holds a '
                              f'{type(checkpoint).__name__}, not a training '
                              'checkpoint')
        meta = checkpoint.get('meta')
        absent = [] if isinstance(checkpoint.get('state_dict'), Mapping) \
            else ['state_dict']
        if not isinstance(meta, Mapping):
            absent.append('meta')
        else:
            absent += [f'meta.{key}' for key in ('epoch', 'iter')
                       if key not in meta]
        absent += [key for key in ('message_hub', ) if key not in checkpoint]
        if self._resume_parts['optimizer'] and 'optimizer' not in checkpoint:
            absent.append('optimizer')
        if (self._resume_parts['param_schedulers']
                and self.param_schedulers is not None
                and 'param_schedulers' not in checkpoint):
            absent.append('param_schedulers')
        if absent:
            raise ResumeError(
                f'cannot resume from {filename}: it lacks '
                f'{", ".join(absent)} (keys present: '
                f'{", ".join(sorted(map(str, checkpoint)))}). Resuming needs '
                'a checkpoint saved by a training run (CheckpointHook with '
                'save_optimizer and save_param_scheduler); to start a new run '
                'from its weights, use load_from instead.')

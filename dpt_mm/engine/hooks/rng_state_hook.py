"""Save the random number generators' states in checkpoints, for resuming.

mmengine's resume restores the model, optimiser, schedulers and message
hub, and replays the data loader up to the resumed iteration, but not the
states of Python's ``random``, numpy's global generator and torch's (CPU and
CUDA) generators. After a resume they are those of a fresh start (reseeded,
model initialised, data loader replayed), not those of the interrupted run
at the checkpoint, so dropout masks, drop-path and any random draw outside
the data pipeline differ, and a resumed run does not reproduce the
uninterrupted one.

:class:`RNGStateHook` closes that gap:

* ``before_save_checkpoint``: stores the states under
  ``checkpoint['rng_states']`` as plain ints, lists, floats, strings and
  uint8 tensors (nothing that the safe loader of
  :mod:`dpt_mm.utils.checkpoint` refuses);
* ``after_load_checkpoint``: keeps them if the checkpoint has them;
* on a resume (the runner's epoch and iteration are the checkpoint's) it
  sets them again at the point the interrupted run was at when it saved:
  for ``IterBasedTrainLoop`` after the loop has replayed the data loader up
  to the resumed iteration (the replay runs the random transforms again)
  and before it fetches the next batch; for other loops before training.
  ``load_from`` (fine-tuning from a checkpoint) keeps the seeded states.
* validation during training does not touch the training random states
  (they are saved before and set back after it): with an iteration that
  both validates and saves a checkpoint, the interrupted run validated
  after saving, the resumed one does not validate again. A checkpoint
  saved during validation (``save_best``) stores the training states.

Distributed training: each rank's states are gathered every training
iteration (a small ``all_gather_object``; checkpoints are written by rank 0
only), stored per rank and given back to each rank. A resume with another
number of processes keeps the seeded states (with a warning): its data
order differs anyway.

Not covered: random states of data loader worker processes (the replay
reproduces them when workers are seeded by mmengine's ``worker_init_fn``),
``numpy.random.Generator`` and ``torch.Generator`` objects held by other
code, devices other than CPU and CUDA.

Config::

    custom_hooks = [dict(type='RNGStateHook')]
"""
import random
from typing import Any, Callable, Dict, List, Optional

import numpy as np
import torch
from mmengine.dist import all_gather_object, get_rank, get_world_size
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.runner import IterBasedTrainLoop
from mmseg.registry import HOOKS

__all__ = ['RNG_STATES_KEY', 'RNGStateHook', 'get_rng_states',
           'set_rng_states']

RNG_STATES_KEY = 'rng_states'


def get_rng_states() -> Dict[str, Any]:
    """The states of this process's global random number generators.

    Returns:
        dict: ``python``, ``numpy``, ``torch`` and, with CUDA, ``cuda``
        (the current device's generator), in types that load with
        ``torch.load(weights_only=True)``.
    """
    version, internal, gauss_next = random.getstate()
    name, key, pos, has_gauss, cached_gaussian = np.random.get_state()
    states = dict(
        python=dict(
            version=int(version),
            state=[int(value) for value in internal],
            gauss_next=gauss_next),
        numpy=dict(
            bit_generator=str(name),
            key=[int(value) for value in key],
            pos=int(pos),
            has_gauss=int(has_gauss),
            cached_gaussian=float(cached_gaussian)),
        torch=torch.get_rng_state())
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states['cuda'] = torch.cuda.get_rng_state()
    return states


def set_rng_states(states: Dict[str, Any]) -> None:
    """Set the generators to states from :func:`get_rng_states`.

    Args:
        states (dict): As returned by :func:`get_rng_states`; a missing
            entry leaves that generator alone.
    """
    if 'python' in states:
        python = states['python']
        random.setstate((python['version'], tuple(python['state']),
                         python['gauss_next']))
    if 'numpy' in states:
        state = states['numpy']
        np.random.set_state(
            (state['bit_generator'], np.asarray(state['key'],
                                                dtype=np.uint32),
             state['pos'], state['has_gauss'], state['cached_gaussian']))
    if 'torch' in states:
        # Checkpoints may be mapped to a GPU on loading; the state is CPU's.
        torch.set_rng_state(states['torch'].cpu())
    if 'cuda' in states and torch.cuda.is_available():
        torch.cuda.set_rng_state(states['cuda'].cpu())


class _SetStatesAfterReplay:
    """Stand-in for ``IterBasedTrainLoop.dataloader_iterator``.

    Passes ``replayed`` batches through (the loop's replay of the data
    already trained on), then calls ``restore`` just before the next batch
    is drawn and puts the loop's own iterator back.
    """

    def __init__(self, loop: IterBasedTrainLoop, replayed: int,
                 restore: Callable[[], None]) -> None:
        self._loop = loop
        self._iterator = loop.dataloader_iterator
        self._replayed = replayed
        self._restore = restore

    def __iter__(self) -> '_SetStatesAfterReplay':
        return self

    def __next__(self) -> Any:
        if self._replayed > 0:
            self._replayed -= 1
            return next(self._iterator)
        self._loop.dataloader_iterator = self._iterator
        self._restore()
        return next(self._iterator)

    def __getattr__(self, name: str) -> Any:
        if name == '_iterator':  # not set yet (copying, unpickling)
            raise AttributeError(name)
        return getattr(self._iterator, name)


@HOOKS.register_module()
class RNGStateHook(Hook):
    """Make a resumed run draw the random numbers the interrupted one would.

    Saves the states of ``random``, numpy's global generator and torch's
    CPU and CUDA generators in every checkpoint and, on ``resume``, sets
    them back where the interrupted run left off, so that with
    ``randomness=dict(seed=..., deterministic=True)`` a resumed run has the
    losses of an uninterrupted one. Validation inside training leaves the
    training random states untouched. See the module documentation.
    """

    # After the hooks that may draw random numbers in after_train_iter,
    # before CheckpointHook (VERY_LOW) saves.
    priority = 'LOW'

    def __init__(self) -> None:
        self._rank_states: Optional[List[Dict[str, Any]]] = None
        self._loaded: Optional[Dict[str, Any]] = None
        self._before_val: Optional[Dict[str, Any]] = None

    # Saving -------------------------------------------------------------

    def _training_states(self) -> Dict[str, Any]:
        # Inside validation (a save_best checkpoint), the training states
        # are those validation started from and will go back to.
        if self._before_val is not None:
            return self._before_val
        return get_rng_states()

    def _gather(self) -> None:
        if get_world_size() > 1:
            self._rank_states = all_gather_object(self._training_states())

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch: Any = None,
                         outputs: Any = None) -> None:
        """Collect all ranks' states, which only rank 0 can save.

        Args:
            runner (Runner): The runner of the training process.
            batch_idx (int): Index of the batch.
            data_batch (dict, optional): The batch.
            outputs (dict, optional): Outputs of the iteration.
        """
        self._gather()

    def after_train_epoch(self, runner) -> None:
        """As :meth:`after_train_iter`, for epoch checkpoints.

        Args:
            runner (Runner): The runner of the training process.
        """
        self._gather()

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """Store every rank's random states in the checkpoint.

        Args:
            runner (Runner): The runner of the training process.
            checkpoint (dict): The checkpoint to be saved.
        """
        world_size = get_world_size()
        if world_size > 1 and self._rank_states is not None \
                and len(self._rank_states) == world_size:
            ranks = list(self._rank_states)
            ranks[get_rank()] = self._training_states()
        elif world_size > 1:
            # Not gathered (a checkpoint saved outside training): the
            # other ranks' states are unknown.
            return
        else:
            ranks = [self._training_states()]
        checkpoint[RNG_STATES_KEY] = dict(world_size=world_size, ranks=ranks)

    # Restoring ----------------------------------------------------------

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """Keep the checkpoint's states for :meth:`before_train`.

        Args:
            runner (Runner): The runner.
            checkpoint (dict): The loaded checkpoint.
        """
        meta = checkpoint.get('meta') or {}
        self._loaded = dict(
            states=checkpoint.get(RNG_STATES_KEY),
            iter=meta.get('iter'),
            epoch=meta.get('epoch'))

    def before_train(self, runner) -> None:
        """On a resume, arrange for the saved states to be set back.

        Args:
            runner (Runner): The runner of the training process.
        """
        loaded, self._loaded = self._loaded, None
        if loaded is None or (runner.iter, runner.epoch) != (
                loaded['iter'], loaded['epoch']) or (runner.iter == 0
                                                     and runner.epoch == 0):
            return  # not resuming (load_from keeps the seeded states)
        saved = loaded['states']
        if saved is None:
            print_log(
                'RNGStateHook: the resumed checkpoint holds no random '
                'states; the resumed run will not draw the random numbers '
                'of the interrupted one.',
                logger='current')
            return
        world_size, rank = get_world_size(), get_rank()
        if saved['world_size'] != world_size:
            print_log(
                f'RNGStateHook: the checkpoint was saved by '
                f'{saved["world_size"]} processes, this run has '
                f'{world_size}; random states are not restored.',
                logger='current',
                level='WARNING')
            return
        states = saved['ranks'][rank]

        def restore() -> None:
            set_rng_states(states)
            print_log(
                f'RNGStateHook: restored the random states of iteration '
                f'{runner.iter}.',
                logger='current')

        loop = runner.train_loop
        if isinstance(loop, IterBasedTrainLoop) and loop.iter > 0:
            loop.dataloader_iterator = _SetStatesAfterReplay(
                loop, loop.iter, restore)
        else:
            restore()

    def before_val(self, runner) -> None:
        """Remember the training random states.

        Args:
            runner (Runner): The runner.
        """
        self._before_val = get_rng_states()

    def after_val(self, runner) -> None:
        """Set the random states back to those before validation.

        Args:
            runner (Runner): The runner.
        """
        if self._before_val is not None:
            set_rng_states(self._before_val)
            self._before_val = None

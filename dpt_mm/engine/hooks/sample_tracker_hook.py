"""Remember which files the current training batch was read from.

The optimiser wrapper that refuses non-finite losses
(:class:`~dpt_mm.engine.optimizers.NonFiniteGuardOptimWrapper`) only sees
the loss tensor; this hook puts the batch's ``img_path``s where it can read
them, so its warning names the files to inspect.
"""
from typing import List, Optional, Sequence

from mmengine.hooks import Hook
from mmengine.logging import MessageHub
from mmseg.registry import HOOKS

__all__ = ['CURRENT_SAMPLES_KEY', 'SampleTrackerHook', 'current_samples']

CURRENT_SAMPLES_KEY = 'dpt_mm/current_samples'


def current_samples() -> Optional[List[str]]:
    """The sample names :class:`SampleTrackerHook` stored for this batch.

    Returns:
        list[str] | None: One name per sample, or None when the hook is not
        in use.
    """
    return MessageHub.get_current_instance().get_info(CURRENT_SAMPLES_KEY)


@HOOKS.register_module()
class SampleTrackerHook(Hook):
    """Record the file of each sample of the current training batch.

    The names go to the message hub's runtime info under
    :data:`CURRENT_SAMPLES_KEY` with ``resumed=False``, and the key is
    removed from the checkpoint's message hub, so neither the names nor the
    key are written into checkpoints.

    Args:
        meta_key (str): Metainfo key naming a sample's file.
            Defaults to ``'img_path'``.
    """

    priority = 'VERY_HIGH'

    def __init__(self, meta_key: str = 'img_path') -> None:
        self.meta_key = meta_key

    def before_train_iter(self,
                          runner,
                          batch_idx: int,
                          data_batch: Optional[dict] = None) -> None:
        """Store the batch's sample names before the forward pass.

        Args:
            runner (Runner): The runner of the training process.
            batch_idx (int): Index of the batch in the epoch.
            data_batch (dict, optional): The batch from the dataloader, with
                ``data_samples`` carrying metainfo.
        """
        samples: Sequence = ()
        if isinstance(data_batch, dict):
            samples = data_batch.get('data_samples') or ()
        names = [
            self._name(sample, batch_idx, index)
            for index, sample in enumerate(samples)
        ]
        runner.message_hub.update_info(
            CURRENT_SAMPLES_KEY, names, resumed=False)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """Leave the key out of the checkpoint's message hub entirely.

        ``resumed=False`` keeps the names out of ``runtime_info``, but the
        hub still lists the key in ``resumed_keys``; a resume then warned
        "resumed key: dpt_mm/current_samples is not defined in
        message_hub" every time.

        Args:
            runner (Runner): The runner of the training process.
            checkpoint (dict): The checkpoint about to be saved.
        """
        hub = checkpoint.get('message_hub')
        if isinstance(hub, dict) and isinstance(hub.get('resumed_keys'),
                                                dict):
            # A copy: the dict is the live hub's own.
            hub['resumed_keys'] = {
                key: value
                for key, value in hub['resumed_keys'].items()
                if key != CURRENT_SAMPLES_KEY
            }

    def _name(self, sample: object, batch_idx: int, index: int) -> str:
        metainfo = getattr(sample, 'metainfo', sample)
        if isinstance(metainfo, dict) and metainfo.get(self.meta_key):
            return str(metainfo[self.meta_key])
        return f'<batch {batch_idx}, sample {index}: no {self.meta_key}>'

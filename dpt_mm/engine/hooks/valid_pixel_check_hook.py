"""Stop a run whose ground truth has no valid pixel.

Depth losses average over valid pixels (finite and positive depth) and the
segmentation loss over pixels that are not the ignore index; a batch with
none gives a loss of 0 and a zero gradient. Depth maps read with the wrong
``depth_scale``, all-hole maps or labels that are all ``ignore_index`` thus
train silently: the loss reads 0.0000 and the run exits 0.
:class:`ValidPixelCheckHook` warns on every batch without a valid pixel and
stops the run, naming the files, once a whole epoch (or
``max_empty_iters`` batches) in a row had none.
"""
import logging
from typing import List, Optional, Sequence

import torch
from mmengine.dist import all_reduce, get_world_size
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmseg.registry import HOOKS

from ...models.losses.depth_utils import compute_valid_mask

__all__ = ['ValidPixelCheckHook']

_MAX_NAMED = 10
_GT_PATH_KEYS = ('depth_map_path', 'seg_map_path')


def _files(sample: object) -> str:
    metainfo = getattr(sample, 'metainfo', {})
    paths = [str(metainfo[key]) for key in ('img_path', *_GT_PATH_KEYS)
             if metainfo.get(key)]
    return ' + '.join(paths) or '<sample without img_path>'


@HOOKS.register_module()
class ValidPixelCheckHook(Hook):
    """Warn on batches whose ground truth has no valid pixel; stop on many.

    A depth pixel is valid when finite and positive (as in the depth
    losses); a label pixel when it is not the model's ``ignore_index``
    (255 unless the decode head says otherwise). Samples carrying neither
    ``gt_depth_map`` nor ``gt_sem_seg`` are not checked.

    Args:
        max_empty_iters (int | None): Stop after this many batches in a row
            without a valid pixel, or after one epoch of them if that is
            shorter. None: one epoch. Defaults to 50.
    """

    priority = 'VERY_HIGH'

    def __init__(self, max_empty_iters: Optional[int] = 50) -> None:
        if max_empty_iters is not None and max_empty_iters < 1:
            raise ValueError('max_empty_iters must be >= 1 or None, got '
                             f'{max_empty_iters}')
        self.max_empty_iters = max_empty_iters
        # Both refined in before_train from the model and the dataloader.
        self.ignore_index = 255
        self.limit = max_empty_iters or 1
        self.empty_iters = 0
        self._empty_files: List[str] = []

    def before_train(self, runner) -> None:
        """Read the ignore index and the epoch length.

        Args:
            runner (Runner): The runner of the training process.
        """
        model = runner.model.module if is_model_wrapper(runner.model) \
            else runner.model
        head = getattr(model, 'decode_head', None)
        self.ignore_index = getattr(head, 'ignore_index', 255)
        limits = [len(runner.train_dataloader)]
        if self.max_empty_iters is not None:
            limits.append(self.max_empty_iters)
        self.limit = max(1, min(limits))

    def before_train_iter(self,
                          runner,
                          batch_idx: int,
                          data_batch: Optional[dict] = None) -> None:
        """Check the batch's ground truth before the forward pass.

        Args:
            runner (Runner): The runner of the training process.
            batch_idx (int): Index of the batch in the epoch.
            data_batch (dict, optional): The batch from the dataloader.

        Raises:
            RuntimeError: ``limit`` batches in a row had no valid pixel.
        """
        samples: Sequence = ()
        if isinstance(data_batch, dict):
            samples = data_batch.get('data_samples') or ()
        counts = [self._valid_pixels(sample) for sample in samples]
        counts = [count for count in counts if count is not None]
        empty = bool(counts) and sum(counts) == 0
        if empty:
            self.empty_iters += 1
            files = [_files(sample) for sample in samples]
            self._empty_files.extend(files)
            print_log(
                f'ValidPixelCheckHook: iteration {runner.iter + 1}: no '
                'valid pixel in the ground truth of this batch, so its loss '
                f'is 0 and it teaches nothing ({self.empty_iters} such '
                f'batches in a row; files: {", ".join(files)}).',
                logger='current', level=logging.WARNING)
        else:
            self.empty_iters = 0
            self._empty_files = []
        stop = self.empty_iters >= self.limit
        if get_world_size() > 1:
            flag = torch.tensor([float(stop)])
            all_reduce(flag, op='max')  # every rank stops together
            stop = bool(flag.item())
        if stop:
            files = list(dict.fromkeys(self._empty_files))
            shown = '\n'.join(f'  {f}' for f in files[:_MAX_NAMED])
            more = (f'\n  ... and {len(files) - _MAX_NAMED} more'
                    if len(files) > _MAX_NAMED else '')
            raise RuntimeError(
                f'ValidPixelCheckHook: stopped at iteration {runner.iter + 1}'
                f': {self.empty_iters} batches in a row (limit {self.limit}: '
                'one epoch or max_empty_iters) had no valid ground-truth '
                'pixel (depth finite and > 0; labels other than ignore_index '
                f'{self.ignore_index}), so the loss was 0 and the model '
                'learned nothing. Check the annotation files (depth_scale, '
                'all-zero maps, labels all ignored), e.g. with '
                f'tools/misc/check_dataset.py. Files:\n{shown}{more}')

    def _valid_pixels(self, sample: object) -> Optional[int]:
        # Both kinds count for a joint depth + segmentation sample.
        depth = getattr(sample, 'gt_depth_map', None)
        labels = getattr(sample, 'gt_sem_seg', None)
        if depth is None and labels is None:
            return None
        count = 0
        if depth is not None:
            count += int(compute_valid_mask(depth.data).sum())
        if labels is not None:
            count += int((labels.data != self.ignore_index).sum())
        return count

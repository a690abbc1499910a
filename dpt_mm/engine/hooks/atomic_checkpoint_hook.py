"""Checkpoint saving that an interrupted run cannot leave half-written.

mmengine's ``CheckpointHook`` saves through the file backend, whose ``put``
opens the final path and writes into it, then rewrites ``last_checkpoint``
the same way; with ``max_keep_ckpts`` it also deletes the oldest checkpoint
*before* writing the new one. A crash (OOM kill, pre-emption, full disk)
during a save can therefore leave a truncated ``iter_N.pth`` or
``last_checkpoint``, and ``resume=True`` then fails on it, possibly with
no older checkpoint left.

:class:`AtomicCheckpointHook` fixes that for local directories:

* checkpoints are written by :class:`AtomicLocalBackend`: to a temporary
  file in the same directory, flushed and fsynced, then ``os.replace``-d
  over the final name, so a path holds either its old content or the
  complete new one;
* ``last_checkpoint`` is written the same way, and only after the
  checkpoint it points to is complete;
* checkpoints beyond ``max_keep_ckpts`` are deleted only after that.

It also keeps what is on disk usable when a run goes wrong:

* a save that finds the disk full raises an ``OSError`` (errno ENOSPC)
  naming the file, the space it needed and the space left; the previous
  checkpoint and ``last_checkpoint`` stay as they were;
* no checkpoint is saved while the run is diverging (the optimizer wrapper
  is skipping non-finite steps, or a weight is NaN/inf), so pruning never
  replaces the last good checkpoint with wrecked weights;
* temporary files a killed save left behind (``.iter_N.pth.<pid>.<id>.tmp``,
  as large as a checkpoint) are removed when the next run starts.

Enable it in a config by replacing the default checkpoint hook::

    default_hooks = dict(checkpoint=dict(type='AtomicCheckpointHook', ...))

It takes exactly ``CheckpointHook``'s arguments. Remote ``out_dir``s and
explicit ``backend_args`` keep mmengine's (non-atomic) checkpoint writes.
"""
import errno
import logging
import os
import os.path as osp
import re
import shutil
import uuid
from typing import Any, List, Optional, Union

import torch
from mmengine.dist import is_main_process
from mmengine.fileio import LocalBackend, register_backend
from mmengine.hooks import CheckpointHook
from mmengine.logging import print_log
from mmseg.registry import HOOKS

__all__ = [
    'ATOMIC_BACKEND', 'AtomicCheckpointHook', 'AtomicLocalBackend',
    'atomic_write_bytes', 'remove_orphaned_temporaries'
]

ATOMIC_BACKEND = 'dpt_mm_atomic_local'
# ``.<name>.<pid>.<8 hex>.tmp``; files of older versions lack the pid.
_TMP_PATTERN = re.compile(r'^\..+?(?:\.(\d+))?\.[0-9a-f]{8}\.tmp$')
_DISK_FULL = (errno.ENOSPC, getattr(errno, 'EDQUOT', errno.ENOSPC))


def _write_and_sync(file: Any, data: bytes) -> None:
    """Write ``data`` and push it to disk before the rename makes it live."""
    file.write(data)
    file.flush()
    os.fsync(file.fileno())


def _fsync_directory(directory: str) -> None:
    # Persists the rename itself; POSIX only, best effort elsewhere.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(data: bytes, filepath: str) -> None:
    """Replace ``filepath`` with ``data`` so readers never see a partial file.

    The data goes to a hidden temporary file next to ``filepath`` (same
    filesystem, so the final ``os.replace`` is atomic), is fsynced, and is
    then renamed over ``filepath``. On any error the temporary file is
    removed and ``filepath`` keeps its previous content.

    Args:
        data (bytes): The complete new content.
        filepath (str): Destination; missing parent directories are created.
    """
    directory = osp.dirname(osp.abspath(filepath))
    os.makedirs(directory, exist_ok=True)
    # The pid tells the clean-up at the next start whose file it is.
    tmp_path = osp.join(
        directory, f'.{osp.basename(filepath)}.{os.getpid()}.'
        f'{uuid.uuid4().hex[:8]}.tmp')
    try:
        # 'xb' (not mkstemp) so the file gets the usual umask permissions.
        with open(tmp_path, 'xb') as file:
            _write_and_sync(file, data)
        os.replace(tmp_path, filepath)
    except BaseException as error:
        if osp.exists(tmp_path):
            os.remove(tmp_path)
        if isinstance(error, OSError) and error.errno in _DISK_FULL:
            raise _disk_full_error(error, filepath, len(data)) from error
        raise
    _fsync_directory(directory)


def _disk_full_error(error: OSError, filepath: str, size: int) -> OSError:
    """The full-disk error, naming the file and the space involved."""
    directory = osp.dirname(osp.abspath(filepath))
    try:
        free = f'{shutil.disk_usage(directory).free / 2**20:.1f} MiB'
    except OSError:
        free = 'unknown'
    return OSError(
        error.errno,
        f'no space left to write {filepath}: it needs {size / 2**20:.1f} '
        f'MiB, {free} are free in {directory} ({os.strerror(error.errno)}). '
        f'{osp.basename(filepath)} keeps its previous content and earlier '
        'checkpoints are untouched; free some space (or use another work '
        'dir) and resume.', filepath)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists, owned by someone else
        return True
    return True


def remove_orphaned_temporaries(directory: str) -> List[str]:
    """Delete the temporary files that killed atomic writes left behind.

    A file is removed when its writer process (the pid in its name) no
    longer runs, or when its name has no pid (older versions).

    Args:
        directory (str): Folder to clean (not recursive).

    Returns:
        list[str]: ``path (size)`` of each removed file.
    """
    removed = []
    if not osp.isdir(directory):
        return removed
    for name in sorted(os.listdir(directory)):
        match = _TMP_PATTERN.match(name)
        path = osp.join(directory, name)
        if match is None or not osp.isfile(path):
            continue
        if match.group(1) is not None and _pid_alive(int(match.group(1))):
            continue
        size = osp.getsize(path)
        os.remove(path)
        removed.append(f'{path} ({size / 2**20:.1f} MiB)')
    return removed


class AtomicLocalBackend(LocalBackend):
    """Local file backend whose writes replace files atomically.

    Registered in mmengine's file backends as ``'dpt_mm_atomic_local'``,
    selected with ``backend_args=dict(backend='dpt_mm_atomic_local')``.
    Reads, listing and removal are :class:`mmengine.fileio.LocalBackend`'s.
    """

    def put(self, obj: bytes, filepath: Union[str, os.PathLike]) -> None:
        """Atomically write bytes to ``filepath``.

        Args:
            obj (bytes): Data to be written.
            filepath (str | os.PathLike): Destination path.
        """
        atomic_write_bytes(obj, str(filepath))

    def put_text(self,
                 obj: str,
                 filepath: Union[str, os.PathLike],
                 encoding: str = 'utf-8') -> None:
        """Atomically write text to ``filepath``.

        Args:
            obj (str): Text to be written.
            filepath (str | os.PathLike): Destination path.
            encoding (str): Text encoding. Defaults to 'utf-8'.
        """
        atomic_write_bytes(obj.encode(encoding), str(filepath))


register_backend(ATOMIC_BACKEND, AtomicLocalBackend, force=True)


def _is_local(path: str) -> bool:
    return '://' not in path


def _divergence(runner) -> Optional[str]:
    """Why the current weights must not become a checkpoint, or None."""
    wrapper = getattr(runner, 'optim_wrapper', None)
    wrappers = getattr(wrapper, 'optim_wrappers', {wrapper: wrapper})
    skips = max((getattr(w, 'consecutive_skips', 0) or 0)
                for w in wrappers.values())
    if skips:
        return (f'the last {skips} optimizer step(s) were skipped for a '
                'non-finite loss or gradient')
    model = runner.model.module if hasattr(runner.model, 'module') \
        else runner.model
    params = [p.detach() for p in model.parameters()]
    if not params:
        return None
    # One host sync for all tensors, not one per tensor.
    finite = torch.stack([torch.isfinite(p).all() for p in params])
    if bool(finite.all()):
        return None
    names = [name for (name, _), ok in zip(model.named_parameters(),
                                            finite.tolist()) if not ok]
    shown = ', '.join(names[:5]) + (', ...' if len(names) > 5 else '')
    return f'{len(names)} weight tensors hold NaN/inf ({shown})'


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """``CheckpointHook`` whose saves survive being interrupted.

    For a local ``out_dir`` (the work dir by default) and no explicit
    ``backend_args`` / ``file_client_args``, checkpoints and
    ``last_checkpoint`` are replaced atomically and old checkpoints are
    pruned only once the new one and its pointer are on disk, so the latest
    checkpoint a resume finds is always complete. For a remote ``out_dir``
    or explicit backend arguments, checkpoints are written by that backend
    as mmengine does (not atomically); ``last_checkpoint`` (always in the
    local work dir) is still replaced atomically and pruning still waits.

    Not covered: ``save_best`` deletes the previous best file before saving
    the new one (mmengine's order, kept), so a crash at that moment loses
    the best checkpoint, though it never leaves a partial one.

    Args:
        **kwargs: Arguments of :class:`mmengine.hooks.CheckpointHook`.
    """

    def before_train(self, runner) -> None:
        """Select the atomic backend, then set up as ``CheckpointHook``.

        Args:
            runner (Runner): The runner of the training process.
        """
        out_dir = self.out_dir if self.out_dir is not None else \
            runner.work_dir
        if is_main_process():
            directories = {runner.work_dir}
            if _is_local(str(out_dir)):
                directories.add(str(out_dir))
            removed = [path for directory in sorted(directories)
                       for path in remove_orphaned_temporaries(directory)]
            if removed:
                print_log(
                    'AtomicCheckpointHook: removed temporary files left by '
                    'an interrupted save:\n' +
                    '\n'.join(f'  {path}' for path in removed),
                    logger='current', level=logging.WARNING)
        if (self.backend_args is None and self.file_client_args is None
                and _is_local(str(out_dir))):
            self.backend_args = dict(backend=ATOMIC_BACKEND)
        elif not (isinstance(self.backend_args, dict)
                  and self.backend_args.get('backend') == ATOMIC_BACKEND):
            print_log(
                'AtomicCheckpointHook: out_dir or backend arguments are not '
                'plain local, checkpoints are written the non-atomic way.',
                logger='current')
        super().before_train(runner)

    def _save_checkpoint(self, runner) -> None:
        """Save unless the run is diverging; then keep the last good one.

        Args:
            runner (Runner): The runner of the training process.
        """
        problem = _divergence(runner)
        if problem is None:
            super()._save_checkpoint(runner)
            return
        step = runner.epoch + 1 if self.by_epoch else runner.iter + 1
        kept = getattr(self, 'last_ckpt', None) or 'none saved yet'
        print_log(
            f'AtomicCheckpointHook: not saving the checkpoint of '
            f'{"epoch" if self.by_epoch else "iteration"} {step}: {problem}. '
            f'The last good checkpoint ({kept}) is kept.',
            logger='current', level=logging.WARNING)

    def _save_checkpoint_with_step(self, runner, step: int,
                                   meta: dict) -> None:
        """Save, then point ``last_checkpoint`` at it, then prune.

        Same bookkeeping as ``CheckpointHook._save_checkpoint_with_step``
        (mmengine 0.10.7), reordered so nothing is deleted or repointed
        before the new checkpoint is complete.

        Args:
            runner (Runner): The runner of the training process.
            step (int): Epoch or iteration number of this checkpoint.
            meta (dict): Meta information saved in the checkpoint.
        """
        expired = None
        if self.max_keep_ckpts > 0:
            # save_best may save twice for the same step; count it once.
            if len(self.keep_ckpt_ids) == 0 or \
                    self.keep_ckpt_ids[-1] != step:
                if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                    expired = self.keep_ckpt_ids.popleft()
                self.keep_ckpt_ids.append(step)
                # Saved inside the new checkpoint, so it must be updated
                # before the save even though the deletion comes after.
                runner.message_hub.update_info('keep_ckpt_ids',
                                               list(self.keep_ckpt_ids))

        ckpt_filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir,
                                                     ckpt_filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)

        runner.save_checkpoint(
            self.out_dir,
            ckpt_filename,
            self.file_client_args,
            save_optimizer=self.save_optimizer,
            save_param_scheduler=self.save_param_scheduler,
            meta=meta,
            by_epoch=self.by_epoch,
            backend_args=self.backend_args,
            **self.args)

        # Model parallel-like training should involve pulling sharded states
        # from all ranks, but skip the following procedure.
        if not is_main_process():
            return

        save_file = osp.join(runner.work_dir, 'last_checkpoint')
        atomic_write_bytes(str(self.last_ckpt).encode('utf-8'), save_file)

        if expired is not None:
            self._remove_checkpoint(expired)

    def _remove_checkpoint(self, step: int) -> None:
        path = self.file_backend.join_path(self.out_dir,
                                           self.filename_tmpl.format(step))
        if self.file_backend.isfile(path):
            self.file_backend.remove(path)
        elif self.file_backend.isdir(path):
            # checkpoints saved by deepspeed are directories
            self.file_backend.rmtree(path)

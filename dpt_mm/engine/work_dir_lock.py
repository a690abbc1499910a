"""One training run per work dir.

Two runs writing ``iter_N.pth`` into the same folder overwrite each other's
checkpoints and both exit 0. :class:`WorkDirLock` holds an exclusive
``fcntl.flock`` on ``<work_dir>/.dpt_mm_train.lock`` for the whole run; the
file names the holder (pid, host, start time, command) so that a second run
can say who is in the way. The kernel drops a ``flock`` when its process
dies, SIGKILL included, so a killed run never leaves the folder stuck: the
next run finds the old holder's record in an unlocked file, says so and
takes over. The file is emptied, not deleted, on release: deleting it would
let a waiting process lock the old inode while a newcomer locks a new one.

``flock`` is advisory and local to one machine: two hosts sharing a network
file system may not see each other's locks.
"""
import datetime
import json
import logging
import os
import os.path as osp
import socket
import sys
from typing import IO, Optional

from mmengine.logging import print_log

try:
    import fcntl
except ImportError:  # Windows: no flock, no lock (see WorkDirLock)
    fcntl = None

__all__ = ['LOCK_FILENAME', 'WorkDirLock', 'WorkDirLockedError']

LOCK_FILENAME = '.dpt_mm_train.lock'


class WorkDirLockedError(RuntimeError):
    """Another training run holds the work dir."""


def _describe(record: dict) -> str:
    return (f"pid {record.get('pid', '?')} on host "
            f"{record.get('host', '?')}, started {record.get('started', '?')}"
            f", command: {record.get('command', '?')}")


def _read_record(file: IO[str]) -> Optional[dict]:
    file.seek(0)
    text = file.read().strip()
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return {'command': text[:200]}


class WorkDirLock:
    """Exclusive lock of a work dir by one training process.

    Args:
        work_dir (str): The folder to lock; created if missing.

    Attributes:
        taken_over (dict | None): After :meth:`acquire`, the record of an
            earlier holder that died without releasing the lock.
    """

    def __init__(self, work_dir: str) -> None:
        self.work_dir = work_dir
        self.path = osp.join(work_dir, LOCK_FILENAME)
        self.taken_over: Optional[dict] = None
        self._file: Optional[IO[str]] = None

    def acquire(self) -> None:
        """Take the lock or raise at once, naming the run that holds it.

        Raises:
            WorkDirLockedError: Another live process holds the lock.
        """
        if fcntl is None or self._file is not None:
            return
        os.makedirs(self.work_dir, exist_ok=True)
        file = open(self.path, 'a+')
        try:
            fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = _read_record(file) or {}
            file.close()
            raise WorkDirLockedError(
                f'work dir {self.work_dir} is in use by another training run '
                f'({_describe(holder)}). Two runs in one work dir overwrite '
                'each other\'s checkpoints: give this one another '
                '--work-dir, or wait until that run ends (its lock '
                f'{self.path} goes with its process, even if killed).'
            ) from None
        self.taken_over = _read_record(file)
        if self.taken_over is not None:
            print_log(
                f'{self.path}: took over the lock of an earlier run that '
                f'ended without releasing it ({_describe(self.taken_over)}).',
                logger='current', level=logging.WARNING)
        record = dict(
            pid=os.getpid(),
            host=socket.gethostname(),
            started=datetime.datetime.now().isoformat(timespec='seconds'),
            command=' '.join([sys.executable, *sys.argv]))
        file.seek(0)
        file.truncate()
        file.write(json.dumps(record))
        file.flush()
        self._file = file

    def release(self) -> None:
        """Empty the lock file and unlock it; a no-op when not held."""
        if self._file is None:
            return
        file, self._file = self._file, None
        try:
            file.seek(0)
            file.truncate()
            file.flush()
        finally:
            # Closing the last descriptor drops the flock.
            file.close()

    def __enter__(self) -> 'WorkDirLock':
        self.acquire()
        return self

    def __exit__(self, *exc_info) -> None:
        self.release()

"""One training run per work dir (issue #16.2).

A second run in a locked work dir stops before its first iteration, naming
the run that holds it; a SIGKILLed holder leaves nothing stuck.
"""
import json
import os
import os.path as osp
import signal

import pytest

import dpt_mm  # noqa: F401
from dpt_mm.engine import LOCK_FILENAME, WorkDirLock, WorkDirLockedError
from test_checkpoint_strictness import make_runner


def test_second_training_in_a_work_dir_stops_at_once(tmp_path):
    with WorkDirLock(str(tmp_path)):
        runner = make_runner(tmp_path)
        with pytest.raises(WorkDirLockedError) as info:
            runner.train()
    message = str(info.value)
    assert f'pid {os.getpid()}' in message and str(tmp_path) in message
    assert 'command:' in message and '--work-dir' in message
    # Not a single iteration, so no checkpoint.
    assert not [f for f in os.listdir(tmp_path) if f.endswith('.pth')]


def test_lock_is_released_when_training_ends(tmp_path):
    make_runner(tmp_path).train()
    assert osp.isfile(tmp_path / 'iter_2.pth')
    assert (tmp_path / LOCK_FILENAME).read_text() == ''
    with WorkDirLock(str(tmp_path)):  # free again
        pass


def test_lock_names_its_holder_while_held(tmp_path):
    with WorkDirLock(str(tmp_path)):
        record = json.loads((tmp_path / LOCK_FILENAME).read_text())
        assert record['pid'] == os.getpid()
        assert {'host', 'started', 'command'} <= set(record)
        with pytest.raises(WorkDirLockedError):
            WorkDirLock(str(tmp_path)).acquire()


def test_sigkilled_holder_does_not_leave_the_work_dir_stuck(tmp_path):
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: take the lock, report, wait to be killed
        try:
            os.close(read_end)
            held = WorkDirLock(str(tmp_path))  # referenced: kept open
            held.acquire()
            os.write(write_end, b'locked')
            signal.pause()
        finally:
            os._exit(1)
    os.close(write_end)
    try:
        assert os.read(read_end, 16) == b'locked'
        with pytest.raises(WorkDirLockedError, match=f'pid {pid} '):
            WorkDirLock(str(tmp_path)).acquire()
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(read_end)
    lock = WorkDirLock(str(tmp_path))
    lock.acquire()  # the kernel dropped the dead holder's flock
    try:
        assert lock.taken_over['pid'] == pid
        record = json.loads((tmp_path / LOCK_FILENAME).read_text())
        assert record['pid'] == os.getpid()
    finally:
        lock.release()

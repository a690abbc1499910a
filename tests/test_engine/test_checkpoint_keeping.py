"""The last good checkpoint survives a diverging run, a full disk and a
killed save (issue #16 items 4, 5 and 6)."""
import errno
import os
import os.path as osp
import signal
import uuid

import pytest
import torch
import torch.nn as nn
from mmengine.model import BaseModel
from mmengine.runner import Runner
from mmengine.structures import BaseDataElement
from torch.utils.data import Dataset

import dpt_mm  # noqa: F401
from dpt_mm.engine.hooks import (atomic_checkpoint_hook, atomic_write_bytes,
                                 remove_orphaned_temporaries)
from dpt_mm.utils import load_checkpoint_file
from test_checkpoint_safety import last_checkpoint, make_runner


class RegressionModel(BaseModel):

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(2, 1)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        out = self.linear(torch.stack(inputs)).squeeze(1)
        if mode == 'loss':
            target = torch.stack([s.target for s in data_samples])
            return dict(loss=(out - target).pow(2).mean())
        return out


class DivergingDataset(Dataset):
    """Finite targets for the first two batches of two, NaN after."""

    def __len__(self) -> int:
        return 8

    def __getitem__(self, index: int) -> dict:
        target = float('nan') if index >= 4 else float(index)
        sample = BaseDataElement(
            metainfo=dict(img_path=f'sample_{index}.png'),
            target=torch.tensor(target))
        return dict(inputs=torch.tensor([float(index), 1.]),
                    data_samples=sample)


def diverging_runner(work_dir, optim_wrapper: dict) -> Runner:
    return Runner(
        model=RegressionModel(),
        work_dir=str(work_dir),
        experiment_name=f'diverge_{uuid.uuid4().hex[:8]}',
        train_dataloader=dict(
            dataset=DivergingDataset(),
            sampler=dict(type='DefaultSampler', shuffle=False),
            batch_size=2, num_workers=0),
        train_cfg=dict(by_epoch=False, max_iters=4),
        optim_wrapper=dict(
            optimizer=dict(type='SGD', lr=0.01), **optim_wrapper),
        default_hooks=dict(checkpoint=dict(
            type='AtomicCheckpointHook', by_epoch=False, interval=1,
            max_keep_ckpts=1)),
        default_scope='mmseg')


@pytest.mark.parametrize('optim_wrapper', [
    dict(type='NonFiniteGuardOptimWrapper', max_consecutive_skips=None),
    dict(type='OptimWrapper'),  # NaN reaches the weights
])
def test_diverging_run_keeps_the_last_good_checkpoint(tmp_path,
                                                      optim_wrapper):
    # Iterations 1-2 are good; 3-4 have NaN losses. With max_keep_ckpts=1,
    # saving iterations 3 and 4 would have pruned iter_2.
    diverging_runner(tmp_path, optim_wrapper).train()
    good = str(tmp_path / 'iter_2.pth')
    assert last_checkpoint(tmp_path) == good
    assert sorted(f for f in os.listdir(tmp_path) if f.endswith('.pth')) \
        == ['iter_2.pth']
    weights = load_checkpoint_file(good)['state_dict']['linear.weight']
    assert bool(torch.isfinite(weights).all())


def test_full_disk_names_the_file_and_keeps_the_last_checkpoint(
        tmp_path, monkeypatch):
    real_write = atomic_checkpoint_hook._write_and_sync
    writes = []

    def write(file, data):
        writes.append(file.name)
        if len(writes) == 3:  # the second checkpoint
            file.write(data[:len(data) // 2])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_write(file, data)

    monkeypatch.setattr(atomic_checkpoint_hook, '_write_and_sync', write)
    runner = make_runner(tmp_path, max_iters=2, max_keep_ckpts=1)
    with pytest.raises(OSError) as info:
        runner.train()
    error = info.value
    assert error.errno == errno.ENOSPC
    assert error.filename == str(tmp_path / 'iter_2.pth')
    message = str(error)
    assert str(tmp_path / 'iter_2.pth') in message
    assert 'MiB' in message and 'free' in message
    assert last_checkpoint(tmp_path) == str(tmp_path / 'iter_1.pth')
    assert load_checkpoint_file(str(tmp_path / 'iter_1.pth'))
    assert not osp.exists(tmp_path / 'iter_2.pth')
    assert not [f for f in os.listdir(tmp_path) if f.endswith('.tmp')]


def killed_mid_save(path: str) -> None:
    """Fork a process that dies (SIGKILL) halfway through writing ``path``."""
    pid = os.fork()
    if pid == 0:
        try:
            def die(file, data):
                file.write(data[:len(data) // 2])
                file.flush()
                os.kill(os.getpid(), signal.SIGKILL)

            atomic_checkpoint_hook._write_and_sync = die
            atomic_write_bytes(b'x' * 4096, path)
        finally:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status)


def test_orphaned_temporaries_are_removed_at_the_next_start(tmp_path):
    killed_mid_save(str(tmp_path / 'iter_1.pth'))
    (orphan, ) = [f for f in os.listdir(tmp_path) if f.endswith('.tmp')]
    assert orphan.startswith('.iter_1.pth.')
    old_format = tmp_path / '.iter_7.pth.0123abcd.tmp'  # no pid in name
    old_format.write_bytes(b'x')
    # A live writer's file (this process) and a file of someone else stay.
    live = tmp_path / f'.iter_9.pth.{os.getpid()}.0123abcd.tmp'
    live.write_bytes(b'x')
    other = tmp_path / '.notes.tmp'
    other.write_bytes(b'x')

    make_runner(tmp_path, max_iters=1).train()
    left = sorted(f for f in os.listdir(tmp_path) if f.endswith('.tmp'))
    assert left == sorted([live.name, other.name])
    assert last_checkpoint(tmp_path) == str(tmp_path / 'iter_1.pth')


def test_remove_orphaned_temporaries_reports_what_it_removed(tmp_path):
    killed_mid_save(str(tmp_path / 'last_checkpoint'))
    (removed, ) = remove_orphaned_temporaries(str(tmp_path))
    assert '.last_checkpoint.' in removed and 'MiB' in removed
    assert os.listdir(tmp_path) == []

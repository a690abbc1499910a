"""Checkpoints: safe loading (no code from files) and atomic saving."""
import os
import os.path as osp
import pickle
import uuid
from pathlib import Path

import pytest
import torch
import torch.nn as nn
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from mmengine.runner import Runner, load_checkpoint
from mmengine.runner.checkpoint import CheckpointLoader
from torch.utils.data import Dataset

import dpt_mm  # noqa: F401  (registers the loader and hooks)
from dpt_mm.engine.hooks import atomic_checkpoint_hook
from dpt_mm.utils import (TRUST_ENV_VAR, UnsafeCheckpointError,
                          load_checkpoint_file)
from dpt_mm.utils.checkpoint import (CorruptCheckpointError,
                                     load_from_safe_http, load_from_safe_local)


class ToyModel(BaseModel):

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(2, 1)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        out = self.linear(torch.stack(inputs))
        if mode == 'loss':
            return dict(loss=out.pow(2).mean())
        return out


class ToyDataset(Dataset):
    metainfo = dict(classes=('a', 'b'))

    def __len__(self) -> int:
        return 4

    def __getitem__(self, index: int) -> dict:
        return dict(inputs=torch.full((2, ), float(index)))


class IterRecorder(Hook):
    """Records the iteration each training step starts at."""

    def __init__(self) -> None:
        self.iters = []

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        self.iters.append(runner.iter)


def make_runner(work_dir, max_iters=2, resume=False, hooks=(), **ckpt_cfg):
    ckpt_cfg = dict(
        type='AtomicCheckpointHook', by_epoch=False, interval=1, **ckpt_cfg)
    return Runner(
        model=ToyModel(),
        work_dir=str(work_dir),
        experiment_name=f'ckpt_{uuid.uuid4().hex[:8]}',
        train_dataloader=dict(
            dataset=ToyDataset(),
            sampler=dict(type='InfiniteSampler', shuffle=False),
            batch_size=2,
            num_workers=0),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9)),
        param_scheduler=dict(
            type='PolyLR', by_epoch=False, eta_min=0., begin=0, end=10),
        default_hooks=dict(checkpoint=ckpt_cfg),
        custom_hooks=list(hooks),
        resume=resume,
        default_scope='mmseg',
        randomness=dict(seed=0))


def last_checkpoint(work_dir) -> str:
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        return f.read()


class RunsShell:
    """Unpickling runs a shell command: the classic malicious .pth."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}', ))


class RunsPython:
    """Unpickling runs Python through a non-blocklisted builtin."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (exec, (f'open({self.marker!r}, "w").close()', ))


class ReachesBuiltins:
    """Walks from the allowlisted ``getattr`` to the builtins module."""

    def __reduce__(self):
        return (getattr, (getattr, '__self__'))


class Note:
    """A harmless object that is simply not on the allowlist."""

    def __init__(self, text: str) -> None:
        self.text = text


@pytest.fixture(autouse=True)
def no_trust_env(monkeypatch):
    monkeypatch.delenv(TRUST_ENV_VAR, raising=False)


def save_with_payload(path, payload) -> str:
    torch.save(
        dict(
            meta=dict(iter=2, epoch=0),
            state_dict=ToyModel().state_dict(),
            payload=payload), str(path))
    return str(path)


def test_runner_checkpoints_resume_without_trust(tmp_path):
    make_runner(tmp_path, max_iters=2).train()
    ckpt = last_checkpoint(tmp_path)
    assert ckpt == str(tmp_path / 'iter_2.pth')
    # Plain weights_only refuses mmengine's own objects...
    with pytest.raises(pickle.UnpicklingError):
        torch.load(ckpt, weights_only=True)
    # ...and the loader mmengine dispatches to is ours.
    assert CheckpointLoader._get_checkpoint_loader(ckpt) is \
        load_from_safe_local

    recorder = IterRecorder()
    runner = make_runner(
        tmp_path, max_iters=3, resume=True, hooks=[recorder])
    runner.train()
    assert recorder.iters == [2]  # continued, not restarted
    assert runner.iter == 3
    loss_history = runner.message_hub.get_scalar('train/loss')
    assert len(loss_history.data[0]) == 3  # HistoryBuffer came back


@pytest.mark.parametrize('payload_type, global_name', [
    (RunsShell, 'posix.system' if os.name == 'posix' else 'nt.system'),
    (RunsPython, 'builtins.exec'),
])
def test_code_running_checkpoint_is_refused_everywhere(
        tmp_path, payload_type, global_name):
    marker = str(tmp_path / 'pwned')
    path = save_with_payload(tmp_path / 'evil.pth', payload_type(marker))
    expected = (rf'"{path}".*"{global_name}".*trust=True.*'
                rf'{TRUST_ENV_VAR}=1')

    with pytest.raises(UnsafeCheckpointError, match=expected):
        load_checkpoint_file(path)
    with pytest.raises(UnsafeCheckpointError, match=expected):
        load_checkpoint(ToyModel(), path)  # load_from and Pretrained init

    # runner.resume, through the last_checkpoint pointer.
    work_dir = tmp_path / 'work'
    work_dir.mkdir()
    (work_dir / 'last_checkpoint').write_text(path)
    with pytest.raises(UnsafeCheckpointError, match=expected):
        make_runner(work_dir, resume=True).train()

    assert not osp.exists(marker)


def test_downloaded_checkpoint_is_loaded_safely(tmp_path):
    # torch.hub's downloader also reads file:// URLs: no network needed.
    marker = str(tmp_path / 'pwned')
    evil = save_with_payload(tmp_path / 'evil.pth', RunsPython(marker))
    good = tmp_path / 'good.pth'
    torch.save(dict(state_dict=ToyModel().state_dict()), str(good))
    hub = str(tmp_path / 'hub')

    with pytest.raises(UnsafeCheckpointError, match='builtins.exec'):
        load_from_safe_http(Path(evil).as_uri(), model_dir=hub)
    assert not osp.exists(marker)
    loaded = load_from_safe_http(good.as_uri(), model_dir=hub)
    assert 'linear.weight' in loaded['state_dict']


def test_getattr_is_limited_to_history_buffer(tmp_path):
    path = save_with_payload(tmp_path / 'gadget.pth', ReachesBuiltins())
    with pytest.raises(UnsafeCheckpointError, match=r'builtins\.getattr'):
        load_checkpoint_file(path)


def test_trusted_file_loads_non_allowlisted_object(tmp_path, monkeypatch):
    path = save_with_payload(tmp_path / 'note.pth', Note('kept'))
    with pytest.raises(UnsafeCheckpointError, match=r'Note'):
        load_checkpoint_file(path)

    assert load_checkpoint_file(path, trust=True)['payload'].text == 'kept'
    monkeypatch.setenv(TRUST_ENV_VAR, '1')
    assert load_checkpoint_file(path)['payload'].text == 'kept'


def crash_on_write(monkeypatch, crash_at: int):
    """Make the crash_at-th atomic write die after half of its bytes.

    Returns the real writer, to restore once the crash happened.
    """
    real_write = atomic_checkpoint_hook._write_and_sync
    calls = []

    def write(file, data: bytes) -> None:
        calls.append(len(data))
        if len(calls) == crash_at:
            file.write(data[:len(data) // 2])
            file.flush()
            raise OSError('simulated crash mid-write')
        real_write(file, data)

    monkeypatch.setattr(atomic_checkpoint_hook, '_write_and_sync', write)
    return real_write


# Writes per save: the checkpoint, then last_checkpoint. Crash in the
# second save's checkpoint (3) or pointer (4).
@pytest.mark.parametrize('crash_at', [3, 4])
def test_crash_mid_save_keeps_previous_checkpoint(tmp_path, monkeypatch,
                                                  crash_at):
    real_write = crash_on_write(monkeypatch, crash_at)
    # max_keep_ckpts=1: mmengine's hook would delete iter_1 before saving.
    runner = make_runner(tmp_path, max_iters=2, max_keep_ckpts=1)
    with pytest.raises(OSError, match='simulated crash'):
        runner.train()
    monkeypatch.setattr(atomic_checkpoint_hook, '_write_and_sync', real_write)

    first = str(tmp_path / 'iter_1.pth')
    assert last_checkpoint(tmp_path) == first
    assert load_checkpoint_file(first)['meta']['iter'] == 1
    assert not [f for f in os.listdir(tmp_path) if f.endswith('.tmp')]
    if crash_at == 3:
        assert not osp.exists(tmp_path / 'iter_2.pth')

    recorder = IterRecorder()
    make_runner(tmp_path, max_iters=2, resume=True, hooks=[recorder]).train()
    assert recorder.iters == [1]


# One safe loader everywhere, with errors that name the file (#16.12).
DPT2MM = osp.join(osp.dirname(__file__), '..', '..', 'tools',
                  'model_converters', 'dpt2mm.py')


def load_dpt2mm():
    import importlib.util
    spec = importlib.util.spec_from_file_location('dpt2mm_cli', DPT2MM)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def assert_no_weights_only_advice(error: BaseException) -> None:
    chain = []
    while error is not None:
        chain.append(str(error))
        error = error.__cause__ or (
            None if error.__suppress_context__ else error.__context__)
    assert 'weights_only' not in '\n'.join(chain)


def test_dpt2mm_reads_an_mmengine_checkpoint_with_the_safe_loader(
        tmp_path, capsys):
    make_runner(tmp_path / 'work', max_iters=1).train()
    ckpt = str(tmp_path / 'work' / 'iter_1.pth')
    # mmengine objects (HistoryBuffer) in it: torch's weights_only refuses.
    with pytest.raises(pickle.UnpicklingError):
        torch.load(ckpt, weights_only=True)
    dst = tmp_path / 'out.pth'
    assert load_dpt2mm().main(
        [ckpt, str(dst), '--variant', 'dpt_hybrid_nyu']) == 1
    err = capsys.readouterr().err
    # ToyModel's keys are neither the release's nor dpt_mm's: listed.
    assert 'no known counterpart' in err and 'linear.weight' in err
    assert 'Unpickl' not in err and 'weights_only' not in err
    assert not dst.exists()


def test_dpt2mm_names_a_dpt_mm_checkpoint_as_already_converted(
        tmp_path, capsys):
    path = str(tmp_path / 'mm.pth')
    torch.save(dict(meta=dict(), state_dict={
        'backbone.cls_token': torch.zeros(1),
        'decode_head.conv.weight': torch.zeros(1)}), path)
    assert load_dpt2mm().main(
        [path, str(tmp_path / 'out.pth'), '--variant', 'dpt_hybrid_nyu']) == 1
    assert 'already a dpt_mm (mmengine) checkpoint' in \
        capsys.readouterr().err


@pytest.mark.parametrize('legacy', [False, True])
def test_truncated_checkpoint_is_named(tmp_path, legacy):
    good = tmp_path / 'good.pth'
    torch.save(ToyModel().state_dict(), str(good),
               _use_new_zipfile_serialization=not legacy)
    data = good.read_bytes()
    path = tmp_path / 'cut.pth'
    path.write_bytes(data[:len(data) // 2])
    expected = rf'"{path}" \({len(data) // 2} bytes\): it is truncated'
    with pytest.raises(CorruptCheckpointError, match=expected) as info:
        load_checkpoint_file(str(path))
    assert_no_weights_only_advice(info.value)
    with pytest.raises(CorruptCheckpointError, match=expected):
        load_checkpoint(ToyModel(), str(path))  # load_from, Pretrained
    # An empty file (a copy that never started) too.
    (tmp_path / 'empty.pth').write_bytes(b'')
    with pytest.raises(CorruptCheckpointError, match='0 bytes'):
        load_checkpoint_file(str(tmp_path / 'empty.pth'))


@pytest.mark.parametrize('protocol', [0, 2, pickle.HIGHEST_PROTOCOL])
def test_raw_pickle_is_refused_naming_its_type(tmp_path, protocol):
    marker = str(tmp_path / 'pwned')
    path = str(tmp_path / 'raw.pkl')
    with open(path, 'wb') as file:
        pickle.dump(dict(note=Note('x'), run=RunsPython(marker)), file,
                    protocol=protocol)
    with pytest.raises(UnsafeCheckpointError) as info:
        load_checkpoint_file(path)
    message = str(info.value)
    assert path in message
    assert f'{__name__}.Note' in message or 'builtins.exec' in message
    assert_no_weights_only_advice(info.value)
    assert not osp.exists(marker)


def test_raw_pickle_of_plain_data_is_refused_as_a_raw_pickle(tmp_path):
    path = str(tmp_path / 'plain.pkl')
    with open(path, 'wb') as file:
        pickle.dump(dict(a=1), file, protocol=pickle.HIGHEST_PROTOCOL)
    with pytest.raises(UnsafeCheckpointError,
                       match='raw pickle .*re-save it with torch.save'):
        load_checkpoint_file(path)

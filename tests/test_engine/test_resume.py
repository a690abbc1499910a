"""A run killed mid-training resumes exactly where it stopped.

``tools/train.py`` runs as a subprocess on a shrunk toy config. An
uninterrupted run records its per-iteration losses; a second run SIGKILLs
itself right after the checkpoint of iteration 4 is on disk (a hook in a
module on ``PYTHONPATH``, so the kill point is deterministic), then
``tools/train.py CONFIG --resume`` continues in the same work dir. The
losses, learning rates and iteration numbers of iterations 5 and 6 must be
those of the uninterrupted run: same model, optimiser and scheduler state,
same data order and augmentation, same random state (dropout included:
the toy segmentation heads have dropout, so this needs ``RNGStateHook``,
which the test adds to ``custom_hooks`` if the config lacks it). The runs
validate after iteration 4, right after the checkpoint the resume starts
from: the killed run never gets there, so validation must not shift the
training random state either.
"""
import json
import os
import os.path as osp
import random
import signal
import subprocess
import sys

import numpy as np
import pytest
import torch
from mmengine.config import Config

from dpt_mm.engine.hooks import RNG_STATES_KEY, get_rng_states, set_rng_states
from dpt_mm.utils import load_checkpoint_file
from toy_utils import make_toy_root, shrink_config

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '../..'))
TRAIN = osp.join(ROOT, 'tools', 'train.py')
MAX_ITERS = 6
KILL_AFTER = 4  # a checkpoint iteration: the resume starts from it
CKPT_INTERVAL = 2

KILL_HOOK = '''
import os
import signal

from mmengine.hooks import Hook
from mmseg.registry import HOOKS


@HOOKS.register_module()
class SigkillAfterIterHook(Hook):
    """Kill the process (no clean-up at all) after iteration ``kill_at``."""

    priority = 'LOWEST'  # after the checkpoint hook has saved

    def __init__(self, kill_at):
        self.kill_at = kill_at

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        if runner.iter + 1 == self.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
'''


@pytest.fixture(scope='module')
def toy_root(tmp_path_factory):
    return make_toy_root(tmp_path_factory)


def _write_config(name, toy_root, tmp_path):
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'toy', f'{name}.py'))
    cfg = shrink_config(cfg, toy_root, str(tmp_path), max_iters=MAX_ITERS)
    cfg.pop('work_dir')  # given on the command line
    cfg.randomness = dict(seed=0, deterministic=True)
    # A changing lr, so that a scheduler that does not resume shows.
    cfg.param_scheduler = [
        dict(type='PolyLR', eta_min=1e-5, power=0.9, begin=0,
             end=MAX_ITERS, by_epoch=False)
    ]
    cfg.default_hooks.checkpoint.interval = CKPT_INTERVAL
    cfg.default_hooks.checkpoint.max_keep_ckpts = 2
    # Validation right after the checkpoint the resume starts from: the
    # uninterrupted run validates there, the resumed one does not.
    cfg.train_cfg.val_interval = KILL_AFTER
    # Until default_runtime.py has it.
    if not any(h.get('type') == 'RNGStateHook' for h in cfg.custom_hooks):
        cfg.custom_hooks.append(dict(type='RNGStateHook'))
    # Per-iteration values in the log, not running means.
    cfg.log_processor = dict(by_epoch=False, window_size=1)
    path = str(tmp_path / f'{name}.py')
    cfg.dump(path)

    (tmp_path / 'resume_test_hooks.py').write_text(KILL_HOOK)
    kill_path = str(tmp_path / f'{name}_kill.py')
    with open(kill_path, 'w') as file:
        file.write(
            f"_base_ = ['./{name}.py']\n"
            "custom_imports = dict(imports=['dpt_mm', 'resume_test_hooks'], "
            'allow_failed_imports=False)\n'
            f'custom_hooks = {cfg.custom_hooks!r} + '
            f"[dict(type='SigkillAfterIterHook', kill_at={KILL_AFTER})]\n")
    return path, kill_path


def _train(config, work_dir, tmp_path, *extra):
    env = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1',
               PYTHONPATH=os.pathsep.join(
                   [str(tmp_path), ROOT, os.environ.get('PYTHONPATH', '')]))
    return subprocess.run(
        [sys.executable, TRAIN, config, '--work-dir', work_dir, *extra],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, timeout=300)


def _run_dirs(work_dir):
    return {d for d in os.listdir(work_dir)
            if osp.isfile(osp.join(work_dir, d, 'vis_data', 'scalars.json'))}


def _scalars(work_dir, run_dir):
    with open(osp.join(work_dir, run_dir, 'vis_data', 'scalars.json')) as f:
        records = [json.loads(line) for line in f if line.strip()]
    return {r['iter']: r for r in records if 'loss' in r}


@pytest.mark.parametrize('name', ['dpt_toy_depth', 'dpt_toy_seg'])
def test_sigkilled_run_resumes_with_identical_losses(name, toy_root,
                                                     tmp_path):
    config, kill_config = _write_config(name, toy_root, tmp_path)

    full_dir = str(tmp_path / 'full')
    result = _train(config, full_dir, tmp_path)
    assert result.returncode == 0, result.stdout[-3000:]
    (full_run, ) = _run_dirs(full_dir)
    full = _scalars(full_dir, full_run)
    assert sorted(full) == list(range(1, MAX_ITERS + 1))

    work_dir = str(tmp_path / 'interrupted')
    result = _train(kill_config, work_dir, tmp_path)
    assert result.returncode == -signal.SIGKILL, result.stdout[-3000:]
    (killed_run, ) = _run_dirs(work_dir)
    killed = _scalars(work_dir, killed_run)
    assert sorted(killed) == list(range(1, KILL_AFTER + 1))
    with open(osp.join(work_dir, 'last_checkpoint')) as file:
        last = file.read().strip()
    assert osp.basename(last) == f'iter_{KILL_AFTER}.pth'
    checkpoint = load_checkpoint_file(last)  # complete, loadable, safe
    assert checkpoint['meta']['iter'] == KILL_AFTER
    assert {'state_dict', 'optimizer', 'param_schedulers', 'message_hub',
            RNG_STATES_KEY} <= set(checkpoint)

    result = _train(config, work_dir, tmp_path, '--resume')
    assert result.returncode == 0, result.stdout[-3000:]
    assert f'resumed epoch: 0, iter: {KILL_AFTER}' in result.stdout
    assert f'restored the random states of iteration {KILL_AFTER}' \
        in result.stdout
    (resumed_run, ) = _run_dirs(work_dir) - {killed_run}
    # A short console, a quiet resume; the log file keeps the dumps.
    assert 'resumed key' not in result.stdout
    assert 'System environment:' not in result.stdout
    assert 'INFO - Config:' not in result.stdout
    assert f'config {config} | work dir {work_dir} | model' in result.stdout
    with open(osp.join(work_dir, resumed_run, f'{resumed_run}.log')) as f:
        log = f.read()
    assert 'System environment:' in log and 'INFO - Config:' in log
    resumed = _scalars(work_dir, resumed_run)
    # The iteration counter continues: 5 and 6, not 1 and 2.
    assert sorted(resumed) == list(range(KILL_AFTER + 1, MAX_ITERS + 1))

    for it in range(1, KILL_AFTER + 1):
        assert killed[it]['loss'] == full[it]['loss'], it
    compared = []
    for it in range(KILL_AFTER + 1, MAX_ITERS + 1):
        keys = [k for k in full[it] if k == 'lr' or 'loss' in k]
        assert len(keys) >= 3 and set(keys) <= set(resumed[it]), keys
        compared += [(it, k, full[it][k], resumed[it][k]) for k in keys]
    print('\n(iter, key, uninterrupted, resumed):')
    print('\n'.join(map(str, compared)))
    for it, key, expected, got in compared:
        # Exact in practice (same machine, one thread, deterministic).
        assert got == pytest.approx(expected, rel=0, abs=1e-6), (it, key)

    # The weights at the end are those of the uninterrupted run, too.
    expected = load_checkpoint_file(
        osp.join(full_dir, f'iter_{MAX_ITERS}.pth'))['state_dict']
    got = load_checkpoint_file(
        osp.join(work_dir, f'iter_{MAX_ITERS}.pth'))['state_dict']
    assert expected.keys() == got.keys()
    max_diff = max(
        float((expected[k].double() - got[k].double()).abs().max())
        if expected[k].numel() else 0.0 for k in expected)
    print(f'max weight difference after {MAX_ITERS} iterations: {max_diff}')
    assert max_diff <= 1e-6


def test_rng_states_survive_safe_checkpoint_loading(tmp_path):
    """What RNGStateHook stores loads under the weights_only allowlist."""
    np.random.randn()  # a cached Gaussian in numpy's state, too
    path = str(tmp_path / 'rng.pth')
    torch.save({RNG_STATES_KEY: get_rng_states()}, path)
    expected = (random.random(), np.random.randn(), torch.rand(3).tolist())
    set_rng_states(load_checkpoint_file(path)[RNG_STATES_KEY])
    assert (random.random(), np.random.randn(),
            torch.rand(3).tolist()) == expected

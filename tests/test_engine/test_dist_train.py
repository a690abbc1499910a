"""``tools/dist_train.sh CONFIG 2`` trains with 2 processes on CPU (gloo).

The shrunk toy segmentation config (plain BN: ``SyncBatchNorm`` refuses CPU
tensors) trains for a few iterations under torchrun. A probe hook in each
process records its rank, the world size, the backend and a checksum of
the weights after training: two processes, one process group, weights kept
identical by DistributedDataParallel.
"""
import json
import math
import os
import os.path as osp
import re
import socket
import subprocess
import sys

import pytest
import torch.distributed as torch_dist
from mmengine.config import Config

from dpt_mm.engine.hooks import RNG_STATES_KEY
from dpt_mm.utils import load_checkpoint_file
from toy_utils import make_toy_root, shrink_config

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '../..'))
DIST_TRAIN = osp.join(ROOT, 'tools', 'dist_train.sh')
MAX_ITERS = 3
WORLD_SIZE = 2

PROBE_HOOK = '''
import json
import os.path as osp

import torch.distributed as dist
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmseg.registry import HOOKS


@HOOKS.register_module()
class DistProbeHook(Hook):
    """Write what this process saw of the process group after training."""

    def after_train(self, runner):
        model = runner.model
        wrapper = type(model).__name__
        if is_model_wrapper(model):
            model = model.module
        checksum = sum(float(p.detach().double().sum())
                       for p in model.parameters())
        info = dict(rank=dist.get_rank(), world_size=dist.get_world_size(),
                    backend=dist.get_backend(), wrapper=wrapper,
                    checksum=checksum)
        path = osp.join(runner.work_dir, f'probe_rank{info["rank"]}.json')
        with open(path, 'w') as file:
            json.dump(info, file)
'''

pytestmark = pytest.mark.skipif(
    not (torch_dist.is_available() and torch_dist.is_gloo_available()),
    reason='torch.distributed with the gloo backend is not available in '
    'this torch build')


@pytest.fixture(scope='module')
def toy_root(tmp_path_factory):
    return make_toy_root(tmp_path_factory)


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def test_dist_train_two_cpu_processes(toy_root, tmp_path):
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'toy', 'dpt_toy_seg.py'))
    cfg = shrink_config(cfg, toy_root, str(tmp_path), max_iters=MAX_ITERS)
    cfg.pop('work_dir')
    cfg.custom_imports = dict(
        imports=['dpt_mm', 'dist_probe_hook'], allow_failed_imports=False)
    cfg.custom_hooks.append(dict(type='DistProbeHook'))
    if not any(h.get('type') == 'RNGStateHook' for h in cfg.custom_hooks):
        cfg.custom_hooks.append(dict(type='RNGStateHook'))
    config = str(tmp_path / 'toy_seg_dist.py')
    cfg.dump(config)
    (tmp_path / 'dist_probe_hook.py').write_text(PROBE_HOOK)

    work_dir = str(tmp_path / 'work')
    env = dict(
        os.environ,
        PYTHON=sys.executable,
        PORT=str(_free_port()),
        OMP_NUM_THREADS='1',
        MKL_NUM_THREADS='1',
        PYTHONPATH=os.pathsep.join(
            [str(tmp_path), os.environ.get('PYTHONPATH', '')]))
    result = subprocess.run(
        ['bash', DIST_TRAIN, config, str(WORLD_SIZE), '--work-dir', work_dir],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-5000:]

    (run_dir, ) = [d for d in os.listdir(work_dir)
                   if osp.isdir(osp.join(work_dir, d))]
    with open(osp.join(work_dir, run_dir, f'{run_dir}.log')) as file:
        log = file.read()
    assert 'Distributed training: True' in log
    # mmengine logs the world size as the "GPU number", CPU or not.
    assert f'GPU number: {WORLD_SIZE}' in log
    assert "dist_cfg: {'backend': 'gloo'}" in log
    iters = re.findall(
        rf'Iter\(train\) \[\s*(\d+)/{MAX_ITERS}\].*?\bloss: (\S+)', log)
    assert [int(i) for i, _ in iters] == list(range(1, MAX_ITERS + 1)), log
    assert all(math.isfinite(float(loss)) for _, loss in iters), iters

    probes = []
    for rank in range(WORLD_SIZE):
        with open(osp.join(work_dir, f'probe_rank{rank}.json')) as file:
            probes.append(json.load(file))
    for rank, probe in enumerate(probes):
        assert probe['rank'] == rank
        assert probe['world_size'] == WORLD_SIZE
        assert probe['backend'] == 'gloo'
        assert probe['wrapper'] == 'MMDistributedDataParallel'
    # Gradients were all-reduced: both replicas hold the same weights.
    assert probes[0]['checksum'] == pytest.approx(probes[1]['checksum'],
                                                  rel=1e-6)

    with open(osp.join(work_dir, 'last_checkpoint')) as file:
        last = file.read().strip()
    assert osp.basename(last) == f'iter_{MAX_ITERS}.pth'
    checkpoint = load_checkpoint_file(last)
    assert checkpoint['meta']['iter'] == MAX_ITERS
    # The random states of both ranks, for an exact resume.
    rng = checkpoint[RNG_STATES_KEY]
    assert rng['world_size'] == WORLD_SIZE and len(rng['ranks']) == WORLD_SIZE

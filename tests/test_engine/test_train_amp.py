"""``tools/train.py --amp``: float16 AMP with a GPU, bfloat16 autocast on CPU.

``--amp`` switches the optimiser wrapper to mmengine's ``AmpOptimWrapper``
(or dpt_mm's ``NonFiniteGuardAmpOptimWrapper``) when an accelerator is
present. mmengine 0.10.7's wrapper asserts a GPU/NPU/MLU/MUSA device, so
without one ``--amp`` picks dpt_mm's ``NonFiniteGuardCPUAmpOptimWrapper``
(bfloat16 autocast, no loss scaler) and trains.
"""
import glob
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.device import (is_cuda_available, is_mlu_available,
                             is_musa_available, is_npu_available)
from mmengine.optim import build_optim_wrapper

from toy_utils import make_toy_root, shrink_config

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '../..'))
TRAIN = osp.join(ROOT, 'tools', 'train.py')


def _has_accelerator():
    return (is_cuda_available() or is_npu_available() or is_mlu_available()
            or is_musa_available())


def test_train_amp(tmp_path_factory, tmp_path):
    toy_root = make_toy_root(tmp_path_factory)
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'toy', 'dpt_toy_seg.py'))
    cfg = shrink_config(cfg, toy_root, str(tmp_path), max_iters=2)
    cfg.pop('work_dir')
    cfg.train_cfg.val_begin = 3  # no validation
    config = str(tmp_path / 'toy_seg.py')
    cfg.dump(config)
    env = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1')
    result = subprocess.run(
        [sys.executable, TRAIN, config, '--work-dir',
         str(tmp_path / 'work'), '--amp'],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:]
    wrapper = ('NonFiniteGuardAmpOptimWrapper' if _has_accelerator() else
               'NonFiniteGuardCPUAmpOptimWrapper')
    # The config dump goes to the run's log file (the console is short).
    (log_file, ) = glob.glob(str(tmp_path / 'work' / '*' / '*.log'))
    with open(log_file) as f:
        assert f"type='{wrapper}'" in f.read()
    assert 'Iter(train) [2/2]' in result.stdout
    assert 'loss: nan' not in result.stdout


def test_cpu_amp_wrapper_autocasts_and_updates_float32_weights():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(),
                                torch.nn.Linear(8, 1))
    before = [p.detach().clone() for p in model.parameters()]
    wrapper = build_optim_wrapper(model, dict(
        type='NonFiniteGuardCPUAmpOptimWrapper',
        optimizer=dict(type='SGD', lr=0.1), loss_scale='dynamic'))
    with wrapper.optim_context(model):
        out = model(torch.randn(3, 4))
    assert out.dtype == torch.bfloat16  # the forward ran in bf16
    wrapper.update_params(out.float().square().mean())
    for old, new in zip(before, model.parameters()):
        assert new.dtype == torch.float32
        assert not torch.equal(old, new)  # every parameter was updated
    with pytest.raises(ValueError, match='bfloat16 only'):
        build_optim_wrapper(model, dict(
            type='CPUAmpOptimWrapper', dtype='float16',
            optimizer=dict(type='SGD', lr=0.1)))

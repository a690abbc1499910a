"""``tools/train.py --amp``: trains with an accelerator, says why not without.

``--amp`` switches the optimiser wrapper to mmengine's ``AmpOptimWrapper``
(or dpt_mm's ``NonFiniteGuardAmpOptimWrapper``, which derives from it).
mmengine 0.10.7's wrapper asserts a GPU/NPU/MLU/MUSA device, so on a
CPU-only machine the run stops with that message instead of training in
bf16.
"""
import os
import os.path as osp
import subprocess
import sys

from mmengine.config import Config
from mmengine.device import (is_cuda_available, is_mlu_available,
                             is_musa_available, is_npu_available)

from toy_utils import make_toy_root, shrink_config

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
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
    if _has_accelerator():
        assert result.returncode == 0, result.stdout[-3000:]
        assert "type='NonFiniteGuardAmpOptimWrapper'" in result.stdout
        assert 'Iter(train) [2/2]' in result.stdout
    else:
        assert result.returncode != 0, result.stdout[-3000:]
        assert ('AmpOptimizerWrapper`` is only available training on gpu'
                in result.stdout), result.stdout[-3000:]
        assert 'Iter(train)' not in result.stdout

"""The BEiT and Swin V2 toy configs train on the toy scenes: the loss falls
(default suite); with DPT_MM_SLOW=1, a longer run's metrics beat a constant
prediction."""
import math
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

from toy_utils import make_toy_root

REPO = osp.abspath(osp.join(osp.dirname(__file__), '../../..'))
TOY_CONFIGS = {
    'beit': 'configs/toy/dpt_toy_beit_depth.py',
    'swinv2': 'configs/toy/dpt_toy_swinv2_depth.py',
}


@pytest.fixture(scope='module')
def toy_root(tmp_path_factory):
    return make_toy_root(tmp_path_factory)


def _runner(name: str, toy_root: str, work_dir: str, iters: int,
            batch: int = 4) -> Runner:
    cfg = Config.fromfile(osp.join(REPO, TOY_CONFIGS[name]))
    cfg.work_dir = work_dir
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[key].dataset.data_root = osp.join(toy_root, 'nyu')
    cfg.train_dataloader.batch_size = batch
    cfg.train_cfg.max_iters = iters
    cfg.train_cfg.val_interval = iters
    cfg.default_hooks.logger.interval = 1
    cfg.default_hooks.checkpoint.interval = iters
    cfg.param_scheduler = [dict(type='ConstantLR', factor=1.0,
                                by_epoch=False)]
    cfg.visualizer.vis_backends = [dict(type='LocalVisBackend')]
    return Runner.from_cfg(cfg)


@pytest.mark.parametrize('name', list(TOY_CONFIGS))
def test_toy_config_loss_falls(name: str, toy_root: str, tmp_path) -> None:
    torch.manual_seed(0)
    runner = _runner(name, toy_root, str(tmp_path), iters=30)
    runner.train()
    losses = np.array(
        runner.message_hub.get_scalar('train/loss').data[0], dtype=float)
    assert len(losses) == 30 and np.isfinite(losses).all()
    first, last = losses[:5].mean(), losses[-5:].mean()
    print(f'\n[toy {name}] loss {first:.3f} → {last:.3f}')
    assert last < 0.8 * first, (first, last)


@pytest.fixture(scope='module')
def demo_root(tmp_path_factory):
    """The toy scenes as ``make demo`` writes them (320 train, 48 val)."""
    from dpt_mm.datasets.toy_scenes import generate_toy_data
    root = str(tmp_path_factory.getbasetemp() / 'demo_toy')
    generate_toy_data(root, num_train=320, num_val=48, seed=0,
                      layouts=('nyu', ))
    return root


@pytest.mark.slow
@pytest.mark.parametrize('name', list(TOY_CONFIGS))
def test_toy_config_beats_constant_prediction(name: str, demo_root: str,
                                              tmp_path) -> None:
    """On ``make demo``'s toy scenes, 800 iterations of the toy config
    beat predicting the training median depth everywhere (the demo's
    "constant" column)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        'demo', osp.join(REPO, 'tools', 'demo.py'))
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    torch.manual_seed(0)
    # The config's batch 8, as in the demo.
    runner = _runner(name, demo_root, str(tmp_path), iters=800, batch=8)
    runner.train()
    metrics = runner.val_loop.run()
    const = demo.chance_depth(osp.join(demo_root, 'nyu'))
    print(f'\n[toy {name}] d1 {metrics["d1"]:.3f} vs constant '
          f'{const["d1"]:.3f}, AbsRel {metrics["abs_rel"]:.3f} vs '
          f'{const["abs_rel"]:.3f}')
    assert math.isfinite(metrics['d1']) and metrics['d1'] > const['d1']

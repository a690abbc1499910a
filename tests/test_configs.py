"""Every config builds offline; every config family trains on toy data."""
import math
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

from dpt_mm.utils.config import repo_config_files
from mmseg.registry import DATASETS, MODELS
from toy_utils import make_toy_root, shrink_config

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = repo_config_files()


def _rel(path):
    return osp.relpath(path, ROOT)


@pytest.fixture(scope='module')
def toy_root(tmp_path_factory):
    return make_toy_root(tmp_path_factory)


@pytest.mark.parametrize('path', CONFIGS, ids=_rel)
def test_config_builds_offline(path):
    cfg = Config.fromfile(path)
    assert cfg.default_scope == 'mmseg'
    assert 'dpt_mm' in cfg.custom_imports['imports']
    # Building never downloads: Pretrained weights load in init_weights().
    # The meta device skips allocating full-size weights.
    with torch.device('meta'):
        model = MODELS.build(cfg.model)
    assert sum(p.numel() for p in model.parameters()) > 0
    for key in ('train_dataloader', 'val_dataloader'):
        assert cfg[key].dataset.type in DATASETS


def test_config_depth_is_at_most_three_levels():
    def depth(path):
        cfg_base = Config._get_base_files(path)  # noqa: SLF001
        return 1 + max((depth(osp.join(osp.dirname(path), b))
                        for b in cfg_base), default=0)

    too_deep = {_rel(p): depth(p) for p in CONFIGS if depth(p) > 3}
    assert not too_deep, too_deep


FAMILIES = {
    'ade20k': 'configs/dpt_hybrid_ade20k.py',
    'pascal_context': 'configs/dpt_hybrid_pascal_context.py',
    'nyu': 'configs/dpt_hybrid_nyu.py',
    'kitti': 'configs/dpt_hybrid_kitti.py',
    'relative': 'configs/dpt_vitl_midas.py',
    'toy_seg': 'configs/toy/dpt_toy_seg.py',
    'toy_depth': 'configs/toy/dpt_toy_depth.py',
    'toy_depth_seg': 'configs/toy/dpt_toy_depth_seg.py',
}
EXPECTED_METRICS = {
    'ade20k': 'mIoU', 'pascal_context': 'mIoU', 'toy_seg': 'mIoU',
    'nyu': 'd1', 'kitti': 'd1', 'relative': 'd1', 'toy_depth': 'd1',
    'toy_depth_seg': ('mIoU', 'd1')
}


@pytest.mark.parametrize('family', sorted(FAMILIES))
def test_config_family_trains_and_evaluates_on_toy_data(
        family, toy_root, tmp_path):
    """The family's own data set class, pipelines, losses and metric run."""
    cfg = Config.fromfile(osp.join(ROOT, FAMILIES[family]))
    cfg = shrink_config(cfg, toy_root, str(tmp_path))
    runner = Runner.from_cfg(cfg)
    runner.train()
    losses = [v for k, v in runner.message_hub.log_scalars.items()
              if k.startswith('train/') and 'loss' in k]
    assert losses and all(math.isfinite(b.current()) for b in losses)
    metrics = runner.val_loop.run()
    keys = EXPECTED_METRICS[family]
    for key in (keys if isinstance(keys, tuple) else (keys, )):
        assert key in metrics and math.isfinite(metrics[key])
    assert osp.isfile(osp.join(str(tmp_path), 'iter_2.pth'))

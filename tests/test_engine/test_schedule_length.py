"""Shortening a run with --cfg-options shortens its learning-rate schedule."""
import os.path as osp

from mmengine.config import Config

from dpt_mm.utils import load_config
from dpt_mm.utils.config import tie_schedulers_to_length

REPO = osp.abspath(osp.join(osp.dirname(__file__), '../..'))


def test_max_iters_override_moves_scheduler_end() -> None:
    cfg = load_config(osp.join(REPO, 'configs', 'toy', 'dpt_toy_depth.py'),
                      {'train_cfg.max_iters': 20})
    assert cfg.train_cfg.max_iters == 20
    assert [s['end'] for s in cfg.param_scheduler] == [20]


def test_paper_config_and_other_schedulers() -> None:
    cfg = load_config(osp.join(REPO, 'configs', 'dpt_hybrid_ade20k.py'),
                      {'train_cfg.max_iters': 300})
    poly = [s for s in cfg.param_scheduler if s['type'] == 'PolyLR']
    assert [s['end'] for s in poly] == [300]


def test_only_schedulers_that_ended_with_the_loop_move() -> None:
    cfg = Config(
        dict(train_cfg=dict(max_iters=1500),
             param_scheduler=[
                 dict(type='LinearLR', by_epoch=False, begin=0, end=50),
                 dict(type='PolyLR', by_epoch=False, begin=50, end=1500),
                 dict(type='MultiStepLR', begin=0, end=1500),  # epochs
             ]))
    cfg.train_cfg.max_iters = 100
    notes = tie_schedulers_to_length(cfg, ('max_iters', 1500))
    assert [s['end'] for s in cfg.param_scheduler] == [50, 100, 1500]
    assert notes == ['param_scheduler[1] (PolyLR): end 1500 -> 100, with '
                     'train_cfg.max_iters']
    # Unchanged length, or an explicit end in the same overrides: untouched.
    assert tie_schedulers_to_length(cfg, ('max_iters', 100)) == []
    cfg = load_config(osp.join(REPO, 'configs', 'toy', 'dpt_toy_depth.py'),
                      {'train_cfg.max_iters': 20,
                       'param_scheduler.0.end': 40})
    assert cfg.param_scheduler[0]['end'] == 40

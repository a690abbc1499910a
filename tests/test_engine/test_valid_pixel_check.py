"""Ground truth without a valid pixel does not train silently (#16.3)."""
import logging
import os
import os.path as osp
import shutil

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

import dpt_mm  # noqa: F401
from dpt_mm.engine.hooks import ValidPixelCheckHook
from mmseg.registry import RUNNERS
from toy_utils import make_toy_root, shrink_config

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '../..'))


class ListHandler(logging.Handler):

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.messages = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def zeroed_nyu(toy_root: str, tmp_path) -> str:
    """A copy of the toy NYU data whose training depth maps are all 0."""
    root = str(tmp_path / 'nyu')
    shutil.copytree(osp.join(toy_root, 'nyu'), root)
    annotations = osp.join(root, 'annotations', 'train')
    for name in os.listdir(annotations):
        path = osp.join(annotations, name)
        depth = cv2.imread(path, cv2.IMREAD_UNCHANGED)
        cv2.imwrite(path, np.zeros_like(depth))
    return root


def test_all_zero_depth_maps_stop_training_naming_files(
        tmp_path_factory, tmp_path):
    toy_root = make_toy_root(tmp_path_factory)
    cfg = Config.fromfile(
        osp.join(ROOT, 'configs', 'toy', 'dpt_toy_depth.py'))
    cfg = shrink_config(cfg, toy_root, str(tmp_path / 'work'), max_iters=8)
    cfg.train_dataloader.dataset.data_root = zeroed_nyu(toy_root, tmp_path)
    runner = RUNNERS.build(cfg)  # default_runtime's runner and hooks
    handler = ListHandler()
    runner.logger.addHandler(handler)
    with pytest.raises(RuntimeError) as info:
        runner.train()
    # 8 training samples in batches of 2: one epoch is 4 iterations.
    message = str(info.value)
    assert 'stopped at iteration 4' in message
    assert '4 batches in a row' in message
    assert 'annotations/train/' in message and '.png' in message
    warnings = [m for m in handler.messages if 'no valid pixel' in m]
    assert len(warnings) == 4
    assert 'iteration 1' in warnings[0] and '.png' in warnings[0]
    assert runner.iter < 8


def seg_sample(labels: torch.Tensor, name: str) -> SegDataSample:
    sample = SegDataSample(metainfo=dict(img_path=name))
    sample.gt_sem_seg = PixelData(data=labels)
    return sample


class FakeRunner:
    iter = 0


def test_labels_all_ignored_count_as_empty_and_valid_ones_reset():
    hook = ValidPixelCheckHook(max_empty_iters=2)
    ignored = torch.full((1, 4, 4), 255)
    empty = dict(data_samples=[seg_sample(ignored, 'a.jpg'),
                               seg_sample(ignored, 'b.jpg')])
    one_label = ignored.clone()
    one_label[0, 0, 0] = 3
    fine = dict(data_samples=[seg_sample(ignored, 'a.jpg'),
                              seg_sample(one_label, 'c.jpg')])
    hook.before_train_iter(FakeRunner(), 0, empty)
    assert hook.empty_iters == 1
    hook.before_train_iter(FakeRunner(), 1, fine)  # one valid pixel is enough
    assert hook.empty_iters == 0
    hook.before_train_iter(FakeRunner(), 2, empty)
    with pytest.raises(RuntimeError, match=r'(?s)a\.jpg.*b\.jpg'):
        hook.before_train_iter(FakeRunner(), 3, empty)


def test_batches_without_ground_truth_are_not_checked():
    hook = ValidPixelCheckHook(max_empty_iters=1)
    hook.before_train_iter(
        FakeRunner(), 0, dict(data_samples=[SegDataSample()]))
    assert hook.empty_iters == 0


def test_max_empty_iters_must_be_positive():
    with pytest.raises(ValueError, match='max_empty_iters'):
        ValidPixelCheckHook(max_empty_iters=0)

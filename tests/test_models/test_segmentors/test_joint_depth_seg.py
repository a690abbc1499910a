"""Joint depth + segmentation (DepthSegEstimator) outside training:
init_model, inference_model and tools/infer.py give both predictions, equal
to those of the same weights as a segmentation and as a depth model."""
import copy
import os.path as osp

import cv2
import numpy as np
import torch
from mmengine.config import Config

from dpt_mm.apis import inference_model, init_model
from mmseg.registry import MODELS
from test_inference import random_image, randomize
from test_infer_cli import infer_tool  # noqa: F401  (fixture)

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '../../..'))
CONFIG = osp.join(ROOT, 'configs', 'toy', 'dpt_toy_depth_seg.py')
SIZE = (96, 128)  # the config's inference size: no resize before/after


def _save(model_cfg: dict, state: dict, cfg: Config, path: str) -> tuple:
    cfg = copy.deepcopy(cfg)
    cfg.model = model_cfg
    config = f'{path}.py'
    cfg.dump(config)
    meta = dict(dataset_meta=dict(classes=cfg.metainfo['classes'],
                                  palette=cfg.metainfo['palette']))
    torch.save(dict(state_dict=state, meta=meta), f'{path}.pth')
    return config, f'{path}.pth'


def _joint_and_single_task_models(folder: str) -> tuple:
    cfg = Config.fromfile(CONFIG)
    torch.manual_seed(0)
    state = randomize(MODELS.build(cfg.model)).state_dict()
    joint = _save(cfg.model, state, cfg, osp.join(folder, 'joint'))
    seg_cfg = copy.deepcopy(cfg.model)
    seg_cfg.type = 'EncoderDecoder'
    for key in ('depth_head', 'depth_loss_weight'):
        seg_cfg.pop(key)
    seg = _save(seg_cfg, {k: v for k, v in state.items()
                          if not k.startswith('depth_head.')}, cfg,
                osp.join(folder, 'seg'))
    depth_cfg = copy.deepcopy(cfg.model)
    depth_cfg.type = 'DPTDepthEstimator'
    for key in ('decode_head', 'auxiliary_head', 'depth_loss_weight'):
        depth_cfg.pop(key)
    depth_cfg['decode_head'] = depth_cfg.pop('depth_head')
    depth_state = {
        k.replace('depth_head.', 'decode_head.'): v
        for k, v in state.items()
        if not k.startswith(('decode_head.', 'auxiliary_head.'))
    }
    depth = _save(depth_cfg, depth_state, cfg, osp.join(folder, 'depth'))
    return joint, seg, depth


def test_joint_model_predicts_both_tasks_as_the_single_task_models(
        tmp_path):
    joint, seg, depth = _joint_and_single_task_models(str(tmp_path))
    image = random_image(*SIZE, seed=1)
    result = inference_model(init_model(*joint), image)
    seg_result = inference_model(init_model(*seg), image)
    depth_result = inference_model(init_model(*depth), image)
    assert result.pred_sem_seg.shape == SIZE
    assert result.pred_depth_map.shape == SIZE
    assert result.pred_depth_map.metainfo['depth_type'] == 'depth'
    torch.testing.assert_close(result.seg_logits.data,
                               seg_result.seg_logits.data)
    assert torch.equal(result.pred_sem_seg.data, seg_result.pred_sem_seg.data)
    torch.testing.assert_close(result.pred_depth_map.data,
                               depth_result.pred_depth_map.data)
    assert result.pred_sem_seg.data.unique().numel() > 1  # not constant


def test_infer_writes_depth_and_segmentation_pictures(infer_tool, tmp_path,
                                                      capsys):
    (config, ckpt), _, _ = _joint_and_single_task_models(str(tmp_path))
    image = str(tmp_path / 'room.jpg')
    cv2.imwrite(image, random_image(48, 64, seed=2))
    out_dir = tmp_path / 'out'
    assert infer_tool.main([config, ckpt, image, '--out-dir', str(out_dir),
                            '--side-by-side']) == 0, capsys.readouterr().err
    for suffix in ('_depth.png', '_depth_raw.png', '_depth.npy', '_seg.png',
                   '_overlay.png', '_seg_labels.png'):
        assert (out_dir / f'room{suffix}').is_file(), suffix
    assert np.load(out_dir / 'room_depth.npy').shape == (48, 64)
    # image | depth | segmentation
    picture = cv2.imread(str(out_dir / 'room_side_by_side.png'))
    assert picture.shape == (48, 3 * 64, 3)


def test_dataset_gives_labels_and_depth_of_the_same_scene(tmp_path_factory):
    import os

    import pytest
    from mmengine.registry import init_default_scope

    from dpt_mm.datasets.toy_scenes import MAX_DEPTH, MIN_DEPTH, OTHER
    from mmseg.registry import DATASETS
    from toy_utils import make_toy_root
    init_default_scope('mmseg')
    cfg = Config.fromfile(CONFIG)
    dataset_cfg = copy.deepcopy(cfg.train_dataloader.dataset)
    dataset_cfg.data_root = osp.join(make_toy_root(tmp_path_factory),
                                     'depth_seg')
    dataset_cfg.pipeline = [
        dict(type='LoadImageChecked'),
        dict(type='LoadAnnotationsChecked'),
        dict(type='LoadDepthMap'),
        dict(type='RandomFlip', prob=1.0),
        dict(type='PackSegInputs'),
    ]
    dataset = DATASETS.build(dataset_cfg)
    assert len(dataset) == 8
    sample = dataset[0]['data_samples']
    labels = sample.gt_sem_seg.data[0]
    depth = sample.gt_depth_map.data[0]
    assert labels.shape == depth.shape == (64, 96)
    assert set(labels.unique().tolist()) <= set(range(6)) | {OTHER}
    valid = depth > 0  # 0: Kinect-like holes
    assert valid.float().mean() > 0.8
    assert MIN_DEPTH - 1e-3 <= depth[valid].min() <= depth[valid].max() \
        <= MAX_DEPTH + 1e-3  # metres
    # The flip moved labels and depth together.
    dataset_cfg.pipeline[3]['prob'] = 0.0
    unflipped = DATASETS.build(dataset_cfg)[0]['data_samples']
    assert torch.equal(labels, unflipped.gt_sem_seg.data[0].flip(-1))
    assert torch.equal(depth, unflipped.gt_depth_map.data[0].flip(-1))
    assert not torch.equal(labels, unflipped.gt_sem_seg.data[0])
    # A missing depth map is named; classes are required.
    first = dataset[0]['data_samples'].img_path
    stem = osp.splitext(osp.basename(first))[0]
    depth_file = osp.join(dataset_cfg.data_root, 'depth', 'train',
                          f'{stem}.png')
    os.rename(depth_file, depth_file + '.bak')
    try:
        with pytest.raises(ValueError, match=f'1 label or depth maps '
                           f'missing:\n  {depth_file}'):
            DATASETS.build(dataset_cfg)
    finally:
        os.rename(depth_file + '.bak', depth_file)
    with pytest.raises(ValueError, match='metainfo=dict\\(classes'):
        DATASETS.build(dict(dataset_cfg, metainfo=None))

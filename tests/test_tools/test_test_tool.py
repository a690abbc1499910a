"""tools/test.py: --tta with every config family, --show-dir pictures."""
import importlib.util
import json
import os
import os.path as osp
import sys

import cv2
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope

from dpt_mm.datasets import check_data_paths
from dpt_mm.utils.config import repo_config_files
from mmseg.registry import DATASETS, MODELS
from mmseg.structures import SegDataSample
from toy_utils import make_toy_root, shrink_config

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '../..'))
TEST = osp.join(ROOT, 'tools', 'test.py')
DEPTH_MODELS = ('DPTDepthEstimator', 'DepthEstimator')


@pytest.fixture(scope='module')
def toy_root(tmp_path_factory):
    return make_toy_root(tmp_path_factory)


def toy_config(name: str, toy_root: str, tmp_path) -> Config:
    """A shrunk toy config whose TTA sizes are shrunk the same way."""
    cfg = shrink_config(
        Config.fromfile(osp.join(ROOT, 'configs', 'toy', name)), toy_root,
        str(tmp_path / 'work'))
    return cfg


def write_config_and_checkpoint(cfg: Config, tmp_path) -> tuple:
    """Dump ``cfg`` and a checkpoint of its randomly initialised model."""
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    ckpt = str(tmp_path / 'model.pth')
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, ckpt)
    config = str(tmp_path / 'config.py')
    cfg.dump(config)
    return config, ckpt


def _load_test_tool():
    spec = importlib.util.spec_from_file_location('dpt_test_tool', TEST)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def test_tool():
    return _load_test_tool()


def run_test_tool(tool, monkeypatch, *args: str) -> None:
    """``tools/test.py ARGS`` in this process (no second import of torch)."""
    monkeypatch.setattr(sys, 'argv', [TEST, *args])
    monkeypatch.chdir(ROOT)
    tool.main()


def dumped_config(work_dir) -> str:
    """The config the runner wrote into its work dir (named as the input)."""
    with open(osp.join(str(work_dir), 'config.py')) as f:
        return f.read()


@pytest.mark.parametrize('path', [
    p for p in repo_config_files()
    if 'test_dataloader' in Config.fromfile(p)
], ids=lambda p: osp.relpath(p, ROOT))
def test_every_config_has_a_tta_pipeline_and_model(path):
    cfg = Config.fromfile(path)
    assert cfg.tta_pipeline[-1]['type'] == 'TestTimeAug'
    augs = cfg.tta_pipeline[-1]['transforms']
    flips = [[t['prob'] for t in aug] for aug in augs
             if aug[0]['type'] == 'RandomFlip']
    assert flips == [[0., 1.]]  # the image and its horizontal flip
    expected = {
        'DepthSegEstimator': 'DepthSegTTAModel'
    }.get(cfg.model.type, 'DepthTTAModel'
          if cfg.model.type in DEPTH_MODELS else 'SegTTAModel')
    assert cfg.tta_model.type == expected
    if expected == 'SegTTAModel':  # the paper's multi-scale inference
        assert len(augs[0]) == 6


@pytest.mark.parametrize('name,metrics,tta', [
    ('dpt_toy_seg.py', ('mIoU', ), True),
    ('dpt_toy_depth.py', ('d1', ), True),
    ('dpt_toy_depth_seg.py', ('mIoU', 'd1', 'abs_rel'), False),
    ('dpt_toy_depth_seg.py', ('mIoU', 'd1', 'abs_rel'), True),
])
def test_test_cli_metrics(name, metrics, tta, toy_root, tmp_path, test_tool,
                          monkeypatch):
    cfg = toy_config(name, toy_root, tmp_path)
    config, ckpt = write_config_and_checkpoint(cfg, tmp_path)
    out = tmp_path / 'metrics.json'
    work_dir = tmp_path / 'work'
    run_test_tool(test_tool, monkeypatch, config, ckpt,
                  *(['--tta'] if tta else []), '--work-dir', str(work_dir),
                  '--metrics-json', str(out))
    if tta:
        assert f"type='{cfg.tta_model.type}'" in dumped_config(work_dir)
    values = json.loads(out.read_text())
    for metric in metrics:
        assert metric in values and values[metric] == values[metric]


def test_depth_tta_averages_the_flipped_back_views(toy_root, tmp_path):
    init_default_scope('mmseg')
    cfg = toy_config('dpt_toy_depth.py', toy_root, tmp_path)
    dataset_cfg = cfg.test_dataloader.dataset
    dataset_cfg.pipeline = cfg.tta_pipeline
    sample = DATASETS.build(dataset_cfg)[0]
    torch.manual_seed(0)
    tta = MODELS.build(dict(cfg.tta_model, module=cfg.model)).eval()
    with torch.no_grad():
        merged = tta.test_step(pseudo_collate([sample]))[0]
        plain, flipped = (
            tta.module.test_step(pseudo_collate([dict(
                inputs=sample['inputs'][i],
                data_samples=sample['data_samples'][i])]))[0]
            for i in (0, 1))
    assert flipped.flip  # the second view is the mirrored image
    # Its prediction is mirrored back: the model's raw output on the
    # mirrored image, flipped.
    view = tta.module.data_preprocessor(pseudo_collate([dict(
        inputs=sample['inputs'][1],
        data_samples=sample['data_samples'][1])]), False)
    meta = dict(view['data_samples'][0].metainfo, flip=False)
    with torch.no_grad():
        mirrored = tta.module.predict(
            view['inputs'], [SegDataSample(metainfo=meta)])[0]
    plain, flipped = plain.pred_depth_map.data, flipped.pred_depth_map.data
    torch.testing.assert_close(flipped,
                               mirrored.pred_depth_map.data.flip(-1))
    assert not torch.allclose(plain, flipped)
    torch.testing.assert_close(merged.pred_depth_map.data,
                               (plain + flipped) / 2)
    assert 'gt_depth_map' in merged
    # The toy model is metric: pictures colour it as depth, not disparity.
    assert merged.pred_depth_map.metainfo['depth_type'] == 'depth'


@pytest.mark.parametrize('name,panels', [('dpt_toy_seg.py', 2),
                                         ('dpt_toy_depth.py', 3),
                                         ('dpt_toy_depth_seg.py', 5)])
def test_show_dir_draws_every_test_image_there(name, panels, toy_root,
                                                tmp_path, test_tool,
                                                monkeypatch):
    cfg = toy_config(name, toy_root, tmp_path)
    config, ckpt = write_config_and_checkpoint(cfg, tmp_path)
    show_dir = tmp_path / 'vis'
    run_test_tool(test_tool, monkeypatch, config, ckpt, '--show-dir',
                  str(show_dir), '--work-dir', str(tmp_path / 'work'))
    dataset = cfg.test_dataloader.dataset
    images = sorted(os.listdir(osp.join(dataset.data_root,
                                        dataset.data_prefix.img_path)))
    assert 0 < len(images) < 50  # fewer than mmseg's hook interval
    drawn = sorted(os.listdir(show_dir))
    assert drawn == sorted(osp.splitext(i)[0] + '.png' for i in images)
    for image, picture in zip(sorted(images), drawn):
        img = cv2.imread(osp.join(dataset.data_root,
                                  dataset.data_prefix.img_path, image))
        pic = cv2.imread(str(show_dir / picture))
        # Segmentation: ground truth | prediction overlays; depth: image |
        # ground truth | prediction; joint: the depth panels, then the
        # segmentation ones.
        assert pic.shape == (img.shape[0], panels * img.shape[1], 3)


def test_empty_image_folder_says_no_samples_found(toy_root, tmp_path,
                                                  test_tool, monkeypatch):
    cfg = toy_config('dpt_toy_seg.py', toy_root, tmp_path)
    root = tmp_path / 'ade'
    for folder in ('images/validation', 'annotations/validation'):
        (root / folder).mkdir(parents=True)
    cfg.test_dataloader.dataset.data_root = str(root)
    config, ckpt = write_config_and_checkpoint(cfg, tmp_path)
    folder = osp.join(str(root), 'images/validation')
    with pytest.raises(ValueError) as error:
        run_test_tool(test_tool, monkeypatch, config, ckpt, '--work-dir',
                      str(tmp_path / 'w'))
    assert str(error.value) == (
        f'test_dataloader.dataset: ADE20KDataset: no samples found in '
        f'{folder} (no *.jpg file)')
    assert not (tmp_path / 'w').exists()  # failed before any work
    # A folder of other files is as empty; so is a blank split file.
    (root / folder / 'notes.txt').write_text('not an image')
    with pytest.raises(ValueError, match='no samples found in .*no \\*.jpg'):
        check_data_paths(Config.fromfile(config), 'test')
    split = tmp_path / 'val.txt'
    split.write_text('\n')
    cfg.test_dataloader.dataset.ann_file = str(split)
    with pytest.raises(ValueError, match=f'no samples found in {split}'):
        check_data_paths(cfg, 'test')

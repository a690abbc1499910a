"""tools/infer.py on files, a folder with a bad file, and a video."""
import importlib.util
import os.path as osp

import cv2
import numpy as np
import pytest
import torch

from dpt_mm.visualization import read_depth_png16
from test_inference import random_image, write_tiny_model

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '../..'))


def _load_tool():
    spec = importlib.util.spec_from_file_location(
        'dpt_infer_tool', osp.join(ROOT, 'tools', 'infer.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def infer_tool():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: threads only contend
    yield _load_tool()
    torch.set_num_threads(threads)


def _write_video(path: str, frames: int = 5, size=(48, 64)) -> None:
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'mp4v'), 10.0,
                             (size[1], size[0]))
    assert writer.isOpened()
    for i in range(frames):
        writer.write(random_image(*size, seed=i))
    writer.release()


def test_depth_files_folder_and_video(infer_tool, tmp_path, capsys):
    cfg, ckpt = write_tiny_model(str(tmp_path), 'depth')
    kitchen = str(tmp_path / 'kitchen.jpg')
    cv2.imwrite(kitchen, random_image(45, 60, 1))
    folder = tmp_path / 'photos'
    folder.mkdir()
    cv2.imwrite(str(folder / 'a.png'), random_image(30, 40, 2))
    cv2.imwrite(str(folder / 'b.png'), random_image(30, 40, 3))
    video = str(tmp_path / 'clip.mp4')
    _write_video(video)
    out_dir = tmp_path / 'out'
    code = infer_tool.main([
        cfg, ckpt, kitchen, str(folder), video, '--out-dir', str(out_dir),
        '--batch-size', '2', '--side-by-side'
    ])
    assert code == 0, capsys.readouterr().err
    for suffix in ('_depth.png', '_depth_raw.png', '_depth_raw.json',
                   '_depth.npy', '_side_by_side.png'):
        assert (out_dir / f'kitchen{suffix}').is_file(), suffix
    depth = np.load(out_dir / 'kitchen_depth.npy')
    assert depth.shape == (45, 60)
    from_png = read_depth_png16(out_dir / 'kitchen_depth_raw.png')
    scale = 65535 / depth.max()
    np.testing.assert_allclose(from_png, np.clip(depth, 0, None),
                               atol=0.51 / scale)
    assert cv2.imread(str(out_dir / 'kitchen_depth.png')).shape == \
        (45, 60, 3)
    assert (out_dir / 'a_depth.png').is_file()
    assert (out_dir / 'b_depth.npy').is_file()
    capture = cv2.VideoCapture(str(out_dir / 'clip_depth.mp4'))
    frames = 0
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames += 1
        assert frame.shape == (48, 128, 3)  # frame | depth
    capture.release()
    assert frames == 5


def test_failures_are_reported_and_others_written(infer_tool, tmp_path,
                                                  capsys):
    cfg, ckpt = write_tiny_model(str(tmp_path), 'seg')
    good = str(tmp_path / 'good.png')
    cv2.imwrite(good, random_image(32, 48))
    broken = tmp_path / 'broken.jpg'
    broken.write_bytes(open(good, 'rb').read()[:20])
    empty_folder = tmp_path / 'empty'
    empty_folder.mkdir()
    out_dir = tmp_path / 'out'
    code = infer_tool.main([
        cfg, ckpt, good, str(broken), str(empty_folder),
        str(tmp_path / 'missing.png'), '--out-dir', str(out_dir),
        '--no-npy', '--no-png16'
    ])
    err = capsys.readouterr().err
    assert code == 1
    assert '3 input(s) failed' in err
    for name in ('broken.jpg', 'empty', 'missing.png'):
        assert name in err
    seg = cv2.imread(str(out_dir / 'good_seg.png'))
    assert seg.shape == (32, 48, 3)
    assert (out_dir / 'good_overlay.png').is_file()
    labels = cv2.imread(str(out_dir / 'good_seg_labels.png'),
                        cv2.IMREAD_UNCHANGED)
    assert labels.shape == (32, 48) and labels.max() < 5
    assert not list(out_dir.glob('broken*'))


# --------------------------------------------------------------------------
# one inference path: tools/test.py, tools/infer.py and inference_model


def _load_test_tool():
    spec = importlib.util.spec_from_file_location(
        'dpt_test_tool', osp.join(ROOT, 'tools', 'test.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ONE_PATH_CASES = {
    # task: (toy config, data layout, label loader, post-processing modes)
    'depth': ('dpt_toy_depth.py', 'nyu',
              "dict(type='LoadDepthMap', depth_scale=1000)"),
    'seg': ('dpt_toy_seg.py', 'ade', "dict(type='LoadAnnotationsChecked')"),
}


@pytest.mark.parametrize('task,resize_mode', [
    ('depth', 'bicubic'), ('depth', 'bilinear'), ('seg', 'bilinear'),
    ('seg', 'bicubic')])
def test_test_infer_and_api_give_one_map(infer_tool, tmp_path, monkeypatch,
                                         task, resize_mode):
    """The same weights and image: the same depth map (or logits) from
    tools/test.py (through the Runner and the data set), tools/infer.py and
    inference_model, with the post-processing the config sets."""
    import sys

    from mmengine.config import Config
    from mmengine.evaluator import BaseMetric
    from mmengine.registry import init_default_scope
    from mmseg.registry import METRICS, MODELS

    from dpt_mm.apis import inference_model, init_model
    from dpt_mm.datasets.toy_scenes import generate_toy_data
    from test_inference import randomize

    captured = {}
    key = 'pred_depth_map' if task == 'depth' else 'seg_logits'

    class CaptureOutput(BaseMetric):
        def process(self, data_batch, data_samples):
            for sample in data_samples:
                captured[osp.basename(sample['img_path'])] = \
                    sample[key]['data'].clone()

        def compute_metrics(self, results):
            return dict(captured=float(len(captured)))

    METRICS.register_module('CaptureOutputForTest', module=CaptureOutput,
                            force=True)
    config, layout, label_loader = ONE_PATH_CASES[task]
    root = generate_toy_data(str(tmp_path / 'data'), num_train=1, num_val=2,
                             layouts=[layout])[layout]
    # The network runs at 64×96 (not the images' 96×128), so the output is
    # resized back as test_cfg.resize_mode says.
    resize = dict(type='DPTResize', size=(64, 96), keep_aspect_ratio=False)
    cfg_path = tmp_path / 'toy.py'
    cfg_path.write_text(
        f"_base_ = '{ROOT}/configs/toy/{config}'\n"
        f"data_root = '{root}'\n"
        f"model = dict(test_cfg=dict(resize_mode='{resize_mode}'))\n"
        f"resize = {resize!r}\n"
        "test_pipeline = [dict(type='LoadImageChecked'), resize,\n"
        f"    {label_loader}, dict(type='PackSegInputs')]\n"
        "test_dataloader = dict(dataset=dict(data_root=data_root,\n"
        "    pipeline=test_pipeline))\n"
        "test_evaluator = dict(_delete_=True, type='CaptureOutputForTest')\n"
        "inference_pipeline = [dict(type='LoadImageFromNDArray'), resize,\n"
        "    dict(type='PackSegInputs')]\n")
    init_default_scope('mmseg')
    cfg = Config.fromfile(str(cfg_path))
    model = randomize(MODELS.build(cfg.model))
    ckpt = str(tmp_path / 'toy.safetensors')
    from dpt_mm.utils import save_checkpoint_file
    save_checkpoint_file(dict(state_dict=model.state_dict()), ckpt)

    monkeypatch.setattr(sys, 'argv', [
        'test.py', str(cfg_path), ckpt, '--work-dir', str(tmp_path / 'work')
    ])
    _load_test_tool().main()
    assert len(captured) == 2

    folder = 'test' if task == 'depth' else 'validation'
    image = sorted(osp.join(root, 'images', folder, n) for n in captured)[0]
    out_dir = tmp_path / 'infer'
    assert infer_tool.main([str(cfg_path), ckpt, image, '--out-dir',
                            str(out_dir), '--no-png16']) == 0
    stem = osp.splitext(osp.basename(image))[0]
    sample = inference_model(init_model(str(cfg_path), ckpt), image)
    from_test = captured[osp.basename(image)]
    from_api = getattr(sample, key).data
    assert from_test.shape[-2:] == (96, 128)
    scale = from_api.abs().max()
    assert (from_test - from_api).abs().max() <= 1e-5 * scale
    if task == 'depth':
        from_infer = torch.from_numpy(np.load(out_dir / f'{stem}_depth.npy'))
        assert (from_infer - from_api[0]).abs().max() <= 1e-5 * scale
    else:
        labels = cv2.imread(str(out_dir / f'{stem}_seg_labels.png'),
                            cv2.IMREAD_UNCHANGED)
        assert np.array_equal(labels, sample.pred_sem_seg.data[0].numpy())
    # The mode matters: the other one gives another map.
    other = 'bilinear' if resize_mode == 'bicubic' else 'bicubic'
    model = init_model(str(cfg_path), ckpt,
                       cfg_options={'model.test_cfg.resize_mode': other})
    assert (getattr(inference_model(model, image), key).data -
            from_api).abs().max() > 1e-3 * scale

"""tools/infer.py on files, a folder with a bad file, and a video."""
import importlib.util
import os.path as osp

import cv2
import numpy as np
import pytest
import torch

from dpt_mm.visualization import read_depth_png16
from test_apis import random_image, write_tiny_model

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


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

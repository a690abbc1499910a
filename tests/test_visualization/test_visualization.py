"""Depth colourisation, raw-depth files, palette maps and the visualiser."""
import json

import cv2
import numpy as np
import pytest
import torch
from mmengine.structures import PixelData

from dpt_mm.visualization import (DPTLocalVisualizer, colorize_depth,
                                  colorize_seg, overlay_seg,
                                  read_depth_png16, save_depth_npy,
                                  side_by_side, sidecar_path,
                                  write_depth_png16)
from mmseg.registry import VISUALIZERS
from mmseg.structures import SegDataSample
from mmseg.visualization import SegLocalVisualizer


def luminance(rgb: np.ndarray) -> np.ndarray:
    return rgb.astype(np.float64) @ np.array([0.299, 0.587, 0.114])


@pytest.mark.parametrize('cmap', ['inferno', 'magma', 'gray'])
def test_near_is_bright(cmap):
    ramp = np.linspace(1.0, 10.0, 32, dtype=np.float32)[None]
    # Inverse depth: larger = nearer = brighter.
    rgb, value_range = colorize_depth(ramp, cmap=cmap)
    assert rgb.shape == (1, 32, 3) and rgb.dtype == np.uint8
    assert value_range == (1.0, 10.0)
    lum = luminance(rgb[0])
    assert lum[-1] > lum[0] + 100
    # Metric depth: smaller = nearer = brighter.
    rgb, _ = colorize_depth(ramp, cmap=cmap, depth_type='depth')
    lum = luminance(rgb[0])
    assert lum[0] > lum[-1] + 100
    if cmap == 'gray':
        assert np.all(np.diff(lum) <= 0)


def test_turbo_near_is_warm():
    ramp = np.linspace(1.0, 10.0, 32, dtype=np.float32)[None]
    for depth_type, near in (('inverse_depth', -1), ('depth', 0)):
        rgb, _ = colorize_depth(ramp, cmap='turbo', depth_type=depth_type)
        far = -1 - near
        assert rgb[0, near, 0] > rgb[0, near, 2]  # red
        assert rgb[0, far, 2] > rgb[0, far, 0]  # blue


def test_colorize_depth_range_and_invalid():
    depth = np.array([[0.0, 2.0, 4.0, np.nan, np.inf, 6.0]], np.float32)
    rgb, value_range = colorize_depth(depth, depth_type='depth')
    assert value_range == (2.0, 6.0)  # zeros and non-finite ignored
    assert (rgb[0, [0, 3, 4]] == 0).all()
    # A given range is used as is, and applies to tensors (1×H×W) too.
    rgb2, used = colorize_depth(torch.from_numpy(depth)[None], vmin=0.0,
                                vmax=12.0, depth_type='depth')
    assert used == (0.0, 12.0)
    assert not np.array_equal(rgb, rgb2)
    constant, _ = colorize_depth(np.ones((3, 3)))
    assert constant.shape == (3, 3, 3)
    with pytest.raises(ValueError, match='cmap'):
        colorize_depth(depth, cmap='rainbow')


def test_png16_roundtrip(tmp_path):
    rng = np.random.RandomState(0)
    depth = rng.rand(20, 30).astype(np.float32) * 3.0
    depth[0, 0] = -0.01  # bicubic undershoot clips to 0
    depth[0, 1] = np.nan
    path = tmp_path / 'kitchen_depth_raw.png'
    scale = write_depth_png16(path, depth)
    assert sidecar_path(path).endswith('kitchen_depth_raw.json')
    meta = json.load(open(sidecar_path(path)))
    assert meta['scale'] == pytest.approx(scale)
    assert meta['decode'] == 'value = pixel / scale'
    assert meta['depth_type'] == 'inverse_depth'
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert raw.dtype == np.uint16 and raw.max() == 65535
    decoded = read_depth_png16(path)
    valid = np.isfinite(depth) & (depth >= 0)
    np.testing.assert_allclose(decoded[valid], depth[valid],
                               atol=0.5 / scale + 1e-7)
    assert decoded[0, 0] == 0 and decoded[0, 1] == 0
    # A fixed metric scale (millimetres).
    write_depth_png16(tmp_path / 'm.png', np.full((2, 2), 1.2346), 1000,
                      depth_type='depth')
    assert read_depth_png16(tmp_path / 'm.png')[0, 0] == pytest.approx(
        1.2345, abs=5e-4)
    npy = save_depth_npy(tmp_path / 'd.npy', torch.from_numpy(depth)[None])
    np.testing.assert_array_equal(np.load(npy), depth)


def test_seg_pictures():
    palette = [[255, 0, 0], [0, 255, 0], [0, 0, 255]]
    seg = np.array([[0, 1], [2, 255]])
    color = colorize_seg(seg, palette)
    assert color[0, 1].tolist() == [0, 255, 0]
    assert color[1, 1].tolist() == [0, 0, 0]  # ignore index
    image = np.full((2, 2, 3), 100, np.uint8)
    overlay = overlay_seg(image, seg, palette, alpha=0.5)
    assert overlay[0, 0].tolist() == [178, 50, 50]
    both = side_by_side([image, np.zeros((4, 6, 3), np.uint8)])
    assert both.shape == (2, 5, 3)


def _depth_sample(height=12, width=16, with_gt=True):
    sample = SegDataSample()
    yy, xx = torch.meshgrid(torch.arange(height), torch.arange(width),
                            indexing='ij')
    pred = (xx + 1).float()[None]  # inverse depth grows to the right
    sample.pred_depth_map = PixelData(data=pred)
    if with_gt:
        gt = (1.0 / (xx + 1)).float()[None]  # the matching metric depth
        gt[:, :, :2] = 0  # no ground truth there
        sample.gt_depth_map = PixelData(data=gt)
    return sample


def test_visualizer_draws_depth(tmp_path):
    vis = VISUALIZERS.build(dict(type='DPTLocalVisualizer',
                                 name='test_dpt_vis_depth'))
    assert isinstance(vis, DPTLocalVisualizer)
    image = np.full((12, 16, 3), 128, np.uint8)
    out_file = tmp_path / 'vis.png'
    vis.add_datasample('sample', image, _depth_sample(),
                       out_file=str(out_file))
    drawn = vis.get_image()
    assert drawn.shape == (12, 48, 3)
    assert np.array_equal(drawn[:, :16], image)
    gt, pred = drawn[:, 16:32], drawn[:, 32:]
    assert (gt[:, :2] == 0).all()  # invalid ground truth is black
    # Near (right) is bright in both panels, in their own spaces.
    assert luminance(gt[0, -1]) > luminance(gt[0, 2])
    assert luminance(pred[0, -1]) > luminance(pred[0, 0])
    assert cv2.imread(str(out_file)).shape == (12, 48, 3)

    # Prediction only, resized to a bigger image.
    vis.add_datasample('pred', np.zeros((24, 32, 3), np.uint8),
                       _depth_sample(with_gt=False))
    assert vis.get_image().shape == (24, 64, 3)


def test_visualizer_defers_segmentation():
    palette = [[255, 0, 0], [0, 255, 0]]
    ours = DPTLocalVisualizer(name='test_dpt_vis_seg', classes=['a', 'b'],
                              palette=palette)
    # mmseg 1.2.2 swaps classes and palette in its __init__; set them after.
    theirs = SegLocalVisualizer(name='test_seg_vis_seg')
    theirs.set_dataset_meta(['a', 'b'], palette)
    assert ours.dataset_meta == theirs.dataset_meta
    sample = SegDataSample()
    labels = torch.zeros(1, 8, 8, dtype=torch.int64)
    labels[:, 4:] = 1
    sample.pred_sem_seg = PixelData(data=labels)
    image = np.full((8, 8, 3), 50, np.uint8)
    for vis in (ours, theirs):
        vis.add_datasample('seg', image, sample, with_labels=False)
    assert np.array_equal(ours.get_image(), theirs.get_image())

"""Toy scene generator: determinism, layouts, label and depth conventions."""
import glob
import importlib.util
import os
import os.path as osp
import time

import cv2
import numpy as np
import pytest
from mmseg.datasets import ADE20KDataset, NYUDataset, PascalContextDataset59

from dpt_mm.datasets.pfm import read_pfm
from dpt_mm.datasets.toy_scenes import (ADE20K_LABELS, CABINET, FLOOR,
                                        KITTI_PNG_SCALE, MAX_DEPTH,
                                        MIN_DEPTH, OTHER,
                                        PASCAL_CONTEXT59_LABELS, PLATE, SKY,
                                        TOY_CLASSES, TREE, WALL,
                                        generate_toy_data, render_scene,
                                        scene_rng)

REPO = osp.abspath(osp.join(osp.dirname(__file__), '../..'))
NUM_TRAIN, NUM_VAL = 6, 10


def _files(root):
    return sorted(
        osp.relpath(p, root)
        for p in glob.glob(osp.join(root, '**', '*'), recursive=True)
        if osp.isfile(p))


def _read(path):
    with open(path, 'rb') as f:
        return f.read()


@pytest.fixture(scope='module')
def toy(tmp_path_factory):
    out = str(tmp_path_factory.mktemp('toy'))
    generate_toy_data(out, num_train=NUM_TRAIN, num_val=NUM_VAL, seed=3)
    return out


def test_same_seed_gives_identical_bytes(toy, tmp_path):
    again = str(tmp_path / 'again')
    generate_toy_data(again, num_train=NUM_TRAIN, num_val=NUM_VAL, seed=3)
    files = _files(toy)
    assert files == _files(again)
    assert len(files) > 5 * (NUM_TRAIN + NUM_VAL)
    for rel in files:
        assert _read(osp.join(toy, rel)) == _read(osp.join(again, rel)), rel


def test_other_seed_gives_other_scenes(toy, tmp_path):
    other = str(tmp_path / 'other')
    generate_toy_data(other, num_train=2, num_val=0, seed=4, layouts=['ade'])
    rel = 'images/training/ADE_train_00000001.jpg'
    assert _read(osp.join(toy, 'ade', rel)) != _read(
        osp.join(other, 'ade', rel))


def test_scene_does_not_depend_on_the_scene_count(toy, tmp_path):
    fewer = str(tmp_path / 'fewer')
    generate_toy_data(fewer, num_train=2, num_val=1, seed=3,
                      layouts=['nyu', 'relative'])
    for rel in _files(fewer):
        if rel.endswith('.txt'):
            continue
        assert _read(osp.join(fewer, rel)) == _read(osp.join(toy, rel)), rel


def test_layout_trees(toy):
    ade = osp.join(toy, 'ade')
    for sub, split, count in (('training', 'train', NUM_TRAIN),
                              ('validation', 'val', NUM_VAL)):
        images = sorted(os.listdir(osp.join(ade, 'images', sub)))
        assert images == [
            f'ADE_{split}_{i:08d}.jpg' for i in range(1, count + 1)
        ]
        assert sorted(os.listdir(osp.join(ade, 'annotations', sub))) == [
            name.replace('.jpg', '.png') for name in images
        ]

    pascal = osp.join(toy, 'pascal_context')
    for split, count in (('train', NUM_TRAIN), ('val', NUM_VAL)):
        with open(osp.join(pascal, 'ImageSets', 'SegmentationContext',
                           f'{split}.txt')) as f:
            names = f.read().split()
        assert len(names) == count
        for name in names:
            assert osp.isfile(osp.join(pascal, 'JPEGImages', f'{name}.jpg'))
            assert osp.isfile(
                osp.join(pascal, 'SegmentationClassContext', f'{name}.png'))

    nyu = osp.join(toy, 'nyu')
    for split, count in (('train', NUM_TRAIN), ('test', NUM_VAL)):
        images = sorted(os.listdir(osp.join(nyu, 'images', split)))
        assert len(images) == count
        for name in images:
            # NYUDataset takes the category from the text before the digits.
            assert name.rsplit('_', 1)[0] in NYUDataset.METAINFO['classes']
            assert osp.isfile(
                osp.join(nyu, 'annotations', split,
                         name.replace('.jpg', '.png')))

    kitti = osp.join(toy, 'kitti')
    with open(osp.join(kitti, 'splits', 'eigen_test_files_with_gt.txt')) as f:
        lines = [line.split() for line in f]
    assert len(lines) == NUM_VAL
    assert sum(depth == 'None' for _, depth, _ in lines) == 1
    for image, depth, focal in lines:
        assert image.startswith('2011_09_26/2011_09_26_drive_')
        assert osp.isfile(osp.join(kitti, 'raw', image))
        assert float(focal) > 0
        if depth != 'None':
            assert osp.isfile(osp.join(kitti, 'gt_depth', depth))

    relative = osp.join(toy, 'relative', 'train')
    maps = os.listdir(osp.join(relative, 'disparity'))
    assert {osp.splitext(m)[1] for m in maps} == {'.png', '.npy', '.pfm'}
    assert len(os.listdir(osp.join(relative, 'masks'))) >= 1


def test_label_ids_are_the_real_class_indices():
    ade = ADE20KDataset.METAINFO['classes']
    pascal = PascalContextDataset59.METAINFO['classes']
    assert set(ADE20K_LABELS) == set(TOY_CLASSES)
    for name in TOY_CLASSES:
        # reduce_zero_label: file value v is class v - 1.
        assert ade[ADE20K_LABELS[name] - 1] == name
        assert pascal[PASCAL_CONTEXT59_LABELS[name] - 1] == name


def test_label_files_match_the_scene(toy):
    scene = render_scene(scene_rng(3, 'train', 0), 96, 128)
    ade = cv2.imread(
        osp.join(toy, 'ade', 'annotations', 'training',
                 'ADE_train_00000001.png'), cv2.IMREAD_UNCHANGED)
    pascal = cv2.imread(
        osp.join(toy, 'pascal_context', 'SegmentationClassContext',
                 'train_00000.png'), cv2.IMREAD_UNCHANGED)
    assert ade.dtype == np.uint8 and ade.shape == (96, 128)
    for toy_id, name in enumerate(TOY_CLASSES):
        region = scene.labels == toy_id
        assert (ade[region] == ADE20K_LABELS[name]).all()
        assert (pascal[region] == PASCAL_CONTEXT59_LABELS[name]).all()
    assert (ade[scene.labels == OTHER] == 0).all()
    assert (pascal[scene.labels == OTHER] == 0).all()


def test_depth_files_follow_each_convention(toy):
    for path in glob.glob(osp.join(toy, 'nyu', 'annotations', '*', '*.png')):
        depth = cv2.imread(path, cv2.IMREAD_UNCHANGED)
        assert depth.dtype == np.uint16
        metres = depth[depth > 0] / 1000.0
        assert metres.min() >= MIN_DEPTH and metres.max() <= MAX_DEPTH
        # Kinect-like holes, but only a few.
        assert 0 < (depth == 0).mean() < 0.2

    for path in glob.glob(osp.join(toy, 'kitti', 'gt_depth', '**', '*.png'),
                          recursive=True):
        depth = cv2.imread(path, cv2.IMREAD_UNCHANGED)
        assert depth.dtype == np.uint16
        height = depth.shape[0]
        assert not depth[:int(0.35 * height)].any()  # no LiDAR up there
        lower = depth[int(0.35 * height):]
        assert 0.03 < (lower > 0).mean() < 0.17
        metres = depth[depth > 0] / KITTI_PNG_SCALE
        assert metres.min() >= MIN_DEPTH and metres.max() <= MAX_DEPTH


def test_kitti_depth_equals_the_scene_depth(toy):
    scene = render_scene(scene_rng(3, 'train', 1), 96, 128)
    path = osp.join(toy, 'kitti', 'gt_depth', '2011_09_26_drive_0001_sync',
                    'proj_depth', 'groundtruth', 'image_02',
                    '0000000001.png')
    depth = cv2.imread(path, cv2.IMREAD_UNCHANGED) / KITTI_PNG_SCALE
    valid = depth > 0
    np.testing.assert_allclose(
        depth[valid], scene.depth[valid], atol=0.5 / KITTI_PNG_SCALE)


def test_relative_maps_are_affine_disparity(toy):
    root = osp.join(toy, 'relative', 'train')
    for index in range(3):  # png, npy, pfm
        scene = render_scene(scene_rng(3, 'train', index), 96, 128)
        stem = f'train_{index:05d}'
        fmt = ('png', 'npy', 'pfm')[index]
        path = osp.join(root, 'disparity', f'{stem}.{fmt}')
        if fmt == 'png':
            stored = cv2.imread(path, cv2.IMREAD_UNCHANGED)
            assert stored.dtype == np.uint16
            disparity = stored / 1000.0
        elif fmt == 'npy':
            disparity = np.load(path)
        else:
            disparity, _ = read_pfm(path)
        valid = np.isfinite(disparity) & (disparity > 0)
        assert not valid[scene.labels == SKY].any()
        # disparity = scale / depth + shift, with unknown scale and shift.
        inverse = 1.0 / scene.depth[valid]
        fit = np.polyfit(inverse, disparity[valid], 1)
        assert 1.0 <= fit[0] <= 2.0 and -0.01 <= fit[1] <= 0.06
        residual = disparity[valid] - np.polyval(fit, inverse)
        assert np.abs(residual).max() < 2e-3


def test_scene_geometry_and_appearance():
    scenes = [
        render_scene(scene_rng(0, 'train', i), 96, 128) for i in range(12)
    ]
    for scene in scenes:
        assert scene.depth.dtype == np.float32
        assert scene.depth.min() >= MIN_DEPTH
        assert scene.depth.max() <= MAX_DEPTH
        assert set(np.unique(scene.labels)) <= set(range(6)) | {OTHER}
        # On the floor, depth grows with height in the image (planar
        # perspective): along each column it falls from top to bottom.
        floor = np.where(scene.labels == FLOOR, scene.depth, np.nan)
        steps = np.diff(floor, axis=0)
        assert (steps[np.isfinite(steps)] < 0).all()
    pixels = {k: [] for k in (WALL, FLOOR, CABINET, PLATE, TREE)}
    for scene in scenes:
        for k in pixels:
            pixels[k].append(scene.image[scene.labels == k].reshape(-1, 3))
    mean = {k: np.concatenate(v).mean(0) for k, v in pixels.items()}
    assert mean[TREE][1] > mean[TREE][0] + 20  # green leaves
    assert mean[CABINET][0] > mean[CABINET][2] + 30  # brown wood
    assert mean[PLATE].min() > 150  # light glaze
    # Occlusion order: where a shape borders the background (left/right),
    # the shape is the nearer surface; shapes stand on the floor, so even
    # the floor beside their base is no nearer. (1 %: the slanted wall's
    # depth changes from one column to the next.)
    shapes = (CABINET, PLATE, TREE, OTHER)
    checked = 0
    for s in scenes:
        is_shape = np.isin(s.labels, shapes)
        for a, b in ((slice(None, -1), slice(1, None)),
                     (slice(1, None), slice(None, -1))):
            border = is_shape[:, a] & ~is_shape[:, b]
            near, far = s.depth[:, a][border], s.depth[:, b][border]
            assert (near <= far * 1.01).all()
            checked += border.sum()
    assert checked > 100


def test_many_scenes_are_fast(tmp_path):
    start = time.time()
    generate_toy_data(str(tmp_path), num_train=100, num_val=0, seed=1)
    # About 1 s on one core; the bound leaves room for a loaded machine.
    assert time.time() - start < 30


def test_cli_writes_the_layouts(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location(
        'make_toy_data', osp.join(REPO, 'tools', 'misc', 'make_toy_data.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    out = str(tmp_path / 'cli')
    assert tool.main([out, '--num-train', '2', '--num-val', '1', '--size',
                      '32', '48', '--layouts', 'ade', 'nyu']) == 0
    assert sorted(os.listdir(out)) == ['ade', 'nyu']
    image = cv2.imread(
        osp.join(out, 'ade', 'images', 'training', 'ADE_train_00000001.jpg'))
    assert image.shape == (32, 48, 3)
    assert 'data_root=' in capsys.readouterr().out
    with pytest.raises(ValueError, match='unknown layouts'):
        generate_toy_data(out, layouts=['cityscapes'])

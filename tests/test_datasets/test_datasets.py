"""Data sets, loading transforms, PFM, the check tool and the converters.

Every data set is built from the real base configs (data_root pointed at a
toy set generated here) and read through the real pipelines.
"""
import importlib.util
import os
import os.path as osp
import shutil

import cv2
import numpy as np
import pytest
from mmengine.config import Config
from mmseg.registry import DATASETS, TRANSFORMS

from dpt_mm.datasets.check import (DepthCheckOptions, build_datasets_for_check,
                                   check_dataset, check_sample)
from dpt_mm.datasets.pfm import decode_pfm, encode_pfm, read_pfm, write_pfm
from dpt_mm.datasets.toy_scenes import (ADE20K_LABELS, OTHER,
                                        PASCAL_CONTEXT59_LABELS, SKY,
                                        TOY_CLASSES, generate_toy_data,
                                        render_scene, scene_rng)
from dpt_mm.datasets.transforms.loading import DataFileError

REPO = osp.abspath(osp.join(osp.dirname(__file__), '../..'))
CONFIGS = osp.join(REPO, 'configs', '_base_', 'datasets')
SEED, NUM_TRAIN, NUM_VAL, SIZE = 5, 8, 11, (96, 128)


def _load_tool(*parts):
    path = osp.join(REPO, 'tools', *parts)
    spec = importlib.util.spec_from_file_location(parts[-1][:-3], path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def toy(tmp_path_factory):
    out = str(tmp_path_factory.mktemp('toy'))
    generate_toy_data(out, NUM_TRAIN, NUM_VAL, size=SIZE, seed=SEED)
    return out


def _config(name, data_root, split='val'):
    cfg = Config.fromfile(osp.join(CONFIGS, f'{name}.py'))
    cfg[f'{split}_dataloader'].dataset.data_root = data_root
    return cfg


def _build(name, data_root, split='val', **overrides):
    cfg = _config(name, data_root, split)
    dataset_cfg = cfg[f'{split}_dataloader'].dataset
    dataset_cfg.update(overrides)
    return DATASETS.build(dataset_cfg)


def _scene(split, index):
    return render_scene(scene_rng(SEED, split, index), *SIZE)


def _expected_labels(scene, lut):
    """What LoadAnnotations should give: reduce_zero_label applied."""
    labels = np.full(scene.labels.shape, 255, np.int64)
    for toy_id, name in enumerate(TOY_CLASSES):
        labels[scene.labels == toy_id] = lut[name] - 1
    return labels


# ----------------------------------------------------------- data sets --


@pytest.mark.parametrize('name,layout,lut', [
    ('ade20k', 'ade', ADE20K_LABELS),
    ('pascal_context_59', 'pascal_context', PASCAL_CONTEXT59_LABELS),
])
def test_segmentation_sets_read_the_toy_layout(toy, name, layout, lut):
    val = _build(name, osp.join(toy, layout), 'val')
    assert len(val) == NUM_VAL
    sample = val[0]
    inputs, data_sample = sample['inputs'], sample['data_samples']
    # The test pipeline resizes the image (longer side 520) but loads the
    # labels after Resize, at the original size.
    assert inputs.dtype.is_floating_point is False and inputs.shape[0] == 3
    assert max(inputs.shape[1:]) == 520
    gt = data_sample.gt_sem_seg.data[0].numpy()
    assert gt.shape == SIZE
    np.testing.assert_array_equal(gt, _expected_labels(_scene('val', 0), lut))
    assert data_sample.metainfo['reduce_zero_label'] is True

    train = _build(name, osp.join(toy, layout), 'train')
    assert len(train) == NUM_TRAIN
    sample = train[1]
    gt = sample['data_samples'].gt_sem_seg.data
    assert gt.shape[1:] == sample['inputs'].shape[1:]
    values = set(np.unique(gt.numpy())) - {255}
    assert values and max(values) < len(train.metainfo['classes'])


def test_ade_with_the_toy_classes_only(toy):
    # metainfo classes select a subset: mmseg's label_map renumbers them.
    dataset = _build('ade20k', osp.join(toy, 'ade'), 'val',
                     metainfo=dict(classes=TOY_CLASSES))
    gt = dataset[2]['data_samples'].gt_sem_seg.data[0].numpy()
    scene = _scene('val', 2)
    expected = np.where(scene.labels == OTHER, 255, scene.labels)
    np.testing.assert_array_equal(gt, expected)


def test_nyu_depth_in_metres(toy):
    dataset = _build('nyu', osp.join(toy, 'nyu'), 'val')
    assert len(dataset) == NUM_VAL
    sample = dataset[3]
    depth = sample['data_samples'].gt_depth_map.data[0].numpy()
    assert depth.dtype == np.float32 and depth.shape == SIZE
    assert sample['inputs'].shape == (3, *SIZE)
    valid = depth > 0
    assert 0.8 < valid.mean() < 1.0  # holes are 0
    meta = sample['data_samples'].metainfo
    # NYUDataset sorts by name (<category>_<id>); the id is the scene index.
    scene_index = int(osp.splitext(meta['img_path'])[0].rsplit('_', 1)[1])
    np.testing.assert_allclose(
        depth[valid], _scene('val', scene_index).depth[valid],
        atol=5e-4 + 1e-6)
    assert meta['category_id'] >= 0  # NYUDataset parsed the category
    assert meta['depth_map_path'].endswith('.png')

    train = _build('nyu', osp.join(toy, 'nyu'), 'train')
    sample = train[0]
    depth = sample['data_samples'].gt_depth_map.data
    assert depth.shape[1:] == sample['inputs'].shape[1:]


def test_kitti_split_file_and_sparse_depth(toy):
    dataset = _build('kitti', osp.join(toy, 'kitti'), 'val')
    # Index 9 of the toy test list has "None" ground truth: dropped.
    assert len(dataset) == NUM_VAL - 1
    info = dataset.get_data_info(0)
    assert info['depth_scale'] == 256
    sample = dataset[0]
    depth = sample['data_samples'].gt_depth_map.data[0].numpy()
    assert depth.shape == SIZE
    valid = depth > 0
    assert 0.02 < valid.mean() < 0.15  # sparse LiDAR
    scene = _scene('val', 0)
    np.testing.assert_allclose(depth[valid], scene.depth[valid],
                               atol=1 / 512 + 1e-6)
    assert sample['data_samples'].metainfo['focal'] == pytest.approx(
        scene.focal, abs=1e-4)

    kept = _build('kitti', osp.join(toy, 'kitti'), 'val',
                  drop_missing_depth=False)
    assert len(kept) == NUM_VAL
    assert kept.get_data_info(9)['depth_map_path'] is None
    with pytest.raises(ValueError, match='depth_map_path is None'):
        kept[9]


def test_kitti_split_line_errors_name_the_line(tmp_path):
    (tmp_path / 'split.txt').write_text('a.png b.png 721.5\n'
                                        'only_one_field\n')
    with pytest.raises(ValueError, match=r'split.txt:2'):
        DATASETS.build(
            dict(type='KITTIDepthDataset', data_root=str(tmp_path),
                 ann_file='split.txt'))


def test_relative_depth_formats_masks_and_invalid_values(toy):
    dataset = _build('relative_depth', osp.join(toy, 'relative'), 'val')
    assert len(dataset) == NUM_VAL
    formats, planted = set(), 0
    for index in range(NUM_VAL):
        info = dataset.get_data_info(index)
        suffix = osp.splitext(info['depth_map_path'])[1]
        formats.add(suffix)
        assert (info['mask_path'] is not None) == (index % 4 == 0)
        assert info['depth_map_type'] == 'disparity'
        depth = dataset[index]['data_samples'].gt_depth_map.data[0].numpy()
        assert depth.shape == SIZE and np.isfinite(depth).all()
        if suffix != '.png':
            raw = (np.load(info['depth_map_path']) if suffix == '.npy' else
                   read_pfm(info['depth_map_path'])[0])
            bad = ~np.isfinite(raw) | (raw < 0)
            assert (depth[bad] == 0).all()
            planted += bad.sum()
        scene = _scene('val', index)
        valid = depth > 0
        assert not valid[scene.labels == SKY].any()
        if info['mask_path'] is not None:
            mask = cv2.imread(info['mask_path'], cv2.IMREAD_UNCHANGED) > 0
            assert not valid[~mask].any() and valid[mask].any()
        # The map holds disparity = s / depth + t: 1 / gt is affine in the
        # true inverse depth.
        fit = np.polyfit(1 / scene.depth[valid], 1 / depth[valid], 1)
        residual = 1 / depth[valid] - np.polyval(fit, 1 / scene.depth[valid])
        assert np.abs(residual).max() < 2e-3
    assert formats == {'.png', '.npy', '.pfm'}
    # Scenes 5 (.pfm, +inf) and 10 (.npy, NaN) carry invalid values.
    assert planted > 2 * 10


def test_train_pipelines_keep_maps_aligned(toy):
    # RandomFlip with prob 1: image and depth must flip together.
    root = osp.join(toy, 'nyu')
    pipeline = [
        dict(type='LoadImageChecked'),
        dict(type='LoadDepthMap', depth_scale=1000),
        dict(type='RandomFlip', prob=1.0),
        dict(type='PackSegInputs'),
    ]
    flipped = _build('nyu', root, 'val', pipeline=pipeline)[0]
    plain = _build('nyu', root, 'val')[0]
    np.testing.assert_array_equal(
        flipped['data_samples'].gt_depth_map.data.numpy(),
        plain['data_samples'].gt_depth_map.data.numpy()[..., ::-1])
    np.testing.assert_array_equal(flipped['inputs'].numpy(),
                                  plain['inputs'].numpy()[..., ::-1])


def test_relative_dataset_errors(tmp_path):
    root = tmp_path / 'rel'
    (root / 'images').mkdir(parents=True)
    (root / 'depths').mkdir()
    with pytest.raises(ValueError, match='no images'):
        DATASETS.build(dict(type='RelativeDepthDataset', data_root=str(root)))
    image = np.zeros((8, 8, 3), np.uint8)
    cv2.imwrite(str(root / 'images' / 'a.jpg'), image)
    cv2.imwrite(str(root / 'images' / 'b.jpg'), image)
    np.save(root / 'depths' / 'a.npy', np.ones((8, 8), np.float32))
    with pytest.raises(ValueError, match=r'1 images have no map[\s\S]*b\.jpg'):
        DATASETS.build(dict(type='RelativeDepthDataset', data_root=str(root)))
    np.save(root / 'depths' / 'b.npy', np.ones((8, 8), np.float32))
    cv2.imwrite(str(root / 'depths' / 'b.png'), np.ones((8, 8), np.uint16))
    with pytest.raises(ValueError, match='ambiguous'):
        DATASETS.build(dict(type='RelativeDepthDataset', data_root=str(root)))
    os.remove(root / 'depths' / 'b.png')
    dataset = DATASETS.build(
        dict(type='RelativeDepthDataset', data_root=str(root),
             map_type='depth'))
    assert [osp.basename(i['img_path']) for i in dataset] == ['a.jpg',
                                                              'b.jpg']


def test_empty_data_roots_give_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match='split file not found'):
        _build('kitti', str(tmp_path), 'train')
    (tmp_path / 'splits').mkdir()
    (tmp_path / 'splits' / 'eigen_train_files_with_gt.txt').write_text('')
    with pytest.raises(ValueError, match='no samples'):
        _build('kitti', str(tmp_path), 'train')
    with pytest.raises(FileNotFoundError, match='image folder not found'):
        _build('relative_depth', str(tmp_path), 'train')


# ---------------------------------------------------------- transforms --


def _load_depth(path, **kwargs):
    transform = TRANSFORMS.build(dict(type='LoadDepthMap', **kwargs))
    return transform(dict(depth_map_path=str(path), seg_fields=[]))


def test_load_depth_map_16bit_png_and_seg_fields(tmp_path):
    stored = np.array([[0, 1000], [2500, 65535]], np.uint16)
    cv2.imwrite(str(tmp_path / 'd.png'), stored)
    results = _load_depth(tmp_path / 'd.png', depth_scale=1000)
    np.testing.assert_allclose(results['gt_depth_map'],
                               [[0, 1], [2.5, 65.535]], rtol=1e-6)
    assert results['gt_depth_map'].dtype == np.float32
    assert results['seg_fields'] == ['gt_depth_map']
    assert results['depth_rescale_factor'] == pytest.approx(1e-3)
    # Without an explicit scale, the data info's applies (KITTI: 256).
    results = TRANSFORMS.build(dict(type='LoadDepthMap'))(
        dict(depth_map_path=str(tmp_path / 'd.png'), depth_scale=256))
    assert results['gt_depth_map'][1, 0] == pytest.approx(2500 / 256)


def test_load_depth_map_rejects_8bit_png(tmp_path):
    path = tmp_path / 'eight.png'
    cv2.imwrite(str(path), np.full((4, 4), 200, np.uint8))
    with pytest.raises(DataFileError, match=r'8-bit.*eight\.png'):
        _load_depth(path, depth_scale=1000)
    results = _load_depth(path, allow_8bit=True)
    assert (results['gt_depth_map'] == 200).all()


def test_load_depth_map_masks_invalid_values(tmp_path):
    values = np.array([[1.0, np.nan], [np.inf, -2.0], [-np.inf, 3.0]],
                      np.float32)
    np.save(tmp_path / 'd.npy', values)
    write_pfm(str(tmp_path / 'd.pfm'), values)
    for name in ('d.npy', 'd.pfm'):
        depth = _load_depth(tmp_path / name)['gt_depth_map']
        np.testing.assert_array_equal(depth, [[1, 0], [0, 0], [0, 3]])
    # A validity mask zeroes more; disparity maps are inverted.
    cv2.imwrite(str(tmp_path / 'm.png'),
                np.array([[0, 255], [255, 255], [255, 1]], np.uint8))
    transform = TRANSFORMS.build(
        dict(type='LoadDepthMap', map_type='disparity'))
    depth = transform(
        dict(depth_map_path=str(tmp_path / 'd.npy'),
             mask_path=str(tmp_path / 'm.png')))['gt_depth_map']
    np.testing.assert_allclose(depth, [[0, 0], [0, 0], [0, 1 / 3]])
    cv2.imwrite(str(tmp_path / 'small.png'), np.ones((2, 2), np.uint8))
    with pytest.raises(DataFileError, match=r'mask size.*small\.png'):
        transform(
            dict(depth_map_path=str(tmp_path / 'd.npy'),
                 mask_path=str(tmp_path / 'small.png')))


def test_load_depth_map_missing_and_corrupt_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r'depth map not found.*'
                       r'nothere\.png'):
        _load_depth(tmp_path / 'nothere.png')
    (tmp_path / 'junk.png').write_bytes(b'not a png at all')
    with pytest.raises(DataFileError, match=r'junk\.png'):
        _load_depth(tmp_path / 'junk.png')
    cv2.imwrite(str(tmp_path / 'rgb.png'), np.zeros((4, 4, 3), np.uint16))
    with pytest.raises(DataFileError, match=r'single channel.*rgb\.png'):
        _load_depth(tmp_path / 'rgb.png')


def test_load_image_checked(tmp_path, toy):
    load = TRANSFORMS.build(dict(type='LoadImageChecked'))
    source = osp.join(toy, 'ade', 'images', 'training',
                      'ADE_train_00000001.jpg')
    good = load(dict(img_path=source))['img']
    assert good.shape == (*SIZE, 3) and good.dtype == np.uint8

    data = open(source, 'rb').read()
    truncated = tmp_path / 'truncated.jpg'
    truncated.write_bytes(data[:len(data) * 3 // 4])
    with pytest.raises(DataFileError, match=r'truncated JPEG.*truncated\.jpg'):
        load(dict(img_path=str(truncated)))
    with pytest.raises(FileNotFoundError, match=r'missing\.jpg'):
        load(dict(img_path=str(tmp_path / 'missing.jpg')))
    (tmp_path / 'empty.jpg').write_bytes(b'')
    with pytest.raises(DataFileError, match=r'empty image file.*empty\.jpg'):
        load(dict(img_path=str(tmp_path / 'empty.jpg')))
    # ignore_empty keeps mmcv's behaviour: None, the data set refetches.
    lenient = TRANSFORMS.build(
        dict(type='LoadImageChecked', ignore_empty=True))
    assert lenient(dict(img_path=str(truncated))) is None

    gray = np.arange(64, dtype=np.uint8).reshape(8, 8)
    cv2.imwrite(str(tmp_path / 'gray.png'), gray)
    img = load(dict(img_path=str(tmp_path / 'gray.png')))['img']
    assert img.shape == (8, 8, 3)
    np.testing.assert_array_equal(img[..., 1], gray)
    bgra = np.dstack([np.full((8, 8), c, np.uint8) for c in (10, 20, 30, 0)])
    cv2.imwrite(str(tmp_path / 'rgba.png'), bgra)
    img = load(dict(img_path=str(tmp_path / 'rgba.png')))['img']
    np.testing.assert_array_equal(img, bgra[..., :3])


def test_missing_annotation_error_names_the_file(toy, tmp_path):
    root = str(tmp_path / 'ade')
    shutil.copytree(osp.join(toy, 'ade'), root)
    missing = osp.join(root, 'annotations', 'validation',
                       'ADE_val_00000002.png')
    os.remove(missing)
    dataset = _build('ade20k', root, 'val')
    with pytest.raises(FileNotFoundError, match='ADE_val_00000002.png'):
        dataset[1]


# ----------------------------------------------------------------- PFM --


@pytest.mark.parametrize('little_endian', [True, False])
@pytest.mark.parametrize('shape', [(5, 7), (4, 3, 3)])
def test_pfm_round_trip(tmp_path, little_endian, shape):
    image = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    path = str(tmp_path / 'x.pfm')
    write_pfm(path, image, scale=2.5, little_endian=little_endian)
    decoded, scale = read_pfm(path)
    np.testing.assert_array_equal(decoded, image)
    assert scale == 2.5 and decoded.dtype == np.float32


def test_pfm_header_sign_is_byte_order_and_rows_go_bottom_up():
    top_down = np.array([[1, 2], [3, 4]], np.float32)
    # Written by hand: bottom row (3, 4) first.
    bottom_up = np.array([3, 4, 1, 2], np.float32)
    little = b'Pf\n2 2\n-1.0\n' + bottom_up.astype('<f4').tobytes()
    big = b'Pf\n2 2\n1.0\n' + bottom_up.astype('>f4').tobytes()
    for data in (little, big):
        decoded, scale = decode_pfm(data)
        np.testing.assert_array_equal(decoded, top_down)
        assert scale == 1.0
    assert encode_pfm(top_down) == little
    assert encode_pfm(top_down, little_endian=False) == big
    with pytest.raises(ValueError, match='size mismatch'):
        decode_pfm(little[:-4])
    with pytest.raises(ValueError, match='not a PFM'):
        decode_pfm(b'P6\n2 2\n255\n')


# ---------------------------------------------------------- check tool --


def _plant(path, array):
    cv2.imwrite(path, array)


def test_check_tool_finds_each_planted_fault(toy, tmp_path):
    ade = str(tmp_path / 'ade')
    shutil.copytree(osp.join(toy, 'ade'), ade)
    img_dir = osp.join(ade, 'images', 'training')
    ann_dir = osp.join(ade, 'annotations', 'training')
    name = 'ADE_train_{:08d}'.format
    data = open(osp.join(img_dir, name(1) + '.jpg'), 'rb').read()
    with open(osp.join(img_dir, name(1) + '.jpg'), 'wb') as f:
        f.write(data[:len(data) // 2])
    os.remove(osp.join(ann_dir, name(2) + '.png'))
    _plant(osp.join(ann_dir, name(3) + '.png'), np.ones((50, 60), np.uint8))
    labels = cv2.imread(osp.join(ann_dir, name(4) + '.png'), -1)
    labels[0, 0] = 200  # ADE20K has 150 classes: 1..150 in the files
    _plant(osp.join(ann_dir, name(4) + '.png'), labels)

    cfg = _config('ade20k', ade, 'train')
    (dataset, options), = build_datasets_for_check(cfg, 'train')
    problems = check_dataset(dataset, options)
    found = {osp.basename(p.path): p.reason for p in problems}
    assert set(found) == {
        name(1) + '.jpg', name(2) + '.png', name(3) + '.png',
        name(4) + '.png'
    }
    assert 'truncated JPEG' in found[name(1) + '.jpg']
    assert 'missing annotation' in found[name(2) + '.png']
    assert 'size 60x50 differs from the image size 128x96' in found[name(3) +
                                                                   '.png']
    assert 'label values 200 ' in found[name(4) + '.png']

    nyu = str(tmp_path / 'nyu')
    shutil.copytree(osp.join(toy, 'nyu'), nyu)
    depth_dir = osp.join(nyu, 'annotations', 'train')
    maps = sorted(os.listdir(depth_dir))
    _plant(osp.join(depth_dir, maps[0]), np.zeros(SIZE, np.uint16))
    _plant(osp.join(depth_dir, maps[1]), np.full(SIZE, 3, np.uint8))
    cfg = _config('nyu', nyu, 'train')
    (dataset, options), = build_datasets_for_check(cfg, 'train')
    assert options == DepthCheckOptions(depth_scale=1000, allow_8bit=False)
    found = {osp.basename(p.path): p.reason for p in
             check_dataset(dataset, options)}
    assert set(found) == {maps[0], maps[1]}
    assert 'no valid pixel' in found[maps[0]]
    assert '8-bit depth map' in found[maps[1]]


def test_check_sample_label_ranges(toy, tmp_path):
    image = osp.join(toy, 'ade', 'images', 'training',
                     'ADE_train_00000001.jpg')
    labels = np.zeros(SIZE, np.uint8)
    labels[0, :4] = [1, 59, 60, 255]
    path = str(tmp_path / 'l.png')
    cv2.imwrite(path, labels)
    info = dict(img_path=image, seg_map_path=path, reduce_zero_label=True)
    # reduce_zero_label: 0 and 255 are ignored, 1..59 are the 59 classes.
    problems = check_sample(info, num_classes=59)
    assert len(problems) == 1 and 'label values 60 ' in problems[0].reason
    info['reduce_zero_label'] = False
    problems = check_sample(info, num_classes=59)
    assert 'label values 59, 60 ' in problems[0].reason
    assert check_sample(info, num_classes=61) == []


def test_check_cli_exit_codes(toy, tmp_path, capsys):
    tool = _load_tool('misc', 'check_dataset.py')
    config = osp.join(CONFIGS, 'kitti.py')
    root = osp.join(toy, 'kitti')
    assert tool.main([config, '--split', 'val', '--quiet', '--cfg-options',
                      f'val_dataloader.dataset.data_root={root}']) == 0
    assert 'all files are fine' in capsys.readouterr().out

    broken = str(tmp_path / 'kitti')
    shutil.copytree(root, broken)
    with open(osp.join(broken, 'splits',
                       'eigen_test_files_with_gt.txt')) as f:
        depth = f.readline().split()[1]
    os.remove(osp.join(broken, 'gt_depth', depth))
    assert tool.main([config, '--split', 'val', '--quiet', '--cfg-options',
                      f'val_dataloader.dataset.data_root={broken}']) == 1
    out = capsys.readouterr().out
    assert f'{osp.join(broken, "gt_depth", depth)}: missing depth' in out

    empty = tmp_path / 'empty'
    empty.mkdir()
    config = osp.join(CONFIGS, 'ade20k.py')
    assert tool.main([config, '--cfg-options',
                      f'train_dataloader.dataset.data_root={empty}']) == 2
    err = capsys.readouterr().err
    assert "data_prefix img_path='images/training' is not a folder" in err
    (empty / 'images' / 'training').mkdir(parents=True)
    (empty / 'annotations' / 'training').mkdir(parents=True)
    assert tool.main([config, '--cfg-options',
                      f'train_dataloader.dataset.data_root={empty}']) == 2
    assert 'ADE20KDataset: no samples found' in capsys.readouterr().err


# ---------------------------------------------------------- converters --


def test_nyu_converter_writes_what_nyu_dataset_reads(tmp_path):
    nyu = _load_tool('dataset_converters', 'nyu.py')
    rng = np.random.default_rng(0)
    depth = rng.uniform(0.5, 9.0, size=(12, 16)).astype(np.float32)
    depth[0, 0], depth[0, 1], depth[0, 2] = np.nan, -1.0, 70.0
    frames = [('kitchen_0028a_0001', rng.integers(0, 255, (12, 16, 3),
                                                  dtype=np.uint8), depth),
              ('living_room_0002_0007',
               np.zeros((12, 16, 3), np.uint8), np.ones((12, 16)))]
    names = nyu.write_nyu_frames(iter(frames), str(tmp_path), 'test')
    assert names == ['kitchen_0028a_0001', 'living_room_0002_0007']
    stored = cv2.imread(
        str(tmp_path / 'annotations' / 'test' / 'kitchen_0028a_0001.png'),
        cv2.IMREAD_UNCHANGED)
    assert stored.dtype == np.uint16
    assert list(stored[0, :3]) == [0, 0, 65535]  # NaN, negative, saturated
    np.testing.assert_array_equal(stored[1:], np.round(depth[1:] * 1000))

    dataset = _build('nyu', str(tmp_path), 'val')
    assert len(dataset) == 2
    classes = dataset.metainfo['classes']
    assert [classes[dataset.get_data_info(i)['category_id']]
            for i in range(2)] == ['kitchen', 'living_room']
    gt = dataset[0]['data_samples'].gt_depth_map.data[0].numpy()
    np.testing.assert_allclose(gt[1:], depth[1:], atol=5e-4 + 1e-6)

    with pytest.raises(ValueError, match='depth size'):
        nyu.write_nyu_frames(
            iter([('bathroom_0001', frames[1][1], np.ones((3, 3)))]),
            str(tmp_path), 'test')
    if importlib.util.find_spec('h5py') is None:
        with pytest.raises(ImportError, match='h5py'):
            next(nyu.read_nyu_mat('nyu_depth_v2_labeled.mat', [0]))


def test_kitti_converter_builds_the_dataset_layout(tmp_path):
    kitti = _load_tool('dataset_converters', 'kitti_depth.py')
    raw, ann, out = tmp_path / 'raw', tmp_path / 'ann', tmp_path / 'out'
    drive = '2011_09_26_drive_0002_sync'
    (raw / '2011_09_26').mkdir(parents=True)
    (raw / '2011_09_26' / 'calib_cam_to_cam.txt').write_text(
        'P_rect_02: 7.215377e+02 0 6.0955e+02 4.485e+01\n'
        'P_rect_03: 7.0e+02 0 6.0955e+02 -3.395e+02\n')
    for camera in ('image_02', 'image_03'):
        folder = raw / '2011_09_26' / drive / camera / 'data'
        folder.mkdir(parents=True)
        for frame in (5, 6):
            cv2.imwrite(str(folder / f'{frame:010d}.png'),
                        np.zeros((10, 30, 3), np.uint8))
    gt = ann / 'val' / drive / 'proj_depth' / 'groundtruth' / 'image_02'
    gt.mkdir(parents=True)
    sparse = np.zeros((10, 30), np.uint16)
    sparse[7, 3] = 2560
    cv2.imwrite(str(gt / '0000000005.png'), sparse)
    lines = [
        f'2011_09_26/{drive}/image_02/data/0000000005.jpg '
        f'2011_09_26/{drive}/image_03/data/0000000005.jpg',  # monodepth
        f'2011_09_26/{drive} 6 l',  # monodepth2, no ground truth
        f'2011_09_26/{drive} 6 r',
        f'2011_09_26/{drive} 9 l',  # no such image: skipped
    ]
    counts = kitti.convert_split(lines, str(raw), str(ann), str(out),
                                 'eigen_test_files_with_gt.txt')
    assert counts == dict(frames=3, with_gt=1, missing_image=1)
    with open(out / 'splits' / 'eigen_test_files_with_gt.txt') as f:
        written = [line.split() for line in f]
    assert written[0] == [
        f'2011_09_26/{drive}/image_02/data/0000000005.png',
        f'{drive}/proj_depth/groundtruth/image_02/0000000005.png', '721.5377'
    ]
    assert written[1][1] == 'None' and written[2][2] == '700.0000'
    assert osp.islink(out / 'raw' / written[0][0])

    dataset = _build('kitti', str(out), 'val')
    assert len(dataset) == 1
    depth = dataset[0]['data_samples'].gt_depth_map.data[0].numpy()
    assert depth[7, 3] == 10.0 and (depth > 0).sum() == 1


@pytest.mark.parametrize('layout,config', [
    ('ade', 'configs/_base_/datasets/ade20k.py'),
    ('nyu', 'configs/_base_/datasets/nyu.py'),
])
def test_annotation_of_the_wrong_size_names_both_files(tmp_path, layout,
                                                       config):
    """A misaligned annotation would train silently on shifted labels."""
    import glob as _glob
    import os as _os

    import cv2 as _cv2
    from mmengine.config import Config as _Config

    from dpt_mm.datasets.toy_scenes import generate_toy_data
    from mmseg.registry import DATASETS as _DATASETS
    generate_toy_data(str(tmp_path), num_train=2, num_val=1, size=(64, 96),
                      seed=0, layouts=(layout, ))
    root = _os.path.join(str(tmp_path), layout)
    split = 'training' if layout == 'ade' else 'train'
    ann = sorted(_glob.glob(_os.path.join(root, 'annotations', split,
                                          '*.png')))[0]
    small = _cv2.imread(ann, _cv2.IMREAD_UNCHANGED)[:50, :70]
    _cv2.imwrite(ann, small)
    cfg = _Config.fromfile(config)
    dataset_cfg = cfg.train_dataloader.dataset
    dataset_cfg.data_root = root
    dataset = _DATASETS.build(dataset_cfg)
    index = [i for i in range(len(dataset))
             if dataset.get_data_info(i).get(
                 'seg_map_path', dataset.get_data_info(i).get(
                     'depth_map_path')) == ann][0]
    with pytest.raises(ValueError, match=r'annotation size 50x70 of .*'
                       + _os.path.basename(ann) + r' differs from the image '
                       r'size 64x96'):
        dataset[index]

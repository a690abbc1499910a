"""init_model / inference_model / DPTInferencer on tiny random DPT models.

The helpers at the top (``write_tiny_model``...) are imported by the other
inference test files.
"""
import os.path as osp
import warnings
from typing import Optional, Tuple

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.registry import init_default_scope

from dpt_mm.apis import (DPTInferencer, inference_model, init_model,
                         resolve_config)
from dpt_mm.apis import inference as inference_module
from dpt_mm.converters import CheckpointMismatchError
from dpt_mm.datasets.transforms import DPTResize, get_dpt_resize_shape
from dpt_mm.models.layers import postprocess as postprocess_module
from mmseg.registry import MODELS

PREPROC = dict(type='SegDataPreProcessor', mean=[127.5] * 3, std=[127.5] * 3,
               bgr_to_rgb=True, pad_val=0, seg_pad_val=0, size_divisor=32)
NUM_CLASSES = 5


def tiny_model_cfg(task: str = 'depth', img_size: int = 64,
                   segmentor: Optional[str] = None,
                   test_cfg: Optional[dict] = None) -> dict:
    """A DPT model config with embed 32, 4 blocks, fusion width 16."""
    backbone = dict(type='DPTViT', img_size=img_size, patch_size=16,
                    embed_dims=32, num_layers=4, num_heads=2,
                    out_indices=(0, 1, 2, 3))
    norm = None if task == 'depth' else dict(type='BN')
    neck = dict(type='DPTNeck', in_channels=32,
                reassemble_channels=(8, 16, 32, 32),
                resample_factors=(4, 2, 1, 0.5), readout_type='project',
                channels=16, fusion_norm_cfg=norm)
    if task == 'depth':
        head = dict(type='DPTDepthHead', in_channels=16, channels=8,
                    loss_decode=dict(type='ScaleShiftInvariantLoss'))
        segmentor = segmentor or 'DPTDepthEstimator'
    else:
        head = dict(type='DPTSegHead', in_channels=16, channels=16,
                    num_classes=NUM_CLASSES, norm_cfg=norm)
        segmentor = segmentor or 'DPTEncoderDecoder'
    return dict(type=segmentor, data_preprocessor=dict(PREPROC),
                backbone=backbone, neck=neck, decode_head=head,
                train_cfg=dict(), test_cfg=test_cfg or dict(mode='whole'))


def randomize(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Seeded random weights with a clearly non-constant output."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.dim() > 1 or 'pos_embed' in name or 'cls_token' in name:
                fan_in = param[0].numel() if param.dim() > 1 else 1
                std = 0.5 if param.dim() <= 1 or 'embed' in name else \
                    1.5 / fan_in ** 0.5
                param.copy_(torch.randn(param.shape, generator=gen) * std)
            else:
                param.copy_(torch.randn(param.shape, generator=gen) * 0.05)
        for name, buf in model.named_buffers():
            if name.endswith('running_var'):
                buf.copy_(torch.rand(buf.shape, generator=gen) + 0.5)
            elif name.endswith('running_mean'):
                buf.copy_(torch.randn(buf.shape, generator=gen) * 0.1)
        head = model.decode_head
        if hasattr(head, 'output_mode'):  # keep most depth values > 0
            head.conv_seg.bias.fill_(1.0)
    return model


def write_tiny_model(folder: str, task: str = 'depth', seed: int = 0,
                     extra_cfg: Optional[dict] = None,
                     **model_kwargs) -> Tuple[str, str]:
    """Write a tiny config and a random checkpoint; return their paths."""
    cfg = dict(model=tiny_model_cfg(task, **model_kwargs))
    cfg.update(extra_cfg or {})
    cfg_path = osp.join(folder, f'tiny_{task}.py')
    Config(cfg).dump(cfg_path)
    init_default_scope('mmseg')  # whichever test runs first
    model = randomize(MODELS.build(Config(cfg).model), seed)
    meta = dict(dataset_meta=dict(
        classes=[f'c{i}' for i in range(NUM_CLASSES)],
        palette=[[40 * i, 255 - 40 * i, 100] for i in range(NUM_CLASSES)]
    )) if task == 'seg' else dict()
    ckpt_path = osp.join(folder, f'tiny_{task}.pth')
    torch.save(dict(state_dict=model.state_dict(), meta=meta), ckpt_path)
    return cfg_path, ckpt_path


def assert_close_rel(actual, expected, rtol: float = 1e-5) -> None:
    """max |actual - expected| <= rtol * max |expected| (batching and
    float32 reordering change the last bits of a deep random network)."""
    actual = torch.as_tensor(np.asarray(actual) if isinstance(
        actual, np.ndarray) else actual)
    expected = torch.as_tensor(np.asarray(expected) if isinstance(
        expected, np.ndarray) else expected)
    assert actual.shape == expected.shape
    scale = expected.abs().max().clamp(min=1e-12)
    error = ((actual - expected).abs().max() / scale).item()
    assert error <= rtol, f'relative error {error:.3g} > {rtol:g}'


def random_image(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A smooth-ish random BGR uint8 image."""
    rng = np.random.RandomState(seed)
    small = rng.randint(0, 256, (max(2, height // 8), max(2, width // 8), 3))
    img = cv2.resize(small.astype(np.uint8), (width, height),
                     interpolation=cv2.INTER_LINEAR)
    noise = rng.randint(-20, 21, img.shape)
    return np.clip(img.astype(np.int32) + noise, 0, 255).astype(np.uint8)


def manual_depth(model, bgr: np.ndarray, size: int = 64) -> torch.Tensor:
    """The published preprocessing/post-processing written out by hand."""
    height, width = bgr.shape[:2]
    new_h, new_w = get_dpt_resize_shape(height, width, size)
    rgb = cv2.resize(bgr.astype(np.float32), (new_w, new_h),
                     interpolation=cv2.INTER_CUBIC)[..., ::-1]
    # mean = std = 0.5 on [0, 1], in the data preprocessor's float32 form.
    x = torch.from_numpy(rgb.copy()).permute(2, 0, 1)[None]
    with torch.no_grad():
        out = model((x - 127.5) / 127.5, mode='tensor')
    return F.interpolate(out, size=(height, width), mode='bicubic',
                         align_corners=False)[0]


@pytest.fixture(scope='module', autouse=True)
def single_thread():
    """One intra-op thread: the tiny models are latency-bound, and on a
    shared 2-core machine extra threads only contend (60x slower convs)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope='module')
def depth_files(tmp_path_factory):
    return write_tiny_model(str(tmp_path_factory.mktemp('depth')), 'depth')


@pytest.fixture(scope='module')
def seg_files(tmp_path_factory):
    return write_tiny_model(str(tmp_path_factory.mktemp('seg')), 'seg')


@pytest.fixture(scope='module')
def depth_model(depth_files):
    from mmengine.registry import init_default_scope
    init_default_scope('mmseg')
    return init_model(*depth_files)


# ---------------------------------------------------------------- DPTResize
def test_resize_shape_matches_transformers():
    pil_dpt = pytest.importorskip(
        'transformers.models.dpt.image_processing_pil_dpt')
    rng = np.random.RandomState(0)
    for _ in range(300):
        height, width = rng.randint(8, 2000, size=2)
        target = (384, 384) if rng.rand() < 0.5 else (352, 1216)
        ref = pil_dpt.get_resize_output_image_size(
            np.zeros((3, height, width)), target, True, 32)
        # Transformers rounds a side of extreme aspect ratios to 0; we keep
        # one multiple.
        assert get_dpt_resize_shape(height, width, target) == \
            (max(ref.height, 32), max(ref.width, 32))
    assert get_dpt_resize_shape(1, 1000) == (32, 384)
    assert get_dpt_resize_shape(1, 1) == (384, 384)


def test_dpt_resize_is_float_opencv_bicubic():
    img = random_image(90, 120)
    out = DPTResize(size=64)(dict(img=img))
    expected = cv2.resize(img.astype(np.float32), (96, 64),
                          interpolation=cv2.INTER_CUBIC)
    assert out['img'].dtype == np.float32
    assert out['img_shape'] == (64, 96)
    np.testing.assert_array_equal(out['img'], expected)
    lower = DPTResize(size=64, resize_method='lower_bound')(dict(img=img))
    assert min(lower['img_shape']) >= 64
    with pytest.raises(ValueError, match='interpolation'):
        DPTResize(interpolation='cubic')


# ---------------------------------------------------------------- init_model
def test_init_model_missing_config(tmp_path):
    missing = str(tmp_path / 'nope.py')
    with pytest.raises(FileNotFoundError, match='nope.py'):
        init_model(missing)


def test_init_model_loads_strictly(depth_files, depth_model):
    cfg_path, ckpt_path = depth_files
    state = torch.load(ckpt_path, weights_only=True)['state_dict']
    for key, value in depth_model.state_dict().items():
        assert torch.equal(value, state[key]), key
    assert not depth_model.training
    assert isinstance(depth_model.cfg, Config)


def test_init_model_refuses_mismatch(depth_files, tmp_path):
    cfg_path, ckpt_path = depth_files
    state = torch.load(ckpt_path, weights_only=True)['state_dict']
    state.pop('decode_head.conv1.weight')
    state['neck.extra.weight'] = torch.zeros(1)
    bad = str(tmp_path / 'bad.pth')
    torch.save(dict(state_dict=state), bad)
    with pytest.raises(CheckpointMismatchError) as info:
        init_model(cfg_path, bad)
    message = str(info.value)
    assert 'bad.pth' in message
    assert 'decode_head.conv1.weight' in message
    assert 'neck.extra.weight' in message


def test_init_model_refuses_pickled_code(depth_files, tmp_path):
    cfg_path, _ = depth_files
    evil = str(tmp_path / 'evil.pth')
    torch.save(dict(state_dict={}, meta=dict(obj=Config())), evil)
    with pytest.raises(Exception, match='evil.pth'):
        init_model(cfg_path, evil)


# ----------------------------------------------------------- inference_model
def test_depth_matches_published_processing(depth_model):
    img = random_image(90, 120)
    result = inference_model(depth_model, img)
    depth = result.pred_depth_map.data
    assert depth.shape == (1, 90, 120)
    assert result.pred_depth_map.metainfo['depth_type'] == 'inverse_depth'
    expected = manual_depth(depth_model, img)
    assert_close_rel(depth, expected)
    assert depth.std() > 1e-3 * depth.abs().max()  # not a constant map


def test_paths_arrays_and_formats(depth_model, tmp_path):
    bgr = random_image(50, 70, seed=1)
    path = str(tmp_path / 'img.png')
    cv2.imwrite(path, bgr)
    from_path = inference_model(depth_model, path)
    from_bgr = inference_model(depth_model, bgr)
    from_rgb = inference_model(depth_model, bgr[..., ::-1].copy(),
                               input_format='rgb')
    assert from_path.img_path == path
    for other in (from_bgr, from_rgb):
        torch.testing.assert_close(other.pred_depth_map.data,
                                   from_path.pred_depth_map.data)

    gray = bgr[..., 0]
    rgba = np.concatenate([bgr, np.full((50, 70, 1), 7, np.uint8)], axis=2)
    gray16 = (gray.astype(np.uint16) * 257)
    for name, arr in (('gray.png', gray), ('rgba.png', rgba),
                      ('gray16.png', gray16)):
        cv2.imwrite(str(tmp_path / name), arr)
    results = inference_model(depth_model, [
        str(tmp_path / 'gray.png'), gray, gray[..., None],
        str(tmp_path / 'rgba.png'), rgba, str(tmp_path / 'gray16.png'),
        gray16
    ])
    assert all(r.pred_depth_map.shape == (50, 70) for r in results)
    # Grayscale = the gray value in all channels; alpha is ignored; 16-bit
    # scales to the same 8-bit image.
    ref_gray = inference_model(depth_model,
                               np.repeat(gray[..., None], 3, axis=2))
    for r in (results[0], results[1], results[2], results[5], results[6]):
        assert_close_rel(r.pred_depth_map.data, ref_gray.pred_depth_map.data)
    for r in results[3:5]:
        assert_close_rel(r.pred_depth_map.data, from_bgr.pred_depth_map.data)


def test_batch_of_mixed_sizes_equals_single_runs(depth_model):
    images = [random_image(90, 120, 2), random_image(64, 64, 3),
              random_image(91, 119, 4), random_image(1, 1, 5)]
    batch = inference_model(depth_model, images)
    assert [r.pred_depth_map.shape for r in batch] == \
        [(90, 120), (64, 64), (91, 119), (1, 1)]
    for img, result in zip(images, batch):
        single = inference_model(depth_model, img)
        assert_close_rel(result.pred_depth_map.data,
                         single.pred_depth_map.data)


def test_huge_image_network_input_is_bounded(depth_model):
    # DPTResize bounds the network input whatever the image size; only the
    # output map is full size.
    result = inference_model(depth_model, np.full((1200, 1600, 3), 90, np.uint8))
    assert result.metainfo['img_shape'] == (64, 96)
    assert result.pred_depth_map.shape == (1200, 1600)


def test_model_without_cfg_uses_default_pipeline(depth_files, depth_model):
    bare = MODELS.build(Config.fromfile(depth_files[0]).model).eval()
    bare.load_state_dict(depth_model.state_dict())
    img = random_image(40, 50)
    assert_close_rel(inference_model(bare, img).pred_depth_map.data,
                     inference_model(depth_model, img).pred_depth_map.data)


def test_bad_inputs_raise_clearly(depth_model, tmp_path):
    empty = tmp_path / 'empty.png'
    empty.write_bytes(b'')
    with pytest.raises(Exception, match='empty.png'):
        inference_model(depth_model, str(empty))
    with pytest.raises(ValueError, match='shape'):
        inference_model(depth_model, np.zeros((4, 4, 2), np.uint8))
    with pytest.raises(ValueError, match='input_format'):
        inference_model(depth_model, np.zeros((4, 4, 3), np.uint8),
                        input_format='bgra')


def test_segmentation_outputs(seg_files):
    model = init_model(*seg_files)
    assert model.dataset_meta['classes'][0] == 'c0'
    img = random_image(90, 120, 6)
    result = inference_model(model, img)
    assert result.pred_sem_seg.data.shape == (1, 90, 120)
    assert result.seg_logits.data.shape == (NUM_CLASSES, 90, 120)
    # Transformers' post-processing: bilinear logits, then argmax.
    new_h, new_w = get_dpt_resize_shape(90, 120, 64)
    rgb = cv2.resize(img.astype(np.float32), (new_w, new_h),
                     interpolation=cv2.INTER_CUBIC)[..., ::-1]
    x = torch.from_numpy(rgb.copy()).permute(2, 0, 1)[None]
    with torch.no_grad():
        logits = model((x - 127.5) / 127.5, mode='tensor')
    logits = F.interpolate(logits, size=(90, 120), mode='bilinear',
                           align_corners=False)[0]
    assert_close_rel(result.seg_logits.data, logits)
    assert torch.equal(result.pred_sem_seg.data[0], logits.argmax(0))
    assert len(torch.unique(result.pred_sem_seg.data)) > 1
    no_logits = inference_model(model, img, return_seg_logits=False)
    assert 'seg_logits' not in no_logits
    assert torch.equal(no_logits.pred_sem_seg.data, result.pred_sem_seg.data)


def test_huge_seg_logits_are_not_kept(seg_files, monkeypatch):
    model = init_model(*seg_files)
    img = random_image(60, 80, 3)
    full = inference_model(model, img)
    monkeypatch.setattr(postprocess_module, 'SEG_LOGITS_BYTES_LIMIT', 1000)
    monkeypatch.setattr(postprocess_module, 'ARGMAX_CHUNK_BYTES', 60 * 80 * 8)
    with pytest.warns(UserWarning, match='seg_logits'):
        small = inference_model(model, img)
    assert 'seg_logits' not in small
    assert torch.equal(small.pred_sem_seg.data, full.pred_sem_seg.data)


def test_chunked_argmax_equals_full(monkeypatch):
    logits = torch.randn(1, 7, 5, 6)
    logits[0, 3] = logits[0, 5]  # ties resolve to the first index
    monkeypatch.setattr(postprocess_module, 'ARGMAX_CHUNK_BYTES', 4 * 9 * 11)
    chunked = postprocess_module.resize_argmax(logits, (9, 11))
    full = F.interpolate(logits, (9, 11), mode='bilinear',
                         align_corners=False)[0].argmax(0, keepdim=True)
    assert torch.equal(chunked, full)


def _count_encode_decode(model, monkeypatch):
    calls = []
    original = model.encode_decode

    def counting(inputs, metas):
        calls.append(tuple(inputs.shape[-2:]))
        return original(inputs, metas)

    monkeypatch.setattr(model, 'encode_decode', counting)
    return calls


def test_segmentation_sliding_window(tmp_path, monkeypatch):
    # A 128×128 network input slides 64×64 windows with stride 48 (3×3).
    cfg_path, ckpt = write_tiny_model(
        str(tmp_path), 'seg',
        test_cfg=dict(mode='slide', crop_size=(64, 64), stride=(48, 48)),
        extra_cfg=dict(test_pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='DPTResize', size=128),
            dict(type='LoadAnnotations'),
            dict(type='PackSegInputs')
        ]))
    model = init_model(cfg_path, ckpt)
    calls = _count_encode_decode(model, monkeypatch)
    result = inference_model(model, random_image(300, 400, 7))
    assert calls == [(64, 64)] * 9
    assert result.pred_sem_seg.shape == (300, 400)
    assert result.seg_logits.data.shape == (NUM_CLASSES, 300, 400)


def test_depth_slide_mode_runs_only_slide(tmp_path, monkeypatch):
    # mmseg 1.2.2 DepthEstimator.inference runs a whole-image pass after
    # 'slide'; inference_model must slide only.
    cfg_path, ckpt = write_tiny_model(
        str(tmp_path), 'depth',
        test_cfg=dict(mode='slide', crop_size=(64, 64), stride=(64, 64)),
        extra_cfg=dict(inference_pipeline=[
            dict(type='LoadImageFromNDArray'),
            dict(type='DPTResize', size=128),
            dict(type='PackSegInputs')
        ]))
    model = init_model(cfg_path, ckpt)
    calls = _count_encode_decode(model, monkeypatch)
    result = inference_model(model, random_image(100, 100, 8))
    assert calls == [(64, 64)] * 4
    assert result.pred_depth_map.shape == (100, 100)


def test_large_network_input_warns(depth_model, monkeypatch):
    monkeypatch.setattr(inference_module, 'LARGE_INPUT_TOKENS', 10)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        inference_model(depth_model, random_image(40, 40))
    assert any('patch tokens' in str(w.message) for w in caught)


# -------------------------------------------------------------- DPTInferencer
def test_inferencer_batches_and_writes(depth_files, depth_model, tmp_path):
    images = [random_image(48, 64, i) for i in range(3)]
    inferencer = DPTInferencer(*depth_files)
    result = inferencer(images, batch_size=2, out_dir=str(tmp_path),
                        show_progress=False)
    assert result.ok and result.names == ['array_0', 'array_1', 'array_2']
    for img, depth in zip(images, result.predictions):
        single = inference_model(depth_model, img).pred_depth_map.data[0]
        assert_close_rel(depth, single)
    for suffix in ('_depth.png', '_depth_raw.png', '_depth_raw.json',
                   '_depth.npy'):
        assert osp.isfile(tmp_path / f'array_1{suffix}'), suffix


def test_inferencer_folder_with_bad_files(depth_files, tmp_path, caplog):
    folder = tmp_path / 'images'
    folder.mkdir()
    for name, seed in (('a.png', 0), ('c.jpg', 1), ('d.png', 2)):
        cv2.imwrite(str(folder / name), random_image(40, 50, seed))
    good = (folder / 'd.png').read_bytes()
    (folder / 'b_truncated.png').write_bytes(good[:len(good) // 2])
    (folder / 'e_empty.jpg').write_bytes(b'')
    (folder / 'notes.txt').write_text('not an image')
    out_dir = tmp_path / 'out'
    result = DPTInferencer(*depth_files)(str(folder), batch_size=2,
                                         out_dir=str(out_dir),
                                         show_progress=False)
    assert [osp.basename(n) for n in result.names] == ['a.png', 'c.jpg',
                                                      'd.png']
    assert [osp.basename(f.name) for f in result.failures] == [
        'b_truncated.png', 'e_empty.jpg']
    assert 'truncated' in result.failures[0].error
    assert all(p.shape == (40, 50) for p in result.predictions)
    for stem in ('a', 'c', 'd'):
        assert (out_dir / f'{stem}_depth.npy').is_file()
    assert not (out_dir / 'b_truncated_depth.npy').exists()


def test_inferencer_errors_and_tiny_images(depth_files, tmp_path):
    inferencer = DPTInferencer(*depth_files)
    empty = tmp_path / 'empty_folder'
    empty.mkdir()
    with pytest.raises(ValueError, match='no images in folder'):
        inferencer(str(empty))
    with pytest.raises(FileNotFoundError, match='missing.png'):
        inferencer(str(tmp_path / 'missing.png'))
    result = inferencer([np.full((1, 1, 3), 200, np.uint8),
                         np.zeros((2, 300), np.uint8)])
    assert [p.shape for p in result.predictions] == [(1, 1), (2, 300)]
    assert all(np.isfinite(p).all() for p in result.predictions)


def test_inferencer_same_stem_in_two_folders(depth_files, tmp_path):
    for folder in ('one', 'two'):
        (tmp_path / folder).mkdir()
        cv2.imwrite(str(tmp_path / folder / 'x.png'), random_image(20, 30))
    out_dir = tmp_path / 'out'
    DPTInferencer(*depth_files)([str(tmp_path / 'one'),
                                 str(tmp_path / 'two')],
                                out_dir=str(out_dir), save_vis=False,
                                save_png16=False)
    assert sorted(p.name for p in out_dir.iterdir()) == ['x_1_depth.npy',
                                                         'x_depth.npy']


def test_inferencer_segmentation_and_config_names(seg_files, tmp_path):
    result = DPTInferencer(*seg_files)(random_image(40, 60),
                                       out_dir=str(tmp_path),
                                       with_side_by_side=True)
    assert result.predictions[0].shape == (40, 60)
    for suffix in ('_seg.png', '_overlay.png', '_seg_labels.png',
                   '_side_by_side.png'):
        assert (tmp_path / f'array_0{suffix}').is_file()
    assert resolve_config('dpt_hybrid_midas').endswith(
        osp.join('configs', 'dpt_hybrid_midas.py'))
    with pytest.raises(FileNotFoundError, match='no_such_config'):
        resolve_config('no_such_config')

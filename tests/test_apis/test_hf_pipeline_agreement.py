"""From photo to depth map: dpt_mm against Transformers, both directions.

A tiny random DPT (ViT or hybrid, depth or segmentation) is saved with
``save_pretrained`` and a ``DPTImageProcessorPil`` (the processor the
pipeline uses here: torchvision is not installed, and with it Transformers
would pick its torchvision backend, another resize implementation). Two
processors: the default one (squash to ``size``, bicubic) and the
published models' one (``keep_aspect_ratio=True, ensure_multiple_of=32``).

* hf2mm.py --config-out, then ``inference_model`` on a non-square JPEG
  must give ``pipeline('depth-estimation')``'s ``predicted_depth`` (or the
  processor's ``post_process_semantic_segmentation`` scores) to 1e-4 of the
  largest value (measured: 3.6e-7 – 1.8e-6, float32 reordering).
* mm2hf.py on that checkpoint must give back the very same ``config.json``
  fields and state dict; a model trained in dpt_mm must give in the
  pipeline what ``inference_model`` gives.

Transformers 5.24 runs a plain-ViT DPT only on square network inputs (it
reshapes the tokens to a square grid) and the hybrid only at
``image_size``; with ``keep_aspect_ratio`` the photos are therefore
non-square ones whose aspect-kept size is square (45×47 → 64×64). The
default processor squashes any photo, so there they are 37×59 and 61×40.
"""
import json
import os.path as osp

import cv2
import numpy as np
import pytest
import torch

transformers = pytest.importorskip('transformers')

from dpt_mm.apis import inference_model, init_model  # noqa: E402
from dpt_mm.converters import (hf_config_to_mm_config,  # noqa: E402
                               hf_processor_to_mm, mm_config_to_hf_config)
from dpt_mm.datasets.transforms import DPTResize  # noqa: E402
from dpt_mm.utils import load_checkpoint_file  # noqa: E402

REPO = osp.abspath(osp.join(osp.dirname(__file__), '../..'))
RTOL = 1e-4
PROCESSORS = {
    'default': dict(size=dict(height=64, width=64)),
    'keep_aspect': dict(size=dict(height=64, width=64),
                        keep_aspect_ratio=True, ensure_multiple_of=32),
}
PHOTOS = {'default': [(37, 59), (61, 40)], 'keep_aspect': [(45, 47)]}


def load_script(name: str):
    import importlib.util
    path = osp.join(REPO, 'tools', 'model_converters', name)
    spec = importlib.util.spec_from_file_location(name[:-3], path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def vit_config(**kwargs):
    base = dict(hidden_size=32, num_hidden_layers=4, num_attention_heads=4,
                intermediate_size=64, image_size=64, patch_size=16,
                backbone_out_indices=[0, 1, 2, 3],
                neck_hidden_sizes=[8, 16, 24, 32], fusion_hidden_size=16)
    base.update(kwargs)
    return transformers.DPTConfig(**base)


def hybrid_config(**kwargs):
    bit = dict(num_groups=4, hidden_sizes=[32, 64, 128], depths=[1, 1, 1],
               embedding_size=16, global_padding='same',
               layer_type='bottleneck', embedding_dynamic_padding=True,
               out_features=['stage1', 'stage2', 'stage3'])
    base = dict(is_hybrid=True, hidden_size=32, num_hidden_layers=2,
                num_attention_heads=4, intermediate_size=64, image_size=64,
                patch_size=16, backbone_out_indices=[2, 5, 0, 1],
                neck_hidden_sizes=[32, 64, 32, 32],
                reassemble_factors=[1, 1, 1, 0.5], fusion_hidden_size=16,
                backbone_config=bit, backbone_featmap_shape=[1, 128, 4, 4])
    base.update(kwargs)
    return transformers.DPTConfig(**base)


def build_hf(case: str) -> torch.nn.Module:
    backbone, task = case.split('_')
    make = vit_config if backbone == 'vit' else hybrid_config
    if task == 'seg':
        model = transformers.DPTForSemanticSegmentation(make(
            use_batch_norm_in_fusion_residual=True, num_labels=5))
    else:
        model = transformers.DPTForDepthEstimation(make())
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            std = 0.5 if name.endswith(('cls_token', 'position_embeddings')) \
                else (p.numel() / p.shape[0])**-0.5 if p.ndim > 1 else 0.05
            p.copy_(torch.randn(p.shape, generator=gen) * std)
            if p.ndim == 1 and ('norm' in name or 'head.head.1' in name):
                p.add_(1.0)
        for name, b in model.named_buffers():
            if name.endswith('running_var'):
                b.uniform_(0.5, 1.5, generator=gen)
            elif name.endswith('running_mean'):
                b.normal_(0, 0.1, generator=gen)
        if task == 'depth':
            model.head.head[4].bias.fill_(1.0)  # mostly positive depth
    return model.eval()


def photo(height: int, width: int, seed: int = 1) -> np.ndarray:
    """Photo-like BGR content: smooth shading plus texture and an edge."""
    rng = np.random.RandomState(seed)
    yy, xx = np.mgrid[0:height, 0:width] / max(height, width)
    img = np.zeros((height, width, 3))
    for c in range(3):
        for _ in range(3):
            a, b, phase = rng.rand(3) * 4
            img[..., c] += np.sin(3 * a * xx + 3 * b * yy + phase)
    img += 0.3 * rng.randn(height, width, 3)
    img[:, width // 2:] += 1.0
    img = (img - img.min()) / (img.max() - img.min()) * 255
    return np.round(img).astype(np.uint8)


@pytest.fixture(scope='module', autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: threads only contend
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope='module')
def hf_folders(tmp_path_factory):
    """One saved folder per (model, processor)."""
    folders = {}
    for case in ('vit_depth', 'hybrid_depth', 'vit_seg', 'hybrid_seg'):
        model = build_hf(case)
        for name, kwargs in PROCESSORS.items():
            folder = tmp_path_factory.mktemp(f'{case}_{name}')
            model.save_pretrained(folder)
            transformers.DPTImageProcessorPil(**kwargs).save_pretrained(
                folder)
            folders[case, name] = str(folder)
    return folders


def _relative(ours: torch.Tensor, theirs: torch.Tensor) -> float:
    assert ours.shape == theirs.shape, (ours.shape, theirs.shape)
    return ((ours - theirs).abs().max() / theirs.abs().max()).item()


def _hf_outputs(folder: str, path: str, task: str) -> torch.Tensor:
    if task == 'depth':
        pipe = transformers.pipeline('depth-estimation', model=folder,
                                     device='cpu')
        return pipe(path)['predicted_depth']
    from PIL import Image
    processor = transformers.AutoImageProcessor.from_pretrained(folder)
    model = transformers.DPTForSemanticSegmentation.from_pretrained(folder)
    image = Image.open(path)
    with torch.no_grad():
        outputs = model(**processor(images=image, return_tensors='pt'))
    return processor.post_process_semantic_segmentation(
        outputs, target_sizes=[image.size[::-1]],
        return_segmentation_scores=True)[0]['segmentation_scores']


def _ours(model, path: str, task: str) -> torch.Tensor:
    sample = inference_model(model, path)
    if task == 'depth':
        return sample.pred_depth_map.data[0]
    return sample.seg_logits.data


@pytest.mark.parametrize('processor', list(PROCESSORS))
@pytest.mark.parametrize('case', ['vit_depth', 'hybrid_depth', 'vit_seg',
                                  'hybrid_seg'])
def test_hf2mm_inference_equals_pipeline(hf_folders, tmp_path, case,
                                         processor):
    folder = hf_folders[case, processor]
    task = case.split('_')[1]
    dst, cfg_out = tmp_path / 'mm.pth', tmp_path / 'mm_cfg.py'
    assert load_script('hf2mm.py').main(
        [folder, str(dst), '--config-out', str(cfg_out)]) == 0
    model = init_model(str(cfg_out), str(dst))
    for size in PHOTOS[processor]:
        path = str(tmp_path / f'photo_{size[0]}x{size[1]}.jpg')
        cv2.imwrite(path, photo(*size))
        theirs = _hf_outputs(folder, path, task)
        ours = _ours(model, path, task)
        assert ours.shape[-2:] == size
        assert ours.std() > 0.01 * ours.abs().max()  # a non-trivial map
        assert _relative(ours, theirs) <= RTOL, (case, processor, size)
        if task == 'seg':
            assert torch.equal(ours.argmax(0),
                               inference_model(model, path)
                               .pred_sem_seg.data[0])


def test_init_model_takes_a_transformers_folder(hf_folders, tmp_path):
    folder = hf_folders['hybrid_depth', 'keep_aspect']
    path = str(tmp_path / 'photo.jpg')
    cv2.imwrite(path, photo(45, 47))
    model = init_model(folder)
    theirs = _hf_outputs(folder, path, 'depth')
    assert _relative(_ours(model, path, 'depth'), theirs) <= RTOL
    # The BiT numerics come with the folder, not from a repo config.
    assert model.backbone.patch_embed.backbone.stem.conv.ws_mode == 'var'
    with pytest.raises(ValueError, match='own weights'):
        init_model(folder, checkpoint=path)
    from dpt_mm.apis import DPTInferencer
    inferencer = DPTInferencer(folder)
    assert _relative(_ours(inferencer.model, path, 'depth'), theirs) <= RTOL


def test_processor_fields_become_the_pipeline():
    converted = hf_processor_to_mm(dict(
        size=dict(height=96, width=128), keep_aspect_ratio=True,
        ensure_multiple_of=16, resample=2, rescale_factor=0.5 / 255,
        image_mean=[0.1, 0.2, 0.3], image_std=[0.4, 0.5, 0.6], do_pad=True,
        size_divisor=48))
    resize = converted['inference_pipeline'][1]
    assert resize == dict(type='DPTResize', size=(96, 128),
                          keep_aspect_ratio=True, ensure_multiple_of=16,
                          interpolation='bilinear', backend='pil',
                          pad_size_divisor=48,
                          pad_val=[153.0, 102.0, 51.0])
    # (x * 0.5/255 - 0.1) / 0.4 == (x - 51) / 204
    assert converted['mean'] == [51.0, 102.0, 153.0]
    assert converted['std'] == [204.0, 255.0, 306.0]
    with pytest.raises(ValueError, match='resample'):
        hf_processor_to_mm(dict(resample=9))


@pytest.mark.parametrize('kwargs', [
    dict(),
    dict(keep_aspect_ratio=True, ensure_multiple_of=32),
    dict(keep_aspect_ratio=True, ensure_multiple_of=32, resample=2),
    dict(do_pad=True, size_divisor=48, keep_aspect_ratio=True,
         ensure_multiple_of=32),
])
def test_pil_resize_gives_the_processor_input(kwargs):
    image = photo(45, 77)
    processor = transformers.DPTImageProcessorPil(
        size=dict(height=64, width=64), **kwargs)
    theirs = processor(images=image[..., ::-1].copy(),
                       return_tensors='pt')['pixel_values'][0]
    pipeline = hf_processor_to_mm(processor.to_dict())
    resize = DPTResize(**{k: v for k, v in pipeline['inference_pipeline'][1]
                          .items() if k != 'type'})
    ours = resize(dict(img=image))['img'][..., ::-1]
    mean = torch.tensor(pipeline['mean']).view(3, 1, 1)
    std = torch.tensor(pipeline['std']).view(3, 1, 1)
    ours = (torch.from_numpy(ours.copy()).permute(2, 0, 1) - mean) / std
    assert ours.shape == theirs.shape
    assert (ours - theirs).abs().max() <= 1e-6


# --------------------------------------------------------------------------
# dpt_mm → Transformers


def _hf_state(folder: str, task: str) -> dict:
    cls = transformers.AutoModelForDepthEstimation if task == 'depth' \
        else transformers.DPTForSemanticSegmentation
    model, info = cls.from_pretrained(folder, output_loading_info=True)
    assert not info['missing_keys'] and not info['unexpected_keys'], info
    return model.state_dict()


@pytest.mark.parametrize('fmt', ['.pth', '.safetensors'])
@pytest.mark.parametrize('case', ['vit_depth', 'hybrid_depth', 'vit_seg',
                                  'hybrid_seg'])
def test_round_trip_is_bit_identical(hf_folders, tmp_path, case, fmt):
    folder = hf_folders[case, 'keep_aspect']
    task = case.split('_')[1]
    dst, cfg_out = tmp_path / f'mm{fmt}', tmp_path / 'mm_cfg.py'
    assert load_script('hf2mm.py').main(
        [folder, str(dst), '--config-out', str(cfg_out)]) == 0
    out = tmp_path / 'back'
    assert load_script('mm2hf.py').main(
        [str(cfg_out), str(dst), str(out)]) == 0
    for name in ('config.json', 'preprocessor_config.json'):
        with open(osp.join(folder, name)) as f:
            source = json.load(f)
        with open(out / name) as f:
            back = json.load(f)
        assert back == source, name
    before, after = _hf_state(folder, task), _hf_state(str(out), task)
    assert before.keys() == after.keys()
    for key, value in before.items():
        assert torch.equal(value, after[key]), key


def test_trained_model_exports_to_the_pipeline(tmp_path):
    """A few SGD steps in dpt_mm, then mm2hf: the pipeline gives
    inference_model's depth map."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS
    from mmseg.structures import SegDataSample
    from mmengine.structures import PixelData
    init_default_scope('mmseg')
    model_cfg = hf_config_to_mm_config(hybrid_config(), 'depth')
    model_cfg['type'] = 'DPTDepthEstimator'
    model_cfg['decode_head']['loss_decode'] = dict(
        type='ScaleShiftInvariantLoss')
    model = MODELS.build(model_cfg)
    # Start from non-trivial weights (a fresh init's ReLU head outputs 0).
    from dpt_mm.converters import convert_hf_state_dict
    model.load_state_dict(convert_hf_state_dict(
        build_hf('hybrid_depth').state_dict(), hybrid_config()))
    start = {k: v.clone() for k, v in model.state_dict().items()}
    optim = torch.optim.SGD(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    for _ in range(3):
        samples = []
        for _ in range(2):
            sample = SegDataSample(metainfo=dict(img_shape=(64, 64),
                                                 ori_shape=(64, 64),
                                                 pad_shape=(64, 64)))
            sample.gt_depth_map = PixelData(
                data=torch.rand(1, 64, 64, generator=gen) + 0.5)
            samples.append(sample)
        losses = model.loss(torch.randn(2, 3, 64, 64, generator=gen),
                            samples)
        loss = sum(v for k, v in losses.items() if 'loss' in k)
        optim.zero_grad()
        loss.backward()
        optim.step()
    changed = [k for k, v in model.state_dict().items()
               if not torch.equal(v, start[k])]
    assert len(changed) > 0.5 * len(start)
    ckpt = tmp_path / 'trained.safetensors'
    from dpt_mm.utils import save_checkpoint_file
    save_checkpoint_file(dict(state_dict=model.state_dict(),
                              meta=dict(dataset_meta=dict(
                                  classes=['depth']))), str(ckpt))
    pipeline = [dict(type='LoadImageFromNDArray'),
                dict(type='DPTResize', size=64, keep_aspect_ratio=False,
                     ensure_multiple_of=1, backend='pil'),
                dict(type='PackSegInputs')]
    cfg_path = tmp_path / 'trained_cfg.py'
    Config(dict(default_scope='mmseg', model=model_cfg,
                inference_pipeline=pipeline)).dump(str(cfg_path))
    out = tmp_path / 'hf'
    assert load_script('mm2hf.py').main(
        [str(cfg_path), str(ckpt), str(out)]) == 0
    _hf_state(str(out), 'depth')  # loads strictly
    path = str(tmp_path / 'photo.jpg')
    cv2.imwrite(path, photo(37, 59))
    theirs = _hf_outputs(str(out), path, 'depth')
    ours = _ours(init_model(str(cfg_path), str(ckpt)), path, 'depth')
    assert ours.std() > 0.01 * ours.abs().max()
    assert _relative(ours, theirs) <= RTOL


def test_mm2hf_refuses_what_transformers_lacks(tmp_path, capsys):
    model_cfg = hf_config_to_mm_config(hybrid_config(), 'depth')
    for key, value, named in (
            ('decode_head', dict(output_mode='depth'),
             'decode_head.output_mode'),
            ('backbone', dict(ws_mode='std', ws_eps=1e-5), 'ws_mode'),
            ('neck', dict(readout_type='project', align_corners=False),
             'neck.align_corners'),
            ('test_cfg', dict(resize_mode='bilinear'),
             'test_cfg.resize_mode'),
            ('neck', dict(readout_type='add'), 'neck.readout_type')):
        cfg = json.loads(json.dumps(model_cfg))
        cfg[key].update(value)
        with pytest.raises(ValueError, match=named.replace('.', r'\.')):
            mm_config_to_hf_config(cfg)
    # The CLI: one line naming the option, no traceback.
    cfg_path = tmp_path / 'cv2.py'
    from mmengine.config import Config
    Config(dict(model=model_cfg, inference_pipeline=[
        dict(type='DPTResize', size=64)])).dump(str(cfg_path))
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS
    init_default_scope('mmseg')
    ckpt = tmp_path / 'w.pth'
    torch.save(dict(state_dict=MODELS.build(model_cfg).state_dict()), ckpt)
    assert load_script('mm2hf.py').main(
        [str(cfg_path), str(ckpt), str(tmp_path / 'out')]) == 1
    err = capsys.readouterr().err
    assert "backend='cv2'" in err and 'Traceback' not in err


def test_hybrid_numerics_cannot_be_mixed_silently(hf_folders, tmp_path):
    """Hub weights into the repo's hybrid config (release numerics): the
    model adopts the checkpoint's, with a warning; a built model refuses."""
    folder = hf_folders['hybrid_depth', 'keep_aspect']
    dst, cfg_out = tmp_path / 'mm.pth', tmp_path / 'mm_cfg.py'
    assert load_script('hf2mm.py').main(
        [folder, str(dst), '--config-out', str(cfg_out)]) == 0
    assert load_checkpoint_file(str(dst))['meta']['numerics'] == {
        'backbone.ws_mode': 'var', 'backbone.ws_eps': 1e-8}
    options = {'model.backbone.ws_mode': 'std', 'model.backbone.ws_eps': 1e-5}
    with pytest.warns(UserWarning, match='ws_mode'):
        model = init_model(str(cfg_out), str(dst), cfg_options=options)
    assert model.backbone.patch_embed.backbone.stem.conv.ws_mode == 'var'
    from dpt_mm.apis import load_weights
    from mmengine.config import Config
    from mmseg.registry import MODELS
    cfg = Config.fromfile(str(cfg_out))
    cfg.model.backbone.update(ws_mode='std', ws_eps=1e-5)
    with pytest.raises(ValueError, match='numerics'):
        load_weights(MODELS.build(cfg.model), str(dst))


def test_bare_dpt_model_folder(tmp_path):
    """A DPTModel (encoder only, keys without 'dpt.') converts for
    fine-tuning; init_model refuses it as a predictor."""
    transformers.DPTModel(vit_config()).save_pretrained(tmp_path)
    dst = tmp_path / 'encoder.pth'
    assert load_script('hf2mm.py').main([str(tmp_path), str(dst)]) == 0
    assert load_checkpoint_file(str(dst))['meta']['task'] == 'backbone'
    with pytest.raises(ValueError, match='bare DPTModel'):
        init_model(str(tmp_path))

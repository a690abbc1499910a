"""mm2hf for Depth Anything: dpt_mm → ``DepthAnythingForDepthEstimation``.

Tiny random Transformers models (V1 hooks, V2 hooks, V2 metric; the metric
one with a SwiGLU encoder and no final LayerNorm, to reach the other key
names and fillers) are saved with ``save_pretrained`` and a
``DPTImageProcessorPil``, converted by ``hf2mm.py --config-out`` and
exported back by ``mm2hf.py``:

* with the checkpoint's meta, the folder comes back bit-identical
  (``config.json``, ``preprocessor_config.json``, every tensor);
* without it (a model dpt_mm made), Transformers loads the folder with no
  missing or unexpected keys and predicts dpt_mm's depth to 1e-5.

A model built from ``configs/toy/depth_anything_toy_depth.py`` (made
exportable: square position table, Transformers' position resizing) goes
through ``mm2hf.py`` to ``pipeline('depth-estimation')`` and gives
``inference_model``'s depth map on a non-square photo to 1e-4. The
encoder half (:mod:`dpt_mm.converters.hf_export_dinov2`) also inverts a
DPT-DINOv2 folder's backbone, for the DPT export that reuses it.
"""
import json
import os.path as osp

import cv2
import pytest
import torch

transformers = pytest.importorskip('transformers')
from mmengine.config import Config  # noqa: E402
from mmseg.registry import MODELS  # noqa: E402

from dpt_mm.apis import inference_model, init_model  # noqa: E402
from dpt_mm.converters import (hf_config_to_mm_config,  # noqa: E402
                               map_hf_state_dict, mm_config_to_hf_config)
from dpt_mm.converters.common import apply_rules  # noqa: E402
from dpt_mm.converters.hf_export_dinov2 import (  # noqa: E402
    dinov2_backbone_config_to_hf, dinov2_backbone_rules_to_hf,
    dinov2_backbone_unused_to_hf, split_fused_qkv)
from dpt_mm.utils import load_checkpoint_file  # noqa: E402

from test_family_dinov2 import (depth_anything, dinov2_config,  # noqa: E402
                                dpt_dinov2)
from test_hf_pipeline_agreement import (_hf_state, _relative,  # noqa: E402
                                        load_script, photo)
from test_parity_hf import randomize  # noqa: E402

REPO = osp.abspath(osp.join(osp.dirname(__file__), '../..'))
TOY = osp.join(REPO, 'configs/toy/depth_anything_toy_depth.py')
IMAGENET = dict(image_mean=[0.485, 0.456, 0.406],
                image_std=[0.229, 0.224, 0.225])
# The published Depth Anything processors, at 56 × 56.
PROCESSOR = dict(size=dict(height=56, width=56), keep_aspect_ratio=True,
                 ensure_multiple_of=14, **IMAGENET)
CASES = {
    'v1': dict(backbone=dict(num_hidden_layers=6, out_indices=[3, 4, 5, 6])),
    'v2_relative': dict(backbone=dict(num_hidden_layers=6,
                                      out_indices=[2, 4, 5, 6])),
    'v2_metric': dict(
        backbone=dict(num_hidden_layers=6, out_indices=[2, 4, 5, 6],
                      use_swiglu_ffn=True, apply_layernorm=False),
        depth_estimation_type='metric', max_depth=20),
}


def hf_folder(case: str, folder) -> transformers.PreTrainedModel:
    kwargs = dict(CASES[case])
    model = depth_anything(dinov2_config(**kwargs.pop('backbone')),
                           **kwargs)
    model.save_pretrained(folder)
    transformers.DPTImageProcessorPil(**PROCESSOR).save_pretrained(folder)
    return model


def predicted_depth(folder: str, x: torch.Tensor) -> torch.Tensor:
    model = transformers.AutoModelForDepthEstimation.from_pretrained(folder)
    with torch.no_grad():
        return model(pixel_values=x).predicted_depth.unsqueeze(1)


def files(folder) -> tuple:
    out = []
    for name in ('config.json', 'preprocessor_config.json'):
        with open(osp.join(folder, name)) as f:
            out.append(json.load(f))
    from safetensors.torch import load_file
    return (*out, load_file(osp.join(folder, 'model.safetensors')))


@pytest.mark.parametrize('case', list(CASES))
def test_round_trip_and_fresh_export(case, tmp_path):
    src = tmp_path / 'hf'
    hf_folder(case, src)
    dst, cfg_out = tmp_path / 'mm.pth', tmp_path / 'mm_cfg.py'
    assert load_script('hf2mm.py').main(
        [str(src), str(dst), '--config-out', str(cfg_out)]) == 0
    back = tmp_path / 'back'
    assert load_script('mm2hf.py').main(
        [str(cfg_out), str(dst), str(back)]) == 0
    config, processor, weights = files(src)
    config_b, processor_b, weights_b = files(back)
    assert config_b == config and processor_b == processor
    assert weights_b.keys() == weights.keys()
    for key, value in weights.items():
        assert torch.equal(weights_b[key], value), key
    before, after = _hf_state(str(src), 'depth'), _hf_state(str(back),
                                                            'depth')
    assert all(torch.equal(after[k], v) for k, v in before.items())

    # A checkpoint without meta: config.json written from the dpt_mm config.
    plain = tmp_path / 'plain.pth'
    state_dict = load_checkpoint_file(str(dst))['state_dict']
    torch.save(dict(state_dict=state_dict), plain)
    fresh = tmp_path / 'fresh'
    assert load_script('mm2hf.py').main(
        [str(cfg_out), str(plain), str(fresh)]) == 0
    config_f = files(fresh)[0]
    assert config_f['model_type'] == 'depth_anything'
    assert hf_config_to_mm_config(config_f) == hf_config_to_mm_config(config)
    _hf_state(str(fresh), 'depth')  # loads strictly
    ours = init_model(str(cfg_out), str(dst))
    x = torch.randn(2, 3, 42, 70, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        expected = ours(x, mode='tensor')
    assert (expected > 0).float().mean() > 0.2
    for folder in (back, fresh):
        assert _relative(expected, predicted_depth(str(folder), x)) <= 1e-5


def toy_model_cfg(**backbone) -> dict:
    cfg = Config.fromfile(TOY).model.to_dict()
    cfg['backbone'].update(backbone)
    return cfg


def test_toy_config_exports_to_the_pipeline(tmp_path):
    """A model dpt_mm made (toy config, random weights) → mm2hf.py →
    pipeline('depth-estimation') gives inference_model's depth map."""
    # Transformers needs a square position table and resizes it to the
    # target grid (offset 0); everything else is the toy config's.
    model_cfg = toy_model_cfg(img_size=98, pos_embed_interp_offset=0.0)
    model = randomize(MODELS.build(model_cfg))
    ckpt = tmp_path / 'toy.safetensors'
    from dpt_mm.utils import save_checkpoint_file
    save_checkpoint_file(dict(state_dict=model.state_dict()), str(ckpt))
    cfg_path = tmp_path / 'toy_cfg.py'
    Config(dict(default_scope='mmseg', custom_imports=dict(imports=['dpt_mm']),
                model=model_cfg, inference_pipeline=[
                    dict(type='LoadImageFromNDArray'),
                    dict(type='DPTResize', size=98, keep_aspect_ratio=True,
                         ensure_multiple_of=14, backend='pil'),
                    dict(type='PackSegInputs')])).dump(str(cfg_path))
    out = tmp_path / 'hf'
    assert load_script('mm2hf.py').main(
        [str(cfg_path), str(ckpt), str(out)]) == 0
    config = files(out)[0]
    assert config['depth_estimation_type'] == 'metric'
    assert config['max_depth'] == 10
    assert config['backbone_config']['out_indices'] == [1, 2, 3, 4]
    _hf_state(str(out), 'depth')
    x = torch.randn(1, 3, 70, 112, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        expected = model.eval()(x, mode='tensor')
    assert _relative(expected, predicted_depth(str(out), x)) <= 1e-5

    path = str(tmp_path / 'photo.jpg')
    cv2.imwrite(path, photo(61, 90))
    pipe = transformers.pipeline('depth-estimation', model=str(out),
                                 device='cpu')
    theirs = pipe(path)['predicted_depth']
    ours = inference_model(init_model(str(cfg_path), str(ckpt)),
                           path).pred_depth_map.data[0]
    assert ours.shape == (61, 90)
    assert ours.std() > 0.01 * ours.abs().max()
    assert _relative(ours, theirs) <= 1e-4


def test_refusals_name_the_key(tmp_path, capsys):
    # The toy config as it is: a non-square position table.
    with pytest.raises(ValueError, match=r'backbone\.img_size'):
        mm_config_to_hf_config(toy_model_cfg())
    base = toy_model_cfg(img_size=98, pos_embed_interp_offset=0.0)
    assert mm_config_to_hf_config(base)['model_type'] == 'depth_anything'
    for part, value, named in (
            ('backbone', dict(pos_embed_interp_offset=0.1),
             'backbone.pos_embed_interp_offset'),
            ('backbone', dict(mlp_ratio=2.5), 'backbone.mlp_ratio'),
            ('backbone', dict(num_register_tokens=4,
                              pos_embed_antialias=True),
             'backbone.num_register_tokens'),
            ('neck', dict(readout_type='project'), 'neck.readout_type'),
            ('decode_head', dict(output_mode='depth'),
             'decode_head.output_mode'),
            ('decode_head', dict(max_depth=2.5), 'decode_head.max_depth'),
            ('decode_head', dict(upsample_factor=2.0),
             'decode_head.upsample_factor')):
        cfg = json.loads(json.dumps(base))
        cfg[part].update(value)
        with pytest.raises(ValueError, match=named.replace('.', r'\.')):
            mm_config_to_hf_config(cfg)
    # Fusion to the next level's size on another backbone: not DPT's.
    vit = hf_config_to_mm_config(transformers.DPTConfig(
        hidden_size=32, num_hidden_layers=4, num_attention_heads=4,
        intermediate_size=64, image_size=64, neck_hidden_sizes=[8, 16, 24, 32],
        fusion_hidden_size=16, backbone_out_indices=[0, 1, 2, 3]), 'depth')
    vit['neck']['upsample_to_lateral'] = True
    with pytest.raises(ValueError, match=r'neck\.upsample_to_lateral'):
        mm_config_to_hf_config(vit)
    # The CLI: one line naming the option, no traceback.
    model_cfg = toy_model_cfg()
    cfg_path = tmp_path / 'toy.py'
    Config(dict(model=model_cfg)).dump(str(cfg_path))
    ckpt = tmp_path / 'w.pth'
    torch.save(dict(state_dict=MODELS.build(model_cfg).state_dict()), ckpt)
    assert load_script('mm2hf.py').main(
        [str(cfg_path), str(ckpt), str(tmp_path / 'out')]) == 1
    err = capsys.readouterr().err
    assert 'backbone.img_size' in err and 'Traceback' not in err


def test_registers_backbone_config():
    """DINOv2 with registers (resized with antialiasing) maps onto
    Dinov2WithRegistersConfig, for DPT-DINOv2 exports."""
    cfg = dinov2_backbone_config_to_hf(dict(
        type='DPTDINOv2', img_size=56, embed_dims=32, num_layers=4,
        num_heads=4, mlp_ratio=2.0, num_register_tokens=4,
        pos_embed_antialias=True, out_indices=(1, 3)))
    assert cfg['model_type'] == 'dinov2_with_registers'
    assert cfg['num_register_tokens'] == 4
    assert cfg['out_features'] == ['stage2', 'stage4']
    built = transformers.Dinov2WithRegistersConfig(**{
        k: v for k, v in cfg.items() if k != 'model_type'})
    assert built.out_indices == [2, 4]
    with pytest.raises(ValueError, match='pos_embed_antialias'):
        dinov2_backbone_config_to_hf(dict(type='DPTDINOv2',
                                          num_register_tokens=4))


@pytest.mark.parametrize('backbone', [
    dict(), dict(use_swiglu_ffn=True, apply_layernorm=False)])
def test_backbone_export_inverts_dpt_dinov2(backbone, tmp_path):
    """The encoder half serves DPT-DINOv2 too: its saved backbone tensors
    and backbone_config come back from the hf2mm conversion."""
    hf = dpt_dinov2(backbone_config=dinov2_config(**backbone))
    hf.save_pretrained(tmp_path)
    from safetensors.torch import load_file
    saved = load_file(str(tmp_path / 'model.safetensors'))
    config = hf.config.to_dict()
    ours = hf_config_to_mm_config(config)['backbone']
    converted = map_hf_state_dict(saved, config).state_dict
    back = apply_rules(split_fused_qkv(
        {k: v for k, v in converted.items() if k.startswith('backbone.')}),
        dinov2_backbone_rules_to_hf(ours), 'test').state_dict
    fills = dinov2_backbone_unused_to_hf(ours)
    source = {k: v for k, v in saved.items() if k.startswith('backbone.')}
    assert set(back) | set(fills) == set(source)
    assert not set(back) & set(fills)
    for key, value in back.items():
        assert torch.equal(value, source[key]), key
    written = dinov2_backbone_config_to_hf(ours)
    assert {k: config['backbone_config'][k] for k in written} == written

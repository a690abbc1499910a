"""mm2hf.py for DPT with a separate Transformers backbone: BEiT, Swin V2
and DINOv2 (``DPTForDepthEstimation(DPTConfig(backbone_config=...))``).

* Round trip: a tiny random Transformers model, ``save_pretrained`` →
  ``hf2mm.py --config-out`` → ``mm2hf.py`` gives the very same
  ``config.json`` and state dict (same keys, equal tensors), and
  ``AutoModelForDepthEstimation`` loads the folder with no missing or
  unexpected keys and gives dpt_mm's ``predicted_depth`` to 1e-5 of its
  largest value.
* A model built from a repository toy config (random weights, no source
  ``config.json``) exports and gives the same numbers.
* What Transformers cannot express is refused, naming the config key.
"""
import json
import os.path as osp
from typing import Any, Dict

import pytest
import torch

transformers = pytest.importorskip('transformers')
from mmengine.config import Config  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402
from mmseg.registry import MODELS  # noqa: E402
from transformers import (AutoModelForDepthEstimation,  # noqa: E402
                          DPTForDepthEstimation)

from dpt_mm.apis import init_model  # noqa: E402
from dpt_mm.converters import (load_hf_folder,  # noqa: E402
                               mm_config_to_hf_config)
from dpt_mm.utils import save_checkpoint_file  # noqa: E402

from test_family_beit_swinv2 import (CASES, beit_config,  # noqa: E402
                                     randomize)
from test_family_dinov2 import dinov2_config as dinov2_backbone  # noqa: E402
from test_hf_pipeline_agreement import load_script  # noqa: E402

REPO = osp.abspath(osp.join(osp.dirname(__file__), '../..'))
RTOL = 1e-5
init_default_scope('mmseg')


ROUND_TRIP = {
    'beit': CASES['beit'],
    # Shared bias, absolute position embedding, no layer scale, 3 hooks,
    # readout 'add'.
    'beit_variants': CASES['beit_variants'],
    # Blocks alternating shifted windows, a stage smaller than its window.
    'swinv2': CASES['swinv2'],
    # Two hooked stages of four.
    'swinv2_two_stages': CASES['swinv2_two_stages'],
    'dinov2': lambda: dinov2_config(),
    # The published models' settings: hooked outputs not normed (the final
    # LayerNorm is unused), fusion convs without bias, add_projection
    # (256 channels: hard-coded in Transformers).
    'dinov2_published': lambda: dinov2_config(
        backbone=dict(apply_layernorm=False), add_projection=True,
        fusion_hidden_size=256, use_bias_in_fusion_residual=False),
}


def dinov2_config(backbone=None, **kwargs) -> transformers.DPTConfig:
    """DPT + 4-block DINOv2 (D=32, patch 14, 56×56 → 4×4 grid)."""
    base = dict(backbone_config=dinov2_backbone(**(backbone or {})),
                neck_hidden_sizes=[8, 16, 24, 32], fusion_hidden_size=16)
    base.update(kwargs)
    return transformers.DPTConfig(**base)


def hf_load(folder: str) -> torch.nn.Module:
    """Load strictly: no missing, unexpected or mismatched keys."""
    model, info = AutoModelForDepthEstimation.from_pretrained(
        folder, output_loading_info=True)
    assert not any(info[k] for k in ('missing_keys', 'unexpected_keys',
                                     'mismatched_keys')), info
    return model.eval()


def assert_same_depth(hf: torch.nn.Module, ours: torch.nn.Module,
                      x: torch.Tensor, label: str) -> None:
    with torch.no_grad():
        ref = hf(pixel_values=x).predicted_depth
        out = ours(x, mode='tensor')[:, 0]
    assert out.shape == ref.shape, (label, out.shape, ref.shape)
    assert (ref > 0).float().mean() > 0.2, f'{label}: trivial reference'
    diff = ((out - ref).abs().max() / ref.abs().max()).item()
    print(f'\n[mm2hf] {label}: max |diff| / max |ref| = {diff:.2e}')
    assert diff <= RTOL, f'{label}: relative difference {diff:.2e}'


@pytest.mark.parametrize('case', list(ROUND_TRIP))
def test_round_trip_is_bit_identical(case: str, tmp_path) -> None:
    hf = randomize(DPTForDepthEstimation(ROUND_TRIP[case]()))
    src = tmp_path / 'hf'
    hf.save_pretrained(src)
    dst, cfg_out, out = (tmp_path / 'mm.pth', tmp_path / 'mm_cfg.py',
                         tmp_path / 'back')
    assert load_script('hf2mm.py').main(
        [str(src), str(dst), '--config-out', str(cfg_out)]) == 0
    assert load_script('mm2hf.py').main(
        [str(cfg_out), str(dst), str(out)]) == 0
    source, before, _ = load_hf_folder(str(src))
    back, after, _ = load_hf_folder(str(out))
    assert back == source
    assert before.keys() == after.keys()
    for key, value in before.items():
        assert torch.equal(value, after[key]), key
    size = hf.config.backbone_config.image_size
    x = torch.randn(2, 3, size, size,
                    generator=torch.Generator().manual_seed(2))
    assert_same_depth(hf_load(str(out)),
                      init_model(str(cfg_out), str(dst), device='cpu'), x,
                      f'round trip {case}')


def randomize_mm(model: torch.nn.Module, x: torch.Tensor) -> torch.nn.Module:
    """Non-trivial random weights; the last conv's bias opens the final
    ReLU for about half the pixels."""
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            std = (p.numel() / p.shape[0])**-0.5 if p.ndim > 1 else 0.1
            if name.endswith(('cls_token', 'pos_embed')):
                std = 0.5
            p.copy_(torch.randn(p.shape, generator=gen) * std)
            if p.ndim == 1 and 'norm' in name:
                p.add_(1.0)
    model.eval()
    captured = []
    head = model.decode_head.conv_seg
    handle = head.register_forward_hook(lambda m, i, o: captured.append(o))
    with torch.no_grad():
        model(x, mode='tensor')
    handle.remove()
    with torch.no_grad():
        head.bias.sub_(captured[0].median())
    return model


# What Transformers' depth head is: raw ReLU output (no metric clamps), 32
# channels before the last conv; relative inverse depth but for DINOv2.
TF_HEAD = dict(channels=32, min_depth=None, max_depth=None)
RELATIVE = dict(decode_head=dict(output_mode='inverse_depth'))
TOY = {
    'beit': ('configs/toy/dpt_toy_beit_depth.py', RELATIVE),
    'swinv2': ('configs/toy/dpt_toy_swinv2_depth.py', RELATIVE),
    # Transformers' DINOv2 reshapes its position table to a square grid;
    # its add_projection is 256 → 256 (the toy's fusion width is 32).
    'dinov2': ('configs/toy/dpt_dinov2_toy_depth.py',
               dict(backbone=dict(img_size=98),
                    decode_head=dict(add_projection=False))),
}


def _toy_config(name: str, tmp_path) -> Config:
    path, changes = TOY[name]
    cfg = Config.fromfile(osp.join(REPO, path))
    cfg.model.decode_head.update(TF_HEAD)
    for part, change in changes.items():
        cfg.model[part].update(change)
    size = cfg.model.backbone.img_size
    size = size if isinstance(size, int) else size[0]
    cfg.inference_pipeline = [
        dict(type='LoadImageFromNDArray'),
        dict(type='DPTResize', size=size, keep_aspect_ratio=False,
             ensure_multiple_of=1, backend='pil'),
        dict(type='PackSegInputs')]
    return cfg


@pytest.mark.parametrize('name', list(TOY))
def test_toy_config_model_exports(name: str, tmp_path) -> None:
    """A model built from a repository config (no source config.json)."""
    cfg = _toy_config(name, tmp_path)
    size = cfg.inference_pipeline[1]['size']
    x = torch.randn(1, 3, size, size,
                    generator=torch.Generator().manual_seed(2))
    model = randomize_mm(MODELS.build(cfg.model), x)
    cfg_path, ckpt = tmp_path / 'toy.py', tmp_path / 'toy.safetensors'
    cfg.dump(str(cfg_path))
    save_checkpoint_file(dict(state_dict=model.state_dict()), str(ckpt))
    out = tmp_path / 'hf'
    assert load_script('mm2hf.py').main(
        [str(cfg_path), str(ckpt), str(out)]) == 0
    assert_same_depth(hf_load(str(out)), model, x, f'toy {name}')


def _refused(model_cfg: Dict[str, Any], part: str, change: Dict[str, Any],
             key: str) -> None:
    cfg = json.loads(json.dumps(model_cfg))
    cfg[part].update(change)
    with pytest.raises(ValueError, match=key.replace('.', r'\.')):
        mm_config_to_hf_config(cfg)


def test_what_transformers_lacks_is_refused_by_name(tmp_path) -> None:
    from dpt_mm.converters import hf_config_to_mm_config
    beit = hf_config_to_mm_config(beit_config(), 'depth')
    _refused(beit, 'backbone', dict(qkv_bias=False), 'backbone.qkv_bias')
    _refused(beit, 'backbone', dict(img_size=(64, 96)), 'backbone.img_size')
    _refused(beit, 'backbone', dict(out_indices=(3, 1, 2, 0)),
             'backbone.out_indices')
    _refused(beit, 'neck', dict(passthrough_indices=(0, )),
             'neck.passthrough_indices')
    _refused(beit, 'decode_head', dict(type='DPTSegHead', num_classes=3),
             'decode_head.type')
    # Fusion to the next level's size is Depth Anything's (on DINOv2 it
    # goes to that exporter).
    _refused(beit, 'neck', dict(upsample_to_lateral=True),
             'neck.upsample_to_lateral')
    swin = hf_config_to_mm_config(CASES['swinv2'](), 'depth')
    _refused(swin, 'neck', dict(passthrough_indices=(0, 1)),
             'neck.passthrough_indices')
    _refused(swin, 'neck', dict(reassemble_channels=(8, 16, 32, 32)),
             'neck.reassemble_channels')
    _refused(swin, 'backbone', dict(img_size=(64, 96)), 'backbone.img_size')
    dinov2 = hf_config_to_mm_config(dinov2_config(), 'depth')
    _refused(dinov2, 'backbone', dict(pos_embed_interp_offset=0.1),
             'backbone.pos_embed_interp_offset')
    _refused(dinov2, 'backbone', dict(output_cls_token=False),
             'backbone.output_cls_token')
    _refused(dinov2, 'decode_head', dict(upsample_factor=1.0),
             'decode_head.upsample_factor')
    # Transformers' DPT-DINOv2 models predict metric depth.
    _refused(dinov2, 'decode_head', dict(output_mode='inverse_depth'),
             'decode_head.output_mode')
    # The toy configs as they are: metric depth with test-time clamps, and
    # DINOv2 on a non-square position table.
    for name, key in (('beit', 'decode_head.output_mode'),
                      ('dinov2', 'backbone.img_size')):
        toy = Config.fromfile(osp.join(REPO, TOY[name][0])).model.to_dict()
        with pytest.raises(ValueError, match=key.replace('.', r'\.')):
            mm_config_to_hf_config(toy)


def _with_defaults(cfg: Dict[str, Any]) -> Dict[str, Any]:
    """A component config with the class defaults filled in."""
    import inspect
    params = inspect.signature(MODELS.get(cfg['type']).__init__).parameters
    out = {k: p.default for k, p in params.items()
           if p.default is not inspect.Parameter.empty}
    out.update({k: v for k, v in cfg.items() if v is not None})
    out.pop('loss_decode', None)
    if 'mid_channels' in out and out['mid_channels'] is None:
        out['mid_channels'] = out['in_channels'] // 2  # DPTDepthHead's
    return json.loads(json.dumps(out))  # tuples and lists alike


@pytest.mark.parametrize('size', ['vits', 'vitb', 'vitl', 'vitg'])
def test_dpt_dinov2_configs_match_transformers(size: str) -> None:
    """configs/dpt_dinov2/ against the DPTConfig of Transformers'
    convert_dinov2_depth_to_hf.py (Dinov2 hooked at [3, 6, 9, 12] for S,
    apply_layernorm=False, neck widths D/8..D, fusion without bias,
    add_projection; B/L/G with the DINOv2 repository's hooks), read by
    hf2mm: the same backbone, neck and head. Only the test-time clamps to
    [min_depth, max_depth] are dpt_mm's own (Transformers does not clamp).
    """
    from transformers import Dinov2Config
    from dpt_mm.converters import hf_config_to_mm_config
    embed, layers, heads, hooks = dict(
        vits=(384, 12, 6, [3, 6, 9, 12]), vitb=(768, 12, 12, [3, 6, 9, 12]),
        vitl=(1024, 24, 16, [5, 12, 18, 24]),
        vitg=(1536, 40, 24, [10, 20, 30, 40]))[size]
    backbone = Dinov2Config(
        hidden_size=embed, num_hidden_layers=layers, num_attention_heads=heads,
        image_size=518, patch_size=14, out_indices=hooks,
        apply_layernorm=False, reshape_hidden_states=False,
        use_swiglu_ffn=size == 'vitg')
    hf = transformers.DPTConfig(
        backbone_config=backbone,
        neck_hidden_sizes=[embed // 8, embed // 4, embed // 2, embed],
        use_bias_in_fusion_residual=False, add_projection=True)
    theirs = hf_config_to_mm_config(hf.to_dict(), 'depth')
    for dataset, max_depth in (('nyu', 10.0), ('kitti', 80.0)):
        ours = Config.fromfile(osp.join(
            REPO, f'configs/dpt_dinov2/dpt-dinov2_{size}_{dataset}.py'))
        ours = ours.model.to_dict()
        assert ours['decode_head'].pop('max_depth') == max_depth
        assert ours['decode_head'].pop('min_depth') == 1e-3
        for part in ('backbone', 'neck', 'decode_head'):
            assert _with_defaults(ours[part]) == _with_defaults(
                theirs[part]), (size, dataset, part)

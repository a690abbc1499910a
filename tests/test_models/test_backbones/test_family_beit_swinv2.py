"""DPT with BEiT and Swin V2 encoders (MiDaS v3.1): parity with
Transformers after conversion (hf2mm and the release layout), square and
non-square, and the backbones' training behaviour.

Small random Transformers ``DPTForDepthEstimation`` models with a
``BeitConfig`` / ``Swinv2Config`` backbone are converted; our
``model(x, mode='tensor')`` must match ``predicted_depth`` to 1e-4 of the
largest output value (float32, batch 2).
"""
import os
import os.path as osp
import re
import subprocess
import sys
from typing import Dict

import pytest
import torch

transformers = pytest.importorskip('transformers')
from mmengine.config import Config  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402
from mmseg.registry import MODELS  # noqa: E402
from transformers import (BeitConfig, DPTConfig,  # noqa: E402
                          DPTForDepthEstimation, Swinv2Config)

from dpt_mm.converters import (convert_hf_state_dict,  # noqa: E402
                               convert_original_state_dict, guess_variant,
                               hf_config_to_mm_config, load_converted,
                               map_hf_state_dict, map_original_state_dict)
from dpt_mm.engine.optimizers.layer_decay_optimizer_constructor import \
    get_vit_layer_id  # noqa: E402

REPO = osp.abspath(osp.join(osp.dirname(__file__), '../../..'))
HF2MM = osp.join(REPO, 'tools', 'model_converters', 'hf2mm.py')
RTOL = 1e-4
init_default_scope('mmseg')


@pytest.fixture(autouse=True, scope='module')
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# --------------------------------------------------------------------------
# tiny Transformers models


def beit_config(**kwargs) -> DPTConfig:
    """DPT + 4-block BEiT (D=32, patch 16, 64×64 → 4×4 grid)."""
    backbone = dict(image_size=64, patch_size=16, hidden_size=32,
                    num_hidden_layers=4, num_attention_heads=4,
                    intermediate_size=64, use_relative_position_bias=True,
                    reshape_hidden_states=False,
                    out_features=['stage1', 'stage2', 'stage3', 'stage4'])
    backbone.update(kwargs.pop('backbone', {}))
    dpt = dict(neck_hidden_sizes=[8, 16, 24, 32], fusion_hidden_size=16)
    dpt.update(kwargs)
    return DPTConfig(backbone_config=BeitConfig(**backbone), **dpt)


def swinv2_config(**kwargs) -> DPTConfig:
    """DPT + Swin V2 with 4 stages (C=8 doubling, window 4, 64×64 input).

    Stage 3's grid (2×2) is smaller than the window: one unshifted window,
    as in MiDaS's Swin2-L/B/T at their last stage; stage 2's blocks
    alternate shifted windows.
    """
    backbone = dict(image_size=64, patch_size=4, embed_dim=8,
                    depths=[1, 2, 2, 1], num_heads=[1, 2, 2, 4],
                    window_size=4, pretrained_window_sizes=[0, 0, 3, 2],
                    out_features=['stage1', 'stage2', 'stage3', 'stage4'])
    backbone.update(kwargs.pop('backbone', {}))
    dpt = dict(neck_hidden_sizes=[8, 16, 32, 64], fusion_hidden_size=16)
    dpt.update(kwargs)
    return DPTConfig(backbone_config=Swinv2Config(**backbone), **dpt)


CASES = {
    'beit': beit_config,
    'swinv2': swinv2_config,
    # Shared bias, absolute position embedding, no layer scale, 3 hooks.
    'beit_variants': lambda: beit_config(
        backbone=dict(use_relative_position_bias=False,
                      use_shared_relative_position_bias=True,
                      use_absolute_position_embeddings=True,
                      layer_scale_init_value=0.0,
                      out_features=['stage1', 'stage3', 'stage4']),
        neck_hidden_sizes=[8, 16, 32], reassemble_factors=[4, 2, 1],
        readout_type='add'),
    'swinv2_two_stages': lambda: swinv2_config(
        backbone=dict(out_features=['stage2', 'stage3']),
        neck_hidden_sizes=[16, 32], reassemble_factors=[1, 1]),
}


def randomize(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Random non-trivial weights; the last conv's bias opens the final
    ReLU for about half the pixels."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            std = (p.numel() / p.shape[0])**-0.5 if p.ndim > 1 else 0.1
            if name.endswith(('cls_token', 'position_embeddings')):
                std = 0.5
            p.copy_(torch.randn(p.shape, generator=gen) * std)
            if p.ndim == 1 and 'norm' in name:
                p.add_(1.0)
    model.eval()
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    captured = []
    handle = model.head.head[4].register_forward_hook(
        lambda module, inputs, output: captured.append(output))
    with torch.no_grad():
        model(pixel_values=x)
    handle.remove()
    with torch.no_grad():
        model.head.head[4].bias.sub_(captured[0].median())
    return model


def hf_depth(hf: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return hf(pixel_values=x).predicted_depth.unsqueeze(1)


def ours_depth(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(x, mode='tensor')


def assert_close(out: torch.Tensor, ref: torch.Tensor, label: str) -> None:
    assert out.shape == ref.shape, (label, out.shape, ref.shape)
    assert (ref > 0).float().mean() > 0.2, f'{label}: trivial reference'
    diff = (out - ref).abs().max().item() / ref.abs().max().item()
    print(f'\n[parity] {label}: max |diff| / max |ref| = {diff:.2e}')
    assert diff <= RTOL, f'{label}: relative difference {diff:.2e}'


def convert_and_build(hf: torch.nn.Module) -> torch.nn.Module:
    model = MODELS.build(hf_config_to_mm_config(hf.config, 'depth'))
    load_converted(model, convert_hf_state_dict(hf.state_dict(), hf.config))
    return model.eval()


# --------------------------------------------------------------------------
# Transformers → dpt_mm


@pytest.mark.parametrize('case', list(CASES))
def test_depth_parity_square_and_non_square(case: str) -> None:
    hf = randomize(DPTForDepthEstimation(CASES[case]()))
    model = convert_and_build(hf)
    # Transformers accepts every size here (BEiT resizes its bias table,
    # Swin V2 pads to whole windows), non-square included.
    for size in [(64, 64), (64, 96), (96, 64), (32, 32)]:
        x = torch.randn(2, 3, *size)
        assert_close(ours_depth(model, x), hf_depth(hf, x),
                     f'{case} {size[0]}×{size[1]}')


def test_comparison_is_sensitive() -> None:
    """A perturbed relative position bias / logit scale breaks parity."""
    torch.manual_seed(0)  # the same models and perturbation in any order
    for config, key in [(beit_config, 'rel_pos_bias.'
                         'relative_position_bias_table'),
                        (swinv2_config, 'logit_scale')]:
        hf = randomize(DPTForDepthEstimation(config()))
        model = convert_and_build(hf)
        x = torch.randn(2, 3, 64, 96)
        ref = hf_depth(hf, x)
        param = next(p for n, p in model.named_parameters()
                     if n.endswith(key))
        with torch.no_grad():
            if key == 'logit_scale':
                # Down: the scale is clamped at log(100) from above.
                param.sub_(1.0)
            else:
                # Random: a constant bias shift cancels in the softmax.
                param.add_(torch.randn(param.shape) * 0.5)
        diff = (ours_depth(model, x) - ref).abs().max() / ref.abs().max()
        assert diff > 1e-3, (key, diff)


def _run_cli(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, HF_HUB_OFFLINE='1', OMP_NUM_THREADS='1',
               PYTHONPATH=REPO + os.pathsep + os.environ.get('PYTHONPATH', ''))
    return subprocess.run([sys.executable, *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize('case', ['beit', 'swinv2'])
def test_hf2mm_cli_config_out_init_model(case: str, tmp_path) -> None:
    """save_pretrained → hf2mm.py --config-out → init_model == Transformers.
    """
    from dpt_mm.apis import init_model
    hf = randomize(DPTForDepthEstimation(CASES[case]()))
    src = tmp_path / 'hf'
    hf.save_pretrained(src)
    dst, cfg_out = tmp_path / 'mm.pth', tmp_path / 'mm_cfg.py'
    proc = _run_cli(HF2MM, str(src), str(dst), '--config-out', str(cfg_out))
    assert proc.returncode == 0, proc.stderr
    assert 'verified' in proc.stdout
    model = init_model(str(cfg_out), str(dst), device='cpu').eval()
    for size in [(64, 64), (64, 96)]:
        x = torch.randn(2, 3, *size)
        assert_close(ours_depth(model, x), hf_depth(hf, x),
                     f'hf2mm CLI {case} {size}')
    # The inference API: any image in, a depth map at its size out.
    import numpy as np
    from dpt_mm.apis import inference_model
    image = np.random.default_rng(0).integers(0, 255, (50, 70, 3), np.uint8)
    result = inference_model(model, image)
    depth = result.pred_depth_map.data
    assert depth.shape[-2:] == (50, 70) and torch.isfinite(depth).all()


def test_config_mapping() -> None:
    cfg = hf_config_to_mm_config(beit_config(), 'depth')
    backbone, neck = cfg['backbone'], cfg['neck']
    assert backbone['type'] == 'DPTBEiT'
    assert backbone['out_indices'] == (0, 1, 2, 3)
    assert backbone['norm_eps'] == 1e-12
    assert neck['in_channels'] == 32 and neck['readout_type'] == 'project'
    cfg = hf_config_to_mm_config(swinv2_config(), 'depth')
    backbone, neck = cfg['backbone'], cfg['neck']
    assert backbone['type'] == 'DPTSwinV2'
    assert backbone['depths'] == (1, 2, 2, 1)
    assert neck['passthrough_indices'] == (0, 1, 2, 3)
    assert list(neck['in_channels']) == [8, 16, 32, 64]
    assert list(neck['reassemble_channels']) == [8, 16, 32, 64]


@pytest.mark.parametrize('config, match', [
    (lambda: beit_config(backbone=dict(reshape_hidden_states=True)),
     'reshape_hidden_states'),
    (lambda: beit_config(backbone=dict(out_features=['stem', 'stage4']),
                         neck_hidden_sizes=[8, 16],
                         reassemble_factors=[4, 2]), 'stage1'),
    (lambda: swinv2_config(neck_hidden_sizes=[8, 16, 32, 32]),
     'stage widths'),
    (lambda: swinv2_config(backbone=dict(hidden_act='relu')), 'GELU'),
])
def test_unsupported_settings_are_refused(config, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        hf_config_to_mm_config(config().to_dict(), 'depth')


def test_unknown_backbone_key_is_named() -> None:
    hf = DPTForDepthEstimation(beit_config())
    state = dict(hf.state_dict())
    state['backbone.beit.layers.0.attention.extra'] = torch.zeros(1)
    with pytest.raises(KeyError, match='attention.extra'):
        map_hf_state_dict(state, hf.config, 'depth')


# --------------------------------------------------------------------------
# MiDaS v3.1 release layout


def _release_neck_and_head(key: str, levels: int):
    table = [
        (r'head\.head\.(\d)\.(.*)', r'scratch.output_conv.\1.\2'),
        (r'neck\.convs\.(\d)\.weight',
         lambda m: f'scratch.layer{int(m[1]) + 1}_rn.weight'),
        (r'neck\.reassemble_stage\.readout_projects\.(\d)\.0\.(.*)',
         lambda m: f'pretrained.act_postprocess{int(m[1]) + 1}.0.project.0.'
         f'{m[2]}'),
        (r'neck\.reassemble_stage\.layers\.(\d)\.projection\.(.*)',
         lambda m: f'pretrained.act_postprocess{int(m[1]) + 1}.3.{m[2]}'),
        (r'neck\.reassemble_stage\.layers\.(\d)\.resize\.(.*)',
         lambda m: f'pretrained.act_postprocess{int(m[1]) + 1}.4.{m[2]}'),
        (r'neck\.fusion_stage\.layers\.(\d)\.projection\.(.*)',
         lambda m: f'scratch.refinenet{levels - int(m[1])}.out_conv.{m[2]}'),
        (r'neck\.fusion_stage\.layers\.(\d)\.residual_layer(\d)\.'
         r'convolution(\d)\.(.*)',
         lambda m: f'scratch.refinenet{levels - int(m[1])}.resConfUnit'
         f'{m[2]}.conv{m[3]}.{m[4]}'),
    ]
    for pattern, target in table:
        m = re.fullmatch(pattern, key)
        if m:
            return m.expand(target) if isinstance(target, str) else target(m)
    return None


def hf_to_release(hf: torch.nn.Module) -> Dict[str, torch.Tensor]:
    """A MiDaS v3.1 release-layout state dict (timm 0.6 encoder) holding the
    Transformers model's weights: the inverse of Transformers'
    ``convert_dpt_{beit,swinv2}_to_hf.py``, plus the buffers and unused
    timm parts the release files carry."""
    cfg = hf.config
    backbone = cfg.backbone_config
    levels = len(cfg.neck_hidden_sizes)
    out, qkv = {}, {}
    src = 'pretrained.model.'
    if backbone.model_type == 'beit':
        layer = r'backbone\.beit\.layers\.(\d+)\.'
        table = [
            (r'backbone\.beit\.embeddings\.cls_token', src + 'cls_token'),
            (r'backbone\.beit\.embeddings\.position_embeddings',
             src + 'pos_embed'),
            (r'backbone\.beit\.embeddings\.patch_embeddings\.projection\.'
             r'(.*)', src + r'patch_embed.proj.\1'),
            (r'backbone\.beit\.shared_position_bias\.(.*)',
             src + r'rel_pos_bias.\1'),
            (layer + r'lambda_(\d)', src + r'blocks.\1.gamma_\2'),
            (layer + r'attention\.q_proj\.bias',
             src + r'blocks.\1.attn.q_bias'),
            (layer + r'attention\.v_proj\.bias',
             src + r'blocks.\1.attn.v_bias'),
            (layer + r'attention\.o_proj\.(.*)',
             src + r'blocks.\1.attn.proj.\2'),
            (layer + r'layernorm_before\.(.*)', src + r'blocks.\1.norm1.\2'),
            (layer + r'layernorm_after\.(.*)', src + r'blocks.\1.norm2.\2'),
            (layer + r'mlp\.(.*)', src + r'blocks.\1.mlp.\2'),
            (layer + r'relative_position_bias\.(.*)',
             src + r'blocks.\1.attn.\2'),
        ]
        qkv_pattern = layer + r'attention\.([qkv])_proj\.weight'
        for i in range(backbone.num_hidden_layers):
            out[f'{src}blocks.{i}.attn.relative_position_index'] = \
                torch.zeros(17, 17, dtype=torch.long)
        out[src + 'fc_norm.weight'] = torch.ones(backbone.hidden_size)
        out[src + 'fc_norm.bias'] = torch.zeros(backbone.hidden_size)
    else:
        block = r'backbone\.encoder\.layers\.(\d+)\.blocks\.(\d+)\.'
        attn = block + r'attention\.'
        table = [
            (r'backbone\.embeddings\.patch_embeddings\.projection\.(.*)',
             src + r'patch_embed.proj.\1'),
            (r'backbone\.embeddings\.norm\.(.*)',
             src + r'patch_embed.norm.\1'),
            (attn + r'self\.logit_scale',
             src + r'layers.\1.blocks.\2.attn.logit_scale'),
            (attn + r'self\.continuous_position_bias_mlp\.(.*)',
             src + r'layers.\1.blocks.\2.attn.cpb_mlp.\3'),
            (attn + r'self\.query\.bias',
             src + r'layers.\1.blocks.\2.attn.q_bias'),
            (attn + r'self\.value\.bias',
             src + r'layers.\1.blocks.\2.attn.v_bias'),
            (attn + r'output\.dense\.(.*)',
             src + r'layers.\1.blocks.\2.attn.proj.\3'),
            (block + r'layernorm_before\.(.*)',
             src + r'layers.\1.blocks.\2.norm1.\3'),
            (block + r'layernorm_after\.(.*)',
             src + r'layers.\1.blocks.\2.norm2.\3'),
            (block + r'intermediate\.dense\.(.*)',
             src + r'layers.\1.blocks.\2.mlp.fc1.\3'),
            (block + r'output\.dense\.(.*)',
             src + r'layers.\1.blocks.\2.mlp.fc2.\3'),
            (r'backbone\.encoder\.layers\.(\d+)\.downsample\.(.*)',
             src + r'layers.\1.downsample.\2'),
        ]
        qkv_pattern = attn + r'self\.(query|key|value)\.weight'
        for s, depth in enumerate(backbone.depths):
            for j in range(depth):
                prefix = f'{src}layers.{s}.blocks.{j}.'
                out[prefix + 'attn.relative_coords_table'] = torch.zeros(1)
                out[prefix + 'attn.relative_position_index'] = torch.zeros(1)
                if j % 2:
                    out[prefix + 'attn_mask'] = torch.zeros(1)
        out[src + 'norm.weight'] = torch.ones(1)
        out[src + 'norm.bias'] = torch.zeros(1)
    for key, value in hf.state_dict().items():
        m = re.fullmatch(qkv_pattern, key)
        if m:
            name = m.expand(src + ('blocks.\\1.attn.qkv.weight'
                                   if backbone.model_type == 'beit' else
                                   'layers.\\1.blocks.\\2.attn.qkv.weight'))
            qkv.setdefault(name, {})[m.groups()[-1][0]] = value
            continue
        target = _release_neck_and_head(key, levels)
        for pattern, template in table:
            if target is None and re.fullmatch(pattern, key):
                target = re.fullmatch(pattern, key).expand(template)
        assert target is not None, f'test inverse mapping misses {key}'
        out[target] = value
    for name, parts in qkv.items():
        out[name] = torch.cat([parts['q'], parts['k'], parts['v']])
    # The deepest refinenet's unused resConfUnit1 (Transformers has none).
    width = cfg.fusion_hidden_size
    for conv in ('conv1', 'conv2'):
        out[f'scratch.refinenet{levels}.resConfUnit1.{conv}.weight'] = \
            torch.randn(width, width, 3, 3)
        out[f'scratch.refinenet{levels}.resConfUnit1.{conv}.bias'] = \
            torch.randn(width)
    out[src + 'head.weight'] = torch.randn(10, 4)
    out[src + 'head.bias'] = torch.randn(10)
    return out


@pytest.mark.parametrize('case', ['beit', 'swinv2', 'beit_variants'])
def test_release_layout_parity(case: str) -> None:
    hf = randomize(DPTForDepthEstimation(CASES[case]()))
    model_cfg = hf_config_to_mm_config(hf.config, 'depth')
    release = hf_to_release(hf)
    conversion = map_original_state_dict(release, model_cfg)
    assert any('recomputed' in r for r in conversion.dropped.values())
    model = MODELS.build(model_cfg).eval()
    load_converted(model, conversion.state_dict)
    for size in [(64, 64), (64, 96)]:
        x = torch.randn(2, 3, *size)
        assert_close(ours_depth(model, x), hf_depth(hf, x),
                     f'release layout {case} {size}')


@pytest.mark.parametrize('filename, variant', [
    ('dpt_beit_large_512.pt', 'dpt_beit_large_512'),
    ('weights/dpt_beit_large_384.pt', 'dpt_beit_large_384'),
    ('dpt_beit_base_384.pt', 'dpt_beit_base_384'),
    ('dpt_swin2_large_384.pt', 'dpt_swin2_large_384'),
    ('dpt_swin2_base_384.pt', 'dpt_swin2_base_384'),
    ('dpt_swin2_tiny_256.pt', 'dpt_swin2_tiny_256'),
])
def test_guess_midas31_variant(filename: str, variant: str) -> None:
    assert guess_variant(filename) == variant


def _full_size_cases():
    beit = dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                intermediate_size=4096, use_relative_position_bias=True,
                reshape_hidden_states=False, layer_norm_eps=1e-6,
                out_features=['stage6', 'stage12', 'stage18', 'stage24'])
    swin = dict(embed_dim=192, depths=[2, 2, 18, 2],
                num_heads=[6, 12, 24, 48], window_size=24,
                pretrained_window_sizes=[12, 12, 12, 6],
                out_features=['stage1', 'stage2', 'stage3', 'stage4'])
    return {
        'dpt_beit_large_512': (BeitConfig(image_size=512, **beit),
                               [256, 512, 1024, 1024], 512),
        'dpt_swin2_large_384': (Swinv2Config(image_size=384, **swin),
                                [192, 384, 768, 1536], 384),
    }


@pytest.mark.slow
@pytest.mark.parametrize('variant', ['dpt_beit_large_512',
                                     'dpt_swin2_large_384'])
def test_full_size_release_layout_matches_transformers(variant: str) -> None:
    """The repo config of the largest model per family takes a full-size
    release-layout file strictly and computes what Transformers computes."""
    from dpt_mm.converters import ORIGINAL_VARIANTS
    backbone, widths, size = _full_size_cases()[variant]
    hf = randomize(DPTForDepthEstimation(DPTConfig(
        backbone_config=backbone, neck_hidden_sizes=widths)))
    model = MODELS.build(
        Config.fromfile(osp.join(REPO, ORIGINAL_VARIANTS[variant])).model)
    load_converted(model, convert_original_state_dict(hf_to_release(hf),
                                                      variant))
    x = torch.randn(1, 3, size, size)
    assert_close(ours_depth(model.eval(), x), hf_depth(hf, x),
                 f'full-size {variant}')


# --------------------------------------------------------------------------
# training behaviour of the backbones

TINY = {
    'beit': dict(type='DPTBEiT', img_size=32, embed_dims=32, num_layers=4,
                 num_heads=2, out_indices=(1, 3)),
    'swinv2': dict(type='DPTSwinV2', img_size=64, embed_dims=8,
                   depths=(1, 2, 1, 1), num_heads=(1, 2, 2, 2), window_size=4,
                   pretrained_window_sizes=(0, 0, 0, 0)),
}


def _loss(outputs) -> torch.Tensor:
    return sum((o[0].sum() + o[1].sum()) if isinstance(o, tuple) else o.sum()
               for o in outputs)


@pytest.mark.parametrize('name', list(TINY))
def test_gradients_reach_every_parameter(name: str) -> None:
    model = MODELS.build(TINY[name])
    model.init_weights()
    model.train()
    _loss(model(torch.randn(2, 3, 64, 96))).backward()
    missing = [n for n, p in model.named_parameters()
               if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing, missing


@pytest.mark.parametrize('name', list(TINY))
def test_checkpointing_gives_the_same_output_and_gradients(name: str) -> None:
    torch.manual_seed(0)
    plain = MODELS.build(TINY[name])
    plain.init_weights()
    ckpt = MODELS.build(dict(TINY[name], with_cp=True))
    ckpt.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 64, 64, requires_grad=True)
    grads = []
    for model in (plain, ckpt):
        model.train()
        x.grad = None
        loss = _loss(model(x))
        loss.backward()
        grads.append((loss.detach(), x.grad.clone(),
                      [p.grad.clone() for p in model.parameters()]))
    torch.testing.assert_close(grads[0][0], grads[1][0])
    torch.testing.assert_close(grads[0][1], grads[1][1])
    for a, b in zip(grads[0][2], grads[1][2]):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_swinv2_layer_decay_follows_the_block_sequence() -> None:
    from mmengine.optim import build_optim_wrapper
    model = torch.nn.Module()
    model.backbone = MODELS.build(TINY['swinv2'])  # blocks: 1 | 2 | 1 | 1
    assert model.backbone.stage_ends == (0, 2, 3, 4)
    ends = model.backbone.stage_ends
    assert get_vit_layer_id('backbone.downsamples.1.reduction.weight', 5,
                            ends) == 3
    assert get_vit_layer_id('backbone.layers.4.norm1.weight', 5, ends) == 5
    assert get_vit_layer_id('backbone.patch_embed.norm.weight', 5, ends) == 0
    wrapper = build_optim_wrapper(model, dict(
        optimizer=dict(type='AdamW', lr=1.0, weight_decay=0.05),
        constructor='ViTLayerDecayOptimizerConstructor',
        paramwise_cfg=dict(num_layers=5, layer_decay_rate=0.5)))
    lrs = {name: group['lr'] for group in wrapper.optimizer.param_groups
           for name in group['param_names']}
    assert lrs['backbone.downsamples.1.reduction.weight'] == \
        lrs['backbone.layers.2.attn.qkv.weight'] == 0.5**3
    decay = {name: group['weight_decay']
             for group in wrapper.optimizer.param_groups
             for name in group['param_names']}
    assert decay['backbone.layers.0.attn.logit_scale'] == 0.0
    assert decay['backbone.layers.0.attn.qkv.weight'] == 0.05


def test_beit_runs_inputs_of_any_multiple_of_the_patch() -> None:
    model = MODELS.build(TINY['beit']).eval()
    with torch.no_grad():
        feats = model(torch.randn(1, 3, 48, 112))
    assert feats[0][0].shape == (1, 32, 3, 7) and feats[0][1].shape == (1, 32)
    with pytest.raises(ValueError, match='multiple of the patch size'):
        model(torch.randn(1, 3, 40, 64))


@pytest.mark.parametrize('case', ['beit_variants', 'swinv2_two_stages'])
def test_saved_file_layout_converts(case: str, tmp_path) -> None:
    """The file layout (save_pretrained, the Hub) differs from the modules'
    own state dict for BEiT; both convert."""
    from dpt_mm.converters.hf_folder import load_hf_folder
    hf = randomize(DPTForDepthEstimation(CASES[case]()))
    hf.save_pretrained(tmp_path)
    config, state, _ = load_hf_folder(str(tmp_path))
    model = MODELS.build(hf_config_to_mm_config(config, 'depth')).eval()
    load_converted(model, convert_hf_state_dict(state, config))
    x = torch.randn(2, 3, 64, 96)
    assert_close(ours_depth(model, x), hf_depth(hf, x), f'file layout {case}')


@pytest.mark.parametrize('case', ['beit', 'swinv2'])
def test_onnx_export_with_dynamic_size(case: str, tmp_path) -> None:
    """Traced once, the graph runs other sizes (non-square, batch 2): the
    bias-table resize and the window padding stay symbolic."""
    pytest.importorskip('onnx')
    pytest.importorskip('onnxruntime')
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        'dpt_pytorch2onnx',
        osp.join(REPO, 'tools', 'deployment', 'pytorch2onnx.py'))
    exporter = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(exporter)
    hf = randomize(DPTForDepthEstimation(CASES[case]()))
    model = convert_and_build(hf)
    model.cfg = Config(dict(model=hf_config_to_mm_config(hf.config,
                                                         'depth')))
    out = exporter.export_onnx(model, str(tmp_path / f'{case}.onnx'),
                               shape=(64, 64))
    errors = exporter.verify_onnx(model, out, [(64, 64), (96, 128)],
                                  batch=2, rtol=RTOL)
    assert max(errors) <= RTOL, errors


def test_dpt2mm_cli_on_a_release_layout_file(tmp_path) -> None:
    """dpt2mm.py converts a MiDaS v3.1-layout .pt for a given config and
    verifies the strict load before writing."""
    from dpt_mm.converters import format_py_config
    hf = randomize(DPTForDepthEstimation(CASES['swinv2']()))
    src = tmp_path / 'dpt_swin2_tiny_256.pt'
    torch.save(hf_to_release(hf), src)
    cfg_path = tmp_path / 'tiny_swin2.py'
    cfg_path.write_text(format_py_config([
        ('default_scope', 'mmseg'),
        ('custom_imports', dict(imports=['dpt_mm'],
                                allow_failed_imports=False)),
        ('model', hf_config_to_mm_config(hf.config, 'depth'))]))
    dst = tmp_path / 'out.pth'
    proc = _run_cli(osp.join(REPO, 'tools', 'model_converters', 'dpt2mm.py'),
                    str(src), str(dst), '--config', str(cfg_path))
    assert proc.returncode == 0, proc.stderr
    assert 'verified' in proc.stdout and 'attn_mask' in proc.stdout
    from dpt_mm.apis import init_model
    model = init_model(str(cfg_path), str(dst), device='cpu').eval()
    x = torch.randn(2, 3, 64, 96)
    assert_close(ours_depth(model, x), hf_depth(hf, x), 'dpt2mm CLI swin2')

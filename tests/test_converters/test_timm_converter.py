"""timm ImageNet checkpoints → backbone weights loaded by ``init_cfg``.

A timm-layout state dict is made from one of our own random backbones by
the inverse renaming, written here independently of
``dpt_mm.converters.timm`` (``layers.N`` → ``blocks.N``, everything else as
is), plus the parts timm has and DPT does not use (``norm.*``, ``head.*``,
``pre_logits.*``). Converting it and loading it through
``init_cfg=dict(type='Pretrained')`` must reproduce the backbone exactly.
"""
import importlib.util
import os.path as osp
import re
import subprocess
import sys
from typing import Dict

import pytest
import torch
from mmseg.registry import MODELS

from dpt_mm.converters import (TIMM_VARIANTS, CheckpointMismatchError,
                               build_backbone_skeleton,
                               check_backbone_weights,
                               convert_timm_state_dict, guess_timm_variant,
                               load_backbone_checkpoint,
                               map_original_state_dict, map_timm_state_dict)
from dpt_mm.models.layers import resize_pos_embed

REPO = osp.abspath(osp.join(osp.dirname(__file__), '../..'))
TIMM2MM = osp.join(REPO, 'tools', 'model_converters', 'timm2mm.py')

TINY_VIT = dict(type='DPTViT', img_size=32, patch_size=16, embed_dims=16,
                num_layers=2, num_heads=2, out_indices=(0, 1))
TINY_HYBRID = dict(type='DPTViTHybrid', img_size=32, patch_size=16,
                   embed_dims=16, num_layers=2, num_heads=2,
                   out_indices=(0, 1), stem_channels=8,
                   stem_depths=(1, 1, 1), stem_widths=(16, 32, 64),
                   norm_groups=4)


def random_backbone(cfg: dict, seed: int = 0) -> torch.nn.Module:
    """A backbone whose every tensor is distinct random data."""
    backbone = MODELS.build(cfg)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in backbone.parameters():
            p.copy_(torch.randn(p.shape, generator=gen))
    return backbone


def to_timm(state_dict: Dict[str, torch.Tensor],
            classes: int = 7) -> Dict[str, torch.Tensor]:
    """Our backbone keys → timm's, plus timm's unused final norm and head."""
    out = {re.sub(r'^layers\.', 'blocks.', k): v.clone()
           for k, v in state_dict.items()}
    dim = state_dict['cls_token'].shape[-1]
    out.update({
        'norm.weight': torch.ones(dim), 'norm.bias': torch.zeros(dim),
        'pre_logits.fc.weight': torch.randn(dim, dim),
        'pre_logits.fc.bias': torch.randn(dim),
        'head.weight': torch.randn(classes, dim),
        'head.bias': torch.randn(classes),
    })
    return out


def tiny_depth_model(backbone: dict) -> dict:
    return dict(
        type='DPTDepthEstimator',
        data_preprocessor=dict(type='SegDataPreProcessor'),
        backbone=backbone,
        neck=dict(type='DPTNeck', in_channels=[16, 32, 16, 16]
                  if backbone['type'] == 'DPTViTHybrid' else 16,
                  reassemble_channels=(16, 32, 16, 16),
                  resample_factors=(1, 1, 1, 0.5)
                  if backbone['type'] == 'DPTViTHybrid' else (4, 2, 1, 0.5),
                  passthrough_indices=(0, 1)
                  if backbone['type'] == 'DPTViTHybrid' else (),
                  channels=8),
        decode_head=dict(type='DPTDepthHead', in_channels=8, channels=4))


@pytest.mark.parametrize('backbone_cfg', [
    dict(TINY_VIT, num_layers=4, out_indices=(0, 1, 2, 3)), TINY_HYBRID
], ids=['vit', 'hybrid'])
def test_converted_weights_load_through_pretrained_init(
        backbone_cfg: dict, tmp_path) -> None:
    source = random_backbone(backbone_cfg)
    timm_sd = to_timm(source.state_dict())
    conversion = map_timm_state_dict(timm_sd, source.pos_grid)
    assert set(conversion.dropped) == {
        'norm.weight', 'norm.bias', 'head.weight', 'head.bias',
        'pre_logits.fc.weight', 'pre_logits.fc.bias'}
    assert not conversion.resized  # same grid: pos_embed kept as is
    path = str(tmp_path / 'backbone.pth')
    torch.save({'state_dict': conversion.state_dict}, path)

    # Exactly as the configs write it: no prefix, keys are bare.
    cfg = tiny_depth_model(dict(
        backbone_cfg, init_cfg=dict(type='Pretrained', checkpoint=path)))
    model = MODELS.build(cfg)
    model.init_weights()
    loaded = model.backbone.state_dict()
    expected = source.state_dict()
    assert set(loaded) == set(expected)
    for key, value in expected.items():
        assert torch.equal(loaded[key], value), key


def test_pos_embed_resized_to_the_target_grid(tmp_path) -> None:
    # An "ImageNet" checkpoint at 64×64 (4×4 grid) for a 32×48 model.
    source = random_backbone(dict(TINY_VIT, img_size=64))
    timm_sd = to_timm(source.state_dict())
    target_cfg = dict(TINY_VIT, img_size=(32, 48))
    skeleton = build_backbone_skeleton(target_cfg)
    assert skeleton.pos_grid == (2, 3)
    conversion = map_timm_state_dict(timm_sd, skeleton.pos_grid)
    pos = conversion.state_dict['pos_embed']
    assert pos.shape == (1, 1 + 2 * 3, 16)
    assert torch.equal(pos, resize_pos_embed(timm_sd['pos_embed'], (2, 3)))
    assert torch.equal(pos[:, 0], timm_sd['pos_embed'][:, 0])  # cls kept
    assert '4×4 → 2×3' in conversion.summary()
    check_backbone_weights(skeleton, conversion.state_dict)  # fits exactly


def test_unknown_key_is_refused_with_the_key_listed() -> None:
    timm_sd = to_timm(random_backbone(TINY_VIT).state_dict())
    timm_sd['dist_token'] = torch.zeros(1, 1, 16)  # a DeiT distilled model
    timm_sd['blocks.0.attn.q_norm.weight'] = torch.ones(8)
    with pytest.raises(KeyError) as err:
        convert_timm_state_dict(timm_sd)
    message = err.value.args[0]
    assert 'dist_token' in message
    assert 'blocks.0.attn.q_norm.weight' in message


def test_missing_or_misshaped_keys_are_refused_with_the_keys_listed() -> None:
    timm_sd = to_timm(random_backbone(TINY_VIT).state_dict())
    del timm_sd['blocks.1.mlp.fc1.weight']
    skeleton = build_backbone_skeleton(TINY_VIT)
    with pytest.raises(CheckpointMismatchError) as err:
        check_backbone_weights(skeleton, convert_timm_state_dict(timm_sd))
    assert err.value.missing == ['layers.1.mlp.fc1.weight']
    assert 'layers.1.mlp.fc1.weight' in str(err.value)

    # Weights of another width (the wrong variant): every shape is listed.
    wide = to_timm(random_backbone(dict(TINY_VIT, embed_dims=32)).state_dict())
    with pytest.raises(CheckpointMismatchError) as err:
        check_backbone_weights(skeleton, convert_timm_state_dict(wide))
    assert any(m.startswith('layers.0.attn.qkv.weight: checkpoint (96, 32)')
               for m in err.value.mismatched)


def test_pretrained_init_refuses_a_file_that_does_not_fit(tmp_path) -> None:
    """mmengine's Pretrained init is strict=False; DPTViT's is not.

    An unconverted timm file given to ``init_cfg`` would "load" through
    mmengine with a warning and leave the blocks uninitialised;
    ``init_weights`` refuses it, listing the keys and saying what to do,
    and loads the converted file exactly.
    """
    source = random_backbone(TINY_VIT)
    raw = str(tmp_path / 'raw_timm.pth')
    torch.save(to_timm(source.state_dict()), raw)
    target = MODELS.build(dict(TINY_VIT, init_cfg=dict(type='Pretrained',
                                                       checkpoint=raw)))
    with pytest.raises(CheckpointMismatchError) as err:
        target.init_weights()
    assert 'layers.0.attn.qkv.weight' in err.value.missing
    assert 'blocks.0.attn.qkv.weight' in err.value.unexpected
    assert 'convert it with tools/model_converters/timm2mm.py' in str(
        err.value)

    converted = str(tmp_path / 'converted.pth')
    torch.save({'state_dict': convert_timm_state_dict(
        to_timm(source.state_dict()))}, converted)
    target = MODELS.build(dict(TINY_VIT, init_cfg=dict(type='Pretrained',
                                                       checkpoint=converted)))
    target.init_weights()
    assert torch.equal(target.layers[0].attn.qkv.weight,
                       source.layers[0].attn.qkv.weight)
    load_backbone_checkpoint(target, converted)  # the function alone too


def test_variant_table_has_timm_shapes() -> None:
    """The skeletons have the shapes of timm's published ImageNet models."""
    expected = {
        'vit_base_patch16_384': {'pos_embed': (1, 577, 768),
                                 'layers.11.attn.qkv.weight': (2304, 768),
                                 'layers.11.mlp.fc1.weight': (3072, 768)},
        'vit_large_patch16_384': {'pos_embed': (1, 577, 1024),
                                  'layers.23.attn.qkv.weight': (3072, 1024),
                                  'layers.23.mlp.fc1.weight': (4096, 1024)},
        'vit_base_resnet50_384': {
            'pos_embed': (1, 577, 768),
            'patch_embed.proj.weight': (768, 1024, 1, 1),
            'patch_embed.backbone.stem.conv.weight': (64, 3, 7, 7),
            'patch_embed.backbone.stages.2.blocks.8.conv3.weight':
            (1024, 256, 1, 1)},
    }
    for variant, shapes in expected.items():
        state = build_backbone_skeleton(TIMM_VARIANTS[variant]).state_dict()
        for key, shape in shapes.items():
            assert tuple(state[key].shape) == shape, (variant, key)
        fake = {'cls_token': torch.zeros(state['cls_token'].shape)}
        if 'patch_embed.proj.weight' in shapes:
            fake['patch_embed.backbone.stem.conv.weight'] = torch.zeros(1)
        assert guess_timm_variant(fake) == variant


def test_original_release_uses_the_same_timm_rules() -> None:
    """pretrained.model.* of a release file is renamed by the timm table."""
    timm_sd = to_timm(random_backbone(TINY_VIT).state_dict())
    release = {f'pretrained.model.{k}': v for k, v in timm_sd.items()}
    model_cfg = dict(backbone=TINY_VIT,
                     neck=dict(reassemble_channels=(8, 8, 8, 8)),
                     decode_head=dict(type='DPTDepthHead'))
    original = map_original_state_dict(release, model_cfg)
    backbone = {k[len('backbone.'):]: v
                for k, v in original.state_dict.items()}
    timm = convert_timm_state_dict(timm_sd)
    assert backbone.keys() == timm.keys()
    assert all(torch.equal(backbone[k], timm[k]) for k in timm)
    assert len(original.dropped) == len(map_timm_state_dict(timm_sd).dropped)


def _write_config(path, backbone: dict) -> str:
    path.write_text(f'model = dict(backbone={backbone!r})\n')
    return str(path)


def test_cli_converts_and_refuses(tmp_path, capsys) -> None:
    source = random_backbone(TINY_HYBRID)
    src = tmp_path / 'jx_vit_tiny_resnet.pth'
    torch.save(to_timm(source.state_dict()), src)
    config = _write_config(tmp_path / 'tiny.py', TINY_HYBRID)
    dst = tmp_path / 'out' / 'vit-hybrid_384.pth'
    proc = subprocess.run(
        [sys.executable, TIMM2MM, str(src), str(dst), '--config', config],
        cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert 'dropped head.weight' in proc.stdout
    saved = torch.load(dst, weights_only=True)
    assert saved['meta']['converted_from'] == 'timm'
    for key, value in source.state_dict().items():
        assert torch.equal(saved['state_dict'][key], value), key

    # A file missing two keys: refused, keys listed, nothing written (the
    # same main() in-process: a second interpreter start costs seconds).
    broken = to_timm(source.state_dict())
    del broken['blocks.1.attn.proj.weight']
    del broken['patch_embed.backbone.stem.norm.bias']
    torch.save(broken, src)
    dst.unlink()
    spec = importlib.util.spec_from_file_location('timm2mm', TIMM2MM)
    timm2mm = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(timm2mm)
    assert timm2mm.main([str(src), str(dst), '--config', config]) == 1
    stderr = capsys.readouterr().err
    assert 'layers.1.attn.proj.weight' in stderr
    assert 'patch_embed.backbone.stem.norm.bias' in stderr
    assert not dst.exists()

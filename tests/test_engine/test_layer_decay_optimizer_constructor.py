"""ViTLayerDecayOptimizerConstructor: per-block lr and weight decay."""
import pytest
import torch
import torch.nn as nn
from mmengine.optim import PolyLR
from mmseg.registry import OPTIM_WRAPPER_CONSTRUCTORS

import dpt_mm  # noqa: F401
from dpt_mm.engine.optimizers import get_vit_layer_id

NUM_LAYERS = 3


class Block(nn.Module):

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = nn.Linear(dim, dim)


class FakeViT(nn.Module):
    """Parameter names of the DPT backbones (hybrid stem included)."""

    def __init__(self, dim: int = 4) -> None:
        super().__init__()
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 5, dim))
        self.patch_embed = nn.Module()
        self.patch_embed.stem = nn.Sequential(
            nn.Conv2d(3, 3, 1, bias=False), nn.BatchNorm2d(3))
        self.patch_embed.projection = nn.Conv2d(3, dim, 2, 2)
        self.layers = nn.ModuleList(Block(dim) for _ in range(NUM_LAYERS))
        self.norm = nn.LayerNorm(dim)


class FakeDPT(nn.Module):

    def __init__(self) -> None:
        super().__init__()
        self.backbone = FakeViT()
        self.neck = nn.Conv2d(4, 4, 1, bias=False)
        self.decode_head = nn.Conv2d(4, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.backbone.patch_embed.projection(
            self.backbone.patch_embed.stem(x))
        tokens = x.flatten(2).transpose(1, 2) + self.backbone.pos_embed[:, 1:]
        tokens = torch.cat([self.backbone.cls_token, tokens], 1)
        for block in self.backbone.layers:
            # The mean over tokens mixes them, as attention would.
            tokens = tokens + block.attn(block.norm1(tokens)).mean(
                1, keepdim=True)
        tokens = self.backbone.norm(tokens)[:, 1:]
        x = tokens.transpose(1, 2).reshape(1, 4, 2, 2)
        return self.decode_head(self.neck(x))


def build(model: nn.Module, **paramwise_cfg):
    constructor = OPTIM_WRAPPER_CONSTRUCTORS.build(
        dict(
            type='ViTLayerDecayOptimizerConstructor',
            optim_wrapper_cfg=dict(
                type='OptimWrapper',
                optimizer=dict(type='AdamW', lr=1.0, weight_decay=0.05)),
            paramwise_cfg=paramwise_cfg))
    return constructor(model)


def lr_and_wd(optim_wrapper) -> dict:
    found = {}
    for group in optim_wrapper.optimizer.param_groups:
        for name in group['param_names']:
            assert name not in found, f'{name} is in two groups'
            found[name] = (group['lr'], group['weight_decay'])
    return found


def test_lr_and_weight_decay_per_parameter():
    rate, mult, wd = 0.5, 0.1, 0.05
    # lr = 1.0 * mult * rate ** (NUM_LAYERS + 1 - layer_id) for the
    # backbone, 1.0 for the decoder; layer ids 0 (embeddings), i + 1
    # (block i), NUM_LAYERS + 1 (final norm, decoder).
    embed, block0, block1, block2, top = (mult * rate**4, mult * rate**3,
                                          mult * rate**2, mult * rate, mult)
    expected = {
        'backbone.cls_token': (embed, 0.),
        'backbone.pos_embed': (embed, 0.),
        'backbone.patch_embed.stem.0.weight': (embed, wd),
        'backbone.patch_embed.stem.1.weight': (embed, 0.),
        'backbone.patch_embed.stem.1.bias': (embed, 0.),
        'backbone.patch_embed.projection.weight': (embed, wd),
        'backbone.patch_embed.projection.bias': (embed, 0.),
        'backbone.norm.weight': (top, 0.),
        'backbone.norm.bias': (top, 0.),
        'neck.weight': (1.0, wd),
        'decode_head.weight': (1.0, wd),
        'decode_head.bias': (1.0, 0.),
    }
    for i, block_lr in enumerate((block0, block1, block2)):
        expected.update({
            f'backbone.layers.{i}.norm1.weight': (block_lr, 0.),
            f'backbone.layers.{i}.norm1.bias': (block_lr, 0.),
            f'backbone.layers.{i}.attn.weight': (block_lr, wd),
            f'backbone.layers.{i}.attn.bias': (block_lr, 0.),
        })
    model = FakeDPT()
    assert set(expected) == {name for name, _ in model.named_parameters()}

    found = lr_and_wd(
        build(
            model,
            num_layers=NUM_LAYERS,
            layer_decay_rate=rate,
            backbone_lr_mult=mult))
    assert found.keys() == expected.keys()
    for name, (lr, weight_decay) in expected.items():
        assert found[name] == (pytest.approx(lr, rel=1e-12),
                               weight_decay), name


def test_dpt_recipe_backbone_1e5_decoder_1e4():
    constructor = OPTIM_WRAPPER_CONSTRUCTORS.build(
        dict(
            type='ViTLayerDecayOptimizerConstructor',
            optim_wrapper_cfg=dict(
                optimizer=dict(type='Adam', lr=1e-4)),
            paramwise_cfg=dict(num_layers=NUM_LAYERS, backbone_lr_mult=0.1)))
    found = lr_and_wd(constructor(FakeDPT()))
    for name, (lr, _) in found.items():
        want = 1e-5 if name.startswith('backbone.') else 1e-4
        assert lr == pytest.approx(want, rel=1e-12), name


def test_built_wrapper_steps_and_keeps_ratios_under_scheduler():
    model = FakeDPT()
    optim_wrapper = build(
        model, num_layers=NUM_LAYERS, layer_decay_rate=0.5,
        backbone_lr_mult=0.1)
    scheduler = PolyLR(optim_wrapper, by_epoch=False, begin=0, end=10)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}

    optim_wrapper.update_params(model(torch.randn(1, 3, 4, 4)).sum())
    scheduler.step()

    for name, param in model.named_parameters():
        assert not torch.equal(param, before[name]), name
    groups = optim_wrapper.optimizer.param_groups
    decoder_lr = next(g['lr'] for g in groups if g['lr_scale'] == 1.0)
    assert decoder_lr < 1.0  # the scheduler moved it
    for group in groups:
        assert group['lr'] == pytest.approx(decoder_lr * group['lr_scale'])


def test_misconfiguration_is_refused():
    with pytest.raises(ValueError, match='num_layers=3'):
        get_vit_layer_id('backbone.layers.3.attn.weight', NUM_LAYERS)
    with pytest.raises(ValueError, match='layer_decay'):
        build(FakeDPT(), num_layers=NUM_LAYERS, layer_decay=0.9)
    with pytest.raises(ValueError, match='decay_type'):
        build(FakeDPT(), num_layers=NUM_LAYERS, decay_type='stage_wise')

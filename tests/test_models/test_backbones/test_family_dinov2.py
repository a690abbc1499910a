"""DINOv2 family: DPT-DINOv2 and Depth Anything V1 / V2 / V2 metric.

Small random-initialised Transformers models (``DPTForDepthEstimation``
with a ``Dinov2Config`` backbone, ``DepthAnythingForDepthEstimation``) are
converted and must match ``predicted_depth`` to 1e-4 of its largest value
(float32, batch 2), square and non-square, odd patch grids included. The
same holds for state dicts laid out like the original Depth-Anything-V2
release files.
"""
import os.path as osp

import pytest
import torch

transformers = pytest.importorskip('transformers')
from mmseg.registry import MODELS  # noqa: E402
from transformers import (DepthAnythingConfig,  # noqa: E402
                          DepthAnythingForDepthEstimation, Dinov2Config,
                          DPTConfig, DPTForDepthEstimation)

from dpt_mm.converters import (convert_hf_state_dict,  # noqa: E402
                               hf_config_to_mm_config, load_converted)

from test_parity_hf import (HF2MM, _build_from_written,  # noqa: E402
                            assert_close, load_script,
                            randomize)

REPO = osp.abspath(osp.join(osp.dirname(__file__), '../../..'))
SIZES = [(56, 56), (70, 70), (56, 84), (42, 70)]


@pytest.fixture(autouse=True, scope='module')
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def dinov2_config(**kwargs) -> Dinov2Config:
    """A 4-block DINOv2: D=32, patch 14, 56×56 → 4×4 position table."""
    base = dict(hidden_size=32, num_hidden_layers=4, num_attention_heads=4,
                mlp_ratio=2, image_size=56, patch_size=14,
                out_indices=[1, 2, 3, 4], apply_layernorm=True,
                reshape_hidden_states=False, layerscale_value=0.5)
    base.update(kwargs)
    return Dinov2Config(**base)


def depth_anything(backbone=None, **kwargs) -> DepthAnythingForDepthEstimation:
    base = dict(backbone_config=backbone or dinov2_config(),
                reassemble_hidden_size=32, neck_hidden_sizes=[8, 16, 24, 32],
                fusion_hidden_size=16, head_hidden_size=8, patch_size=14)
    base.update(kwargs)
    model = DepthAnythingForDepthEstimation(DepthAnythingConfig(**base))
    randomize(model)
    if base.get('depth_estimation_type', 'relative') == 'relative':
        _open_relu(model, model.head.conv3)
    return model


def dpt_dinov2(**kwargs) -> DPTForDepthEstimation:
    base = dict(backbone_config=dinov2_config(), neck_hidden_sizes=[
        8, 16, 24, 32], fusion_hidden_size=16, readout_type='project',
        hidden_size=32)
    base.update(kwargs)
    model = DPTForDepthEstimation(DPTConfig(**base))
    randomize(model)
    _open_relu(model, model.head.head[4])
    return model


def _open_relu(hf, conv) -> None:
    """Centre the last conv's output so the final ReLU passes ~half."""
    captured = []
    handle = conv.register_forward_hook(lambda m, i, o: captured.append(o))
    x = torch.randn(1, 3, 56, 56, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        hf(pixel_values=x)
        handle.remove()
        conv.bias.sub_(captured[0].median())


def ours(hf) -> torch.nn.Module:
    model = MODELS.build(hf_config_to_mm_config(hf.config))
    load_converted(model, convert_hf_state_dict(hf.state_dict(), hf.config))
    return model.eval()


def compare(hf, model, size, label) -> None:
    x = torch.randn(2, 3, *size, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        ref = hf(pixel_values=x).predicted_depth.unsqueeze(1)
        out = model(x, mode='tensor')
    assert (ref > 0).float().mean() > 0.2
    assert_close(out, ref, f'{label} {size[0]}×{size[1]}')


@pytest.mark.parametrize('size', SIZES)
def test_depth_anything_relative_parity(size):
    hf = depth_anything()
    compare(hf, ours(hf), size, 'Depth Anything relative')


@pytest.mark.parametrize('size', [(56, 56), (42, 70)])
def test_depth_anything_metric_parity(size):
    hf = depth_anything(depth_estimation_type='metric', max_depth=20)
    model = ours(hf)
    assert model.decode_head.output_mode == 'bounded_depth'
    compare(hf, model, size, 'Depth Anything metric')


@pytest.mark.parametrize('size', [(56, 56), (70, 70), (42, 70)])
def test_dpt_dinov2_parity(size):
    hf = dpt_dinov2()
    compare(hf, ours(hf), size, 'DPT-DINOv2')


def test_dpt_dinov2_add_projection_parity():
    # Transformers hard-codes the projection at 256 channels.
    hf = dpt_dinov2(fusion_hidden_size=256, add_projection=True,
                    use_bias_in_fusion_residual=False)
    model = ours(hf)
    assert model.decode_head.projection is not None
    compare(hf, model, (28, 42), 'DPT-DINOv2 add_projection')


def test_dpt_dinov2_swiglu_no_layernorm_parity():
    hf = dpt_dinov2(backbone_config=dinov2_config(
        use_swiglu_ffn=True, apply_layernorm=False), readout_type='add',
        add_projection=False, fusion_hidden_size=16)
    model = ours(hf)
    assert model.backbone.norm is None
    compare(hf, model, (56, 70), 'DPT-DINOv2 SwiGLU')


CLI_CASES = {
    'depth_anything_v2_metric': lambda: depth_anything(
        backbone=dinov2_config(use_swiglu_ffn=True, out_indices=[1, 2, 3, 4]),
        depth_estimation_type='metric', max_depth=80),
    'dpt_dinov2': dpt_dinov2,
}


@pytest.mark.parametrize('case', list(CLI_CASES))
def test_hf2mm_cli(case, tmp_path):
    """save_pretrained folder (legacy key names) → hf2mm → init_model."""
    hf = CLI_CASES[case]()
    src = tmp_path / 'hf'
    hf.save_pretrained(src)
    dst, cfg_out = tmp_path / 'mm.pth', tmp_path / 'mm_cfg.py'
    assert load_script(HF2MM).main(
        [str(src), str(dst), '--config-out', str(cfg_out)]) == 0
    model = _build_from_written(str(cfg_out), str(dst))
    compare(hf, model, (56, 70), f'hf2mm CLI {case}')


# --------------------------------------------------------------------------
# original release layout (DepthAnything/Depth-Anything-V2, V1 the same)

TINY = dict(
    backbone=dict(embed_dims=32, num_layers=4, num_heads=4, mlp_ratio=2.0,
                  img_size=56, out_indices=(0, 1, 2, 3),
                  pos_embed_interp_offset=0.0),
    neck=dict(in_channels=32, reassemble_channels=(8, 16, 24, 32),
              channels=16),
    decode_head=dict(in_channels=16, channels=8))


def tiny_repo_model_cfg(path: str, **head) -> dict:
    """A repository config's model at the size of :func:`depth_anything`
    (with Transformers' position-embedding resizing)."""
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(REPO, path))
    cfg.merge_from_dict({f'model.{k}': v for k, v in TINY.items()})
    cfg.merge_from_dict({'model.decode_head': head})
    model = cfg.model.to_dict()
    model['backbone'].pop('init_cfg', None)
    return model


def hf_to_release(hf) -> dict:
    """Lay a Transformers Depth Anything state dict out like a release file
    (the inverse of Transformers' convert_depth_anything_to_hf.py)."""
    import re
    sd = hf.state_dict()
    out, qkv = {}, {}
    levels = len(hf.config.neck_hidden_sizes)
    plain = {
        r'backbone\.embeddings\.cls_token': 'pretrained.cls_token',
        r'backbone\.embeddings\.mask_token': 'pretrained.mask_token',
        r'backbone\.embeddings\.position_embeddings': 'pretrained.pos_embed',
        r'backbone\.embeddings\.patch_embeddings\.projection\.(.*)':
        r'pretrained.patch_embed.proj.\1',
        r'backbone\.encoder\.layer\.(\d+)\.(norm[12])\.(.*)':
        r'pretrained.blocks.\1.\2.\3',
        r'backbone\.encoder\.layer\.(\d+)\.layer_scale([12])\.lambda1':
        r'pretrained.blocks.\1.ls\2.gamma',
        r'backbone\.encoder\.layer\.(\d+)\.mlp\.(fc[12])\.(.*)':
        r'pretrained.blocks.\1.mlp.\2.\3',
        r'backbone\.encoder\.layer\.(\d+)\.attention\.o_proj\.(.*)':
        r'pretrained.blocks.\1.attn.proj.\2',
        r'backbone\.layernorm\.(.*)': r'pretrained.norm.\1',
        r'neck\.reassemble_stage\.layers\.(\d)\.projection\.(.*)':
        r'depth_head.projects.\1.\2',
        r'neck\.reassemble_stage\.layers\.(\d)\.resize\.(.*)':
        r'depth_head.resize_layers.\1.\2',
        r'neck\.convs\.(\d)\.weight':
        lambda m: f'depth_head.scratch.layer{int(m[1]) + 1}_rn.weight',
        r'neck\.fusion_stage\.layers\.(\d)\.projection\.(.*)':
        lambda m: f'depth_head.scratch.refinenet{levels - int(m[1])}.'
        f'out_conv.{m[2]}',
        r'neck\.fusion_stage\.layers\.(\d)\.residual_layer([12])\.'
        r'convolution([12])\.(.*)':
        lambda m: f'depth_head.scratch.refinenet{levels - int(m[1])}.'
        f'resConfUnit{m[2]}.conv{m[3]}.{m[4]}',
        r'head\.conv1\.(.*)': r'depth_head.scratch.output_conv1.\1',
        r'head\.conv2\.(.*)': r'depth_head.scratch.output_conv2.0.\1',
        r'head\.conv3\.(.*)': r'depth_head.scratch.output_conv2.2.\1',
    }
    for key, value in sd.items():
        m = re.fullmatch(r'backbone\.encoder\.layer\.(\d+)\.attention\.'
                         r'([qkv])_proj\.(.*)', key)
        if m:
            qkv.setdefault((m[1], m[3]), {})[m[2]] = value
            continue
        for pattern, target in plain.items():
            m = re.fullmatch(pattern, key)
            if m:
                out[m.expand(target) if isinstance(target, str) else
                    target(m)] = value
                break
        else:
            raise KeyError(key)
    for (layer, param), parts in qkv.items():
        out[f'pretrained.blocks.{layer}.attn.qkv.{param}'] = torch.cat(
            [parts['q'], parts['k'], parts['v']])
    return out


RELEASE_CASES = {
    'v2_relative': ('configs/depth_anything/depth-anything-v2_vits_relative'
                    '.py', dict(), {}),
    'v2_metric_hypersim': (
        'configs/depth_anything/depth-anything-v2_vits_metric-hypersim.py',
        dict(depth_estimation_type='metric', max_depth=20), {}),
}


@pytest.mark.parametrize('case', list(RELEASE_CASES))
def test_release_layout_parity(case):
    """Release-file layout → convert_original_state_dict → repo config's
    model (at test size) = Transformers on the same weights."""
    from dpt_mm.converters import map_original_state_dict
    path, hf_kwargs, head = RELEASE_CASES[case]
    hf = depth_anything(**hf_kwargs)
    model_cfg = tiny_repo_model_cfg(path, **head)
    conversion = map_original_state_dict(hf_to_release(hf), model_cfg)
    assert set(conversion.dropped) == {
        'pretrained.mask_token',
        *(f'depth_head.scratch.refinenet4.resConfUnit1.conv{i}.{p}'
          for i in (1, 2) for p in ('weight', 'bias'))}
    model = MODELS.build(model_cfg)
    load_converted(model, conversion.state_dict)
    for size in [(56, 56), (42, 70)]:
        compare(hf, model.eval(), size, f'release layout {case}')


def test_dpt2mm_cli_release_file(tmp_path):
    """A release-layout .pth through dpt2mm.py with --config."""
    from dpt_mm.converters import format_py_config
    hf = depth_anything()
    src = tmp_path / 'depth_anything_v2_vits.pth'
    torch.save(hf_to_release(hf), src)
    model_cfg = tiny_repo_model_cfg(
        'configs/depth_anything/depth-anything-v2_vits_relative.py')
    cfg_path = tmp_path / 'tiny.py'
    cfg_path.write_text(format_py_config(
        [('default_scope', 'mmseg'), ('model', model_cfg)], 'tiny'))
    dst = tmp_path / 'mm.pth'
    dpt2mm = osp.join(REPO, 'tools', 'model_converters', 'dpt2mm.py')
    assert load_script(dpt2mm).main(
        [str(src), str(dst), '--config', str(cfg_path)]) == 0
    model = MODELS.build(model_cfg)
    load_converted(model, torch.load(dst, weights_only=True))
    compare(hf, model.eval(), (56, 70), 'dpt2mm CLI release file')


def test_release_variants_from_file_names():
    from dpt_mm.converters import guess_variant, variant_config_path
    names = {
        'depth_anything_v2_vitl.pth': 'depth_anything_v2_vitl',
        'depth_anything_v2_metric_hypersim_vits.pth':
        'depth_anything_v2_metric_hypersim_vits',
        'depth_anything_v2_metric_vkitti_vitb.pth':
        'depth_anything_v2_metric_vkitti_vitb',
        'depth_anything_vitl14.pth': 'depth_anything_v1_vitl',
    }
    for name, variant in names.items():
        assert guess_variant(name) == variant
        assert osp.isfile(variant_config_path(variant))
    with pytest.raises(ValueError, match='Depth Anything variant'):
        guess_variant('depth_anything_v2_metric_vitl.pth')


def test_release_pos_embed_resizing_matches_dinov2_code():
    """pos_embed_interp_offset=0.1 reproduces DINOv2's interpolate_pos_
    encoding (scale factor (grid + 0.1) / table), which differs from the
    size-based resize of Transformers off the native grid."""
    import math
    import torch.nn.functional as F
    from dpt_mm.models.backbones import DPTDINOv2
    backbone = DPTDINOv2(embed_dims=8, num_layers=1, num_heads=2,
                         img_size=70, out_indices=(0, ),
                         pos_embed_interp_offset=0.1)
    torch.nn.init.normal_(backbone.pos_embed)

    def dinov2_reference(pos_embed, h, w):  # dinov2.py, transcribed
        num = pos_embed.shape[1] - 1
        if h * w == num and h == w:
            return pos_embed
        patch = pos_embed[:, 1:].float()
        side = math.sqrt(num)
        h0, w0 = h + 0.1, w + 0.1
        patch = F.interpolate(
            patch.reshape(1, int(side), int(side), -1).permute(0, 3, 1, 2),
            scale_factor=(h0 / side, w0 / side), mode='bicubic')
        patch = patch.permute(0, 2, 3, 1).view(1, -1, pos_embed.shape[-1])
        return torch.cat([pos_embed[:, :1], patch], dim=1)

    with torch.no_grad():
        for grid in [(7, 9), (3, 4), (5, 5)]:
            ref = dinov2_reference(backbone.pos_embed, *grid)
            # grid_sample samples where interpolate does (the normalised
            # coordinates round differently: ~1e-6 on unit values).
            assert torch.allclose(backbone.resized_pos_embed(grid), ref,
                                  atol=1e-5, rtol=0)
        backbone.pos_embed_interp_offset = 0.0
        assert not torch.allclose(backbone.resized_pos_embed((7, 9)),
                                  dinov2_reference(backbone.pos_embed, 7, 9))


def test_silog_batch_pool_is_depth_anything_v2_loss():
    """DepthSiLogLoss(pool='batch', eps=0) = metric_depth/util/loss.py's
    SiLogLoss on the pixels valid within [min_depth, max_depth]."""
    gen = torch.Generator().manual_seed(0)
    pred = torch.rand(3, 1, 8, 10, generator=gen) * 20 + 0.1
    target = torch.rand(3, 1, 8, 10, generator=gen) * 25
    target[1] = 0  # an image without valid pixels
    loss = MODELS.build(dict(type='DepthSiLogLoss', lambd=0.5, eps=0.0,
                             min_depth=1e-3, max_depth=20.0, pool='batch'))
    valid = (target >= 1e-3) & (target <= 20.0)
    diff = torch.log(target[valid]) - torch.log(pred[valid])
    ref = torch.sqrt(diff.pow(2).mean() - 0.5 * diff.mean().pow(2))
    assert torch.allclose(loss(pred, target), ref, rtol=1e-6)
    per_image = MODELS.build(dict(type='DepthSiLogLoss', eps=0.0,
                                  min_depth=1e-3, max_depth=20.0))
    assert not torch.allclose(per_image(pred, target), ref, rtol=1e-3)
    with pytest.raises(ValueError, match='pool'):
        MODELS.build(dict(type='DepthSiLogLoss', pool='pixel'))


# --------------------------------------------------------------------------
# training: the toy configs, gradients, checkpointing, layer decay

TOY_CONFIGS = {
    'depth_anything': 'configs/toy/depth_anything_toy_depth.py',
    'dpt_dinov2': 'configs/toy/dpt_dinov2_toy_depth.py',
}


@pytest.fixture(scope='module')
def toy_root(tmp_path_factory):
    from toy_utils import make_toy_root
    return make_toy_root(tmp_path_factory)


@pytest.mark.parametrize('family', list(TOY_CONFIGS))
def test_toy_config_trains(family, toy_root, tmp_path):
    """The family's toy config trains on the toy scenes (loss falls) and
    evaluates (finite depth metrics) through mmengine's Runner."""
    import math
    from mmengine.config import Config
    from mmengine.runner import Runner
    cfg = Config.fromfile(osp.join(REPO, TOY_CONFIGS[family]))
    iters = 30
    cfg.merge_from_dict({
        'work_dir': str(tmp_path),
        'model.data_preprocessor.size': (70, 98),  # 64×96 toy images
        'model.backbone.img_size': (70, 98),
        'train_cfg.max_iters': iters, 'train_cfg.val_interval': iters,
        'default_hooks.logger.interval': 1,
        'default_hooks.checkpoint.interval': iters,
        'param_scheduler': [dict(type='ConstantLR', factor=1.0,
                                 by_epoch=False)],
        'train_dataloader.batch_size': 4,
        'visualizer.vis_backends': [dict(type='LocalVisBackend')],
    })
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[key].dataset.data_root = osp.join(toy_root, 'nyu')
    runner = Runner.from_cfg(cfg)
    runner.train()
    losses = runner.message_hub.get_scalar('train/loss').data[0]
    assert len(losses) == iters and all(map(math.isfinite, losses))
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    print(f'\n[toy] {family}: loss {first:.3f} → {last:.3f}')
    assert last < 0.9 * first
    metrics = runner.val_loop.run()
    assert math.isfinite(metrics['d1']) and metrics['d1'] > 0


def _tiny_model(path: str, **backbone) -> torch.nn.Module:
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(REPO, path))
    cfg.merge_from_dict({'model.backbone.' + k: v
                         for k, v in backbone.items()})
    return MODELS.build(cfg.model)


def _depth_samples(batch, size):
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    gen = torch.Generator().manual_seed(3)
    samples = []
    for _ in range(batch):
        sample = SegDataSample()
        sample.gt_depth_map = PixelData(
            data=torch.rand(1, *size, generator=gen) * 8 + 0.5)
        sample.set_metainfo(dict(img_shape=size, ori_shape=size,
                                 pad_shape=size))
        samples.append(sample)
    return samples


@pytest.mark.parametrize('family', list(TOY_CONFIGS))
def test_every_parameter_gets_a_gradient(family):
    model = _tiny_model(TOY_CONFIGS[family]).train()
    with torch.no_grad():  # open the final ReLU of the 'depth' head
        model.decode_head.conv_seg.bias.fill_(1.0)
    x = torch.randn(2, 3, 42, 56)
    losses = model(x, _depth_samples(2, (42, 56)), mode='loss')
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    missing = [n for n, p in model.named_parameters()
               if p.requires_grad and (p.grad is None or
                                       not p.grad.abs().sum() > 0)]
    assert not missing, missing


@pytest.mark.parametrize('family', list(TOY_CONFIGS))
def test_gradient_checkpointing_same_output_and_gradients(family):
    torch.manual_seed(0)
    plain = _tiny_model(TOY_CONFIGS[family]).train()
    checkpointed = _tiny_model(TOY_CONFIGS[family], with_cp=True).train()
    checkpointed.neck.with_cp = True
    checkpointed.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 42, 56)
    outs, grads = [], []
    for model in (plain, checkpointed):
        out = model(x, mode='tensor')
        out.square().mean().backward()
        outs.append(out.detach())
        grads.append({n: p.grad for n, p in model.named_parameters()})
    assert torch.allclose(outs[1], outs[0], atol=1e-5)
    for name, grad in grads[0].items():
        assert torch.allclose(grads[1][name], grad, atol=1e-5,
                              rtol=1e-4), name


def test_layer_decay_finds_dinov2_blocks():
    from dpt_mm.engine.optimizers.layer_decay_optimizer_constructor import \
        get_vit_layer_id
    model = _tiny_model(TOY_CONFIGS['depth_anything'])
    ids = {n: get_vit_layer_id(n, 4) for n, _ in model.named_parameters()}
    assert ids['backbone.cls_token'] == ids['backbone.pos_embed'] == 0
    assert ids['backbone.patch_embed.proj.weight'] == 0
    assert ids['backbone.layers.0.ls1.gamma'] == 1
    assert ids['backbone.layers.3.mlp.fc2.weight'] == 4
    assert ids['backbone.norm.weight'] == 5
    assert ids['decode_head.conv1.weight'] == 5
    assert get_vit_layer_id('backbone.register_tokens', 4) == 0


# --------------------------------------------------------------------------
# inference API and ONNX export (sizes are multiples of 14)


@pytest.mark.parametrize('family', list(TOY_CONFIGS))
def test_inference_api_and_onnx_export(family, tmp_path):
    import importlib.util
    import numpy as np
    from dpt_mm.apis import inference_model, init_model
    pytest.importorskip('onnxruntime')
    model = init_model(osp.join(REPO, TOY_CONFIGS[family]), device='cpu')
    with torch.no_grad():  # a non-trivial output through the final ReLU
        model.decode_head.conv_seg.bias.fill_(1.0)
    image = np.random.default_rng(0).integers(0, 255, (60, 90, 3),
                                              dtype=np.uint8)
    depth = inference_model(model, image).pred_depth_map.data
    assert depth.shape == (1, 60, 90) and torch.isfinite(depth).all()
    spec = importlib.util.spec_from_file_location(
        'dpt_pytorch2onnx',
        osp.join(REPO, 'tools', 'deployment', 'pytorch2onnx.py'))
    exporter = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(exporter)
    with pytest.raises(ValueError, match='multiples of 14'):
        exporter.export_onnx(model, str(tmp_path / 'bad.onnx'),
                             shape=(64, 96))
    out = exporter.export_onnx(model, str(tmp_path / f'{family}.onnx'),
                               shape=(70, 98))
    errors = exporter.verify_onnx(model, out, [(56, 84), (98, 140)],
                                  batch=2)
    assert max(errors) <= 1e-4


def test_register_tokens_backbone_parity():
    """DPTDINOv2 with registers = Transformers' Dinov2WithRegistersBackbone
    (antialiased position resizing; registers in neither output)."""
    from transformers import (Dinov2WithRegistersBackbone,
                              Dinov2WithRegistersConfig)
    from dpt_mm.converters.hf_dinov2 import (dinov2_backbone_rules,
                                             fuse_split_projections)
    from dpt_mm.converters.common import apply_rules
    from dpt_mm.models.backbones import DPTDINOv2
    import re
    hf = Dinov2WithRegistersBackbone(Dinov2WithRegistersConfig(
        hidden_size=32, num_hidden_layers=3, num_attention_heads=4,
        mlp_ratio=2, image_size=56, patch_size=14, num_register_tokens=4,
        out_indices=[1, 3], reshape_hidden_states=True))
    randomize(hf)
    ours = DPTDINOv2(img_size=56, embed_dims=32, num_layers=3, num_heads=4,
                     mlp_ratio=2.0, num_register_tokens=4,
                     pos_embed_antialias=True, out_indices=(0, 2),
                     output_cls_token=False).eval()
    sd = {f'backbone.{k}': v for k, v in hf.state_dict().items()}
    layer = r'backbone\.encoder\.layer\.(\d+)\.'
    rest = {k: v for k, v in sd.items() if not re.search(r'[qkv]_proj', k)}
    weights = apply_rules(rest, dinov2_backbone_rules('backbone.', layer,
                                                      True), 'test')
    weights.state_dict.update(fuse_split_projections(sd, layer))
    load_converted(ours, {k[len('backbone.'):]: v
                          for k, v in weights.state_dict.items()})
    x = torch.randn(2, 3, 42, 70)
    with torch.no_grad():
        refs = hf(pixel_values=x).feature_maps
        outs = ours(x)
    for out, ref in zip(outs, refs):
        assert_close(out, ref, 'DINOv2 with registers, 42×70')


REPO_CONFIGS = [
    'configs/depth_anything/depth-anything-v2_vits_relative.py',
    'configs/depth_anything/depth-anything-v2_vitb_metric-hypersim.py',
    'configs/depth_anything/depth-anything-v2_vitl_metric-vkitti.py',
    'configs/dpt_dinov2/dpt-dinov2_vits_nyu.py',
]


@pytest.mark.parametrize('path', REPO_CONFIGS)
def test_repo_config_trains_and_tests_on_toy_data(path, toy_root, tmp_path):
    """The repository config's data set, pipelines (518 lower-bound resize,
    crops), losses, schedule and metric run, at toy sizes."""
    import math
    from mmengine.config import Config
    from mmengine.runner import Runner
    from toy_utils import _toy_layout
    cfg = Config.fromfile(osp.join(REPO, path))
    cfg.merge_from_dict({f'model.{k}': v for k, v in TINY.items()})
    cfg.model.backbone.pop('init_cfg', None)
    if cfg.model.neck.readout_type == 'project':  # DPT-DINOv2: 256 → 16
        cfg.model.decode_head.in_channels = 16
    cfg.model.data_preprocessor.size = (56, 56)

    def shrink(pipeline):
        for transform in pipeline:
            if transform['type'] == 'DPTResize':
                transform['size'] = 56
            if transform['type'] == 'RandomCrop':
                transform['crop_size'] = (56, 56)

    cfg.merge_from_dict({
        'work_dir': str(tmp_path), 'load_from': None,
        'train_cfg.max_iters': 2, 'train_cfg.val_interval': 2,
        'default_hooks.checkpoint.interval': 2,
        'param_scheduler': [dict(type='ConstantLR', factor=1.0,
                                 by_epoch=False)],
        'visualizer.vis_backends': [dict(type='LocalVisBackend')]})
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loader = cfg[key]
        loader.num_workers, loader.persistent_workers = 0, False
        loader.batch_size = 2 if key == 'train_dataloader' else 1
        loader.dataset.data_root = osp.join(
            toy_root, _toy_layout(loader.dataset.type))
        shrink(loader.dataset.pipeline)
    runner = Runner.from_cfg(cfg)
    runner.train()
    losses = runner.message_hub.get_scalar('train/loss').data[0]
    assert all(map(math.isfinite, losses))
    metrics = runner.test()
    assert math.isfinite(metrics['d1'])

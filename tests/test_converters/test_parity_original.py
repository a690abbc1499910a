"""Original isl-org/DPT release layout → dpt_mm, checked by Transformers.

A release-layout state dict is derived from a random-initialised
Transformers model by the inverse of Transformers' own converters
(``convert_dpt_to_pytorch.py``, ``convert_dpt_hybrid_to_pytorch.py``),
written here independently of ``dpt_mm.converters``: ``pretrained.model.*``
(fused qkv), ``pretrained.act_postprocessK``, ``scratch.layerK_rn``,
``scratch.refinenetK`` (K = 4 deepest), ``scratch.output_conv``,
``auxlayer``, plus the timm leftovers ``pretrained.model.{norm,head}``.
Converting it with ``dpt2mm`` must give the Transformers model's outputs.
"""
import os.path as osp
import re
from typing import Dict

import pytest
import torch

pytest.importorskip('transformers')
from mmengine.config import Config  # noqa: E402
from mmseg.registry import MODELS  # noqa: E402
from transformers import (DPTConfig, DPTForDepthEstimation,  # noqa: E402
                          DPTForSemanticSegmentation)

from dpt_mm.converters import (ORIGINAL_VARIANTS,  # noqa: E402
                               CheckpointMismatchError,
                               check_original_numerics,
                               convert_original_state_dict, format_py_config,
                               guess_variant, hf_config_to_mm_config,
                               load_converted, map_original_state_dict)

REPO = osp.abspath(osp.join(osp.dirname(__file__), '../..'))
DPT2MM = osp.join(REPO, 'tools', 'model_converters', 'dpt2mm.py')
RTOL = 1e-4


@pytest.fixture(autouse=True, scope='module')
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_config(hybrid: bool = False, **kwargs) -> DPTConfig:
    base = dict(hidden_size=32, num_hidden_layers=4, num_attention_heads=4,
                intermediate_size=64, image_size=64, patch_size=16,
                backbone_out_indices=[0, 1, 2, 3], fusion_hidden_size=16)
    if hybrid:
        base.update(
            is_hybrid=True, neck_hidden_sizes=[32, 64, 48, 64],
            reassemble_factors=[1, 1, 1, 0.5],
            backbone_featmap_shape=[1, 128, 4, 4],
            backbone_config=dict(
                num_groups=4, hidden_sizes=[32, 64, 128], depths=[1, 1, 2],
                embedding_size=16, global_padding='same',
                layer_type='bottleneck', embedding_dynamic_padding=True,
                out_features=['stage1', 'stage2', 'stage3']))
    else:
        base.update(neck_hidden_sizes=[8, 16, 24, 32])
    base.update(kwargs)
    return DPTConfig(**base)


def randomize(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            std = 0.5 if 'embeddings' in name and p.ndim == 3 else \
                (p.numel() / p.shape[0])**-0.5 if p.ndim > 1 else 0.1
            p.copy_(torch.randn(p.shape, generator=gen) * std)
            if p.ndim == 1 and ('norm' in name or 'head.1' in name):
                p.add_(1.0)
        for name, b in model.named_buffers():
            if name.endswith('running_mean'):
                b.copy_(torch.randn(b.shape, generator=gen) * 0.1)
            elif name.endswith('running_var'):
                b.copy_(torch.rand(b.shape, generator=gen) + 0.5)
            elif name.endswith('num_batches_tracked'):
                b.fill_(7)
        if isinstance(model, DPTForDepthEstimation):
            # Positive weights on the post-ReLU input keep most pixels
            # above the last ReLU (random weights can zero the output).
            model.head.head[4].weight.abs_()
    return model.eval()


# --------------------------------------------------------------------------
# Transformers → original release layout (inverse of Transformers' own
# converters; independent of dpt_mm.converters)

_ENC = r'dpt\.encoder\.layer\.(\d+)\.'
_BIT = r'dpt\.embeddings\.backbone\.bit\.'


def hf_to_original(hf_state: Dict[str, torch.Tensor],
                   cfg: DPTConfig) -> Dict[str, torch.Tensor]:
    """Release-layout state dict holding the Transformers model's weights."""
    levels = len(cfg.neck_hidden_sizes)
    head = 'scratch.output_conv'
    table = [
        (r'dpt\.embeddings\.cls_token', 'pretrained.model.cls_token'),
        (r'dpt\.embeddings\.position_embeddings',
         'pretrained.model.pos_embed'),
        (r'dpt\.embeddings\.patch_embeddings\.projection\.(.*)',
         r'pretrained.model.patch_embed.proj.\1'),
        (r'dpt\.embeddings\.projection\.(.*)',
         r'pretrained.model.patch_embed.proj.\1'),
        (_BIT + r'embedder\.convolution\.(.*)',
         r'pretrained.model.patch_embed.backbone.stem.conv.\1'),
        (_BIT + r'embedder\.norm\.(.*)',
         r'pretrained.model.patch_embed.backbone.stem.norm.\1'),
        (_BIT + r'encoder\.stages\.(\d+)\.layers\.(\d+)\.(.*)',
         r'pretrained.model.patch_embed.backbone.stages.\1.blocks.\2.\3'),
        (_ENC + r'layernorm_before\.(.*)',
         r'pretrained.model.blocks.\1.norm1.\2'),
        (_ENC + r'layernorm_after\.(.*)',
         r'pretrained.model.blocks.\1.norm2.\2'),
        (_ENC + r'attention\.output\.dense\.(.*)',
         r'pretrained.model.blocks.\1.attn.proj.\2'),
        (_ENC + r'intermediate\.dense\.(.*)',
         r'pretrained.model.blocks.\1.mlp.fc1.\2'),
        (_ENC + r'output\.dense\.(.*)',
         r'pretrained.model.blocks.\1.mlp.fc2.\2'),
        (r'dpt\.layernorm\.(.*)', r'pretrained.model.norm.\1'),
        (r'head\.head\.(\d)\.(.*)', head + r'.\1.\2'),
        (r'auxiliary_head\.head\.(\d)\.(.*)', r'auxlayer.\1.\2'),
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
         r'(convolution|batch_norm)(\d)\.(.*)',
         lambda m: f'scratch.refinenet{levels - int(m[1])}.resConfUnit'
         f"{m[2]}.{'conv' if m[3] == 'convolution' else 'bn'}{m[4]}.{m[5]}"),
    ]
    out, qkv = {}, {}
    for key, value in hf_state.items():
        m = re.fullmatch(_ENC + r'attention\.attention\.(query|key|value)\.'
                         r'(weight|bias)', key)
        if m:
            qkv.setdefault((m[1], m[3]), {})[m[2]] = value
            continue
        for pattern, target in table:
            m = re.fullmatch(pattern, key)
            if m:
                out[m.expand(target) if isinstance(target, str) else
                    target(m)] = value
                break
        else:
            raise AssertionError(f'test inverse mapping misses {key}')
    for (layer, param), parts in qkv.items():
        out[f'pretrained.model.blocks.{layer}.attn.qkv.{param}'] = torch.cat(
            [parts['query'], parts['key'], parts['value']])
    # timm's ImageNet head, carried by the release files and unused.
    out['pretrained.model.head.weight'] = torch.randn(10, cfg.hidden_size)
    out['pretrained.model.head.bias'] = torch.randn(10)
    return out


def hf_output(hf: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        out = hf(pixel_values=x)
    if isinstance(hf, DPTForDepthEstimation):
        return out.predicted_depth.unsqueeze(1)
    return out.logits


def assert_close(out: torch.Tensor, ref: torch.Tensor, label: str) -> None:
    assert out.shape == ref.shape
    assert ref.std() > 0
    diff = (out - ref).abs().max().item() / ref.abs().max().item()
    print(f'\n[parity] {label}: max |diff| / max |ref| = {diff:.2e}')
    assert diff <= RTOL, f'{label}: relative difference {diff:.2e}'


CASES = {
    'vit_depth': lambda: (DPTForDepthEstimation(tiny_config()), 'depth'),
    'hybrid_depth': lambda: (DPTForDepthEstimation(tiny_config(True)),
                             'depth'),
    'vit_seg_aux': lambda: (DPTForSemanticSegmentation(tiny_config(
        use_batch_norm_in_fusion_residual=True, num_labels=4)), 'seg'),
    'hybrid_seg_aux': lambda: (DPTForSemanticSegmentation(tiny_config(
        True, use_batch_norm_in_fusion_residual=True, num_labels=4)), 'seg'),
}


def make_case(case: str):
    hf, task = CASES[case]()
    hf = randomize(hf)
    original = hf_to_original(hf.state_dict(), hf.config)
    model_cfg = hf_config_to_mm_config(hf.config, task)
    return hf, original, model_cfg


@pytest.mark.parametrize('case', list(CASES))
def test_original_layout_parity(case: str) -> None:
    hf, original, model_cfg = make_case(case)
    conversion = map_original_state_dict(original, model_cfg)
    assert 'pretrained.model.head.weight' in conversion.dropped
    assert 'pretrained.model.norm.bias' in conversion.dropped
    assert 'scratch.refinenet4.resConfUnit1.conv1.weight' in \
        conversion.dropped
    model = MODELS.build(model_cfg).eval()
    load_converted(model, conversion.state_dict)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        out = model(x, mode='tensor')
    assert_close(out, hf_output(hf, x), f'original layout {case}')


def test_wrapped_checkpoint_and_dropped_aux_head() -> None:
    """``{'model': ..., 'optimizer': ...}`` is unwrapped; a config without an
    auxiliary head drops ``auxlayer`` (listed), the rest still matches."""
    hf, original, model_cfg = make_case('vit_seg_aux')
    model_cfg.pop('auxiliary_head')
    wrapped = dict(model=original, optimizer=dict(state={}, param_groups=[]))
    conversion = map_original_state_dict(wrapped, model_cfg)
    assert 'auxlayer.4.weight' in conversion.dropped
    model = MODELS.build(model_cfg).eval()
    load_converted(model, conversion.state_dict)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        out = model(x, mode='tensor')
    assert_close(out, hf_output(hf, x), 'original layout, wrapped, no aux')


def test_missing_batch_counter_is_filled() -> None:
    hf, original, model_cfg = make_case('vit_seg_aux')
    original = {k: v for k, v in original.items()
                if not k.endswith('num_batches_tracked')}
    conversion = map_original_state_dict(original, model_cfg)
    assert 'decode_head.conv.bn.num_batches_tracked' in conversion.filled
    load_converted(MODELS.build(model_cfg), conversion.state_dict)


def test_dpt2mm_cli(tmp_path) -> None:
    import os
    import subprocess
    import sys
    from dpt_mm.utils import load_checkpoint_file
    hf, original, model_cfg = make_case('hybrid_depth')
    src, dst = tmp_path / 'dpt_tiny.pt', tmp_path / 'mm.pth'
    torch.save(original, src)
    cfg_path = tmp_path / 'tiny_cfg.py'
    cfg_path.write_text(format_py_config([
        ('default_scope', 'mmseg'),
        ('custom_imports', dict(imports=['dpt_mm'],
                                allow_failed_imports=False)),
        ('model', model_cfg)]))
    env = dict(os.environ, HF_HUB_OFFLINE='1', OMP_NUM_THREADS='1',
               PYTHONPATH=REPO + os.pathsep + os.environ.get('PYTHONPATH', ''))
    proc = subprocess.run(
        [sys.executable, DPT2MM, str(src), str(dst), '--config',
         str(cfg_path)], cwd=REPO, env=env, capture_output=True, text=True,
        timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert 'dropped pretrained.model.head.weight' in proc.stdout
    # The tiny config has Transformers numerics: the CLI says so.
    assert 'WARNING' in proc.stdout and 'norm_eps' in proc.stdout
    ckpt = load_checkpoint_file(str(dst))
    assert ckpt['meta']['converted_from'] == 'isl-org/DPT'
    # The release's weight standardisation, for init_model to check.
    assert ckpt['meta']['numerics'] == {'backbone.ws_mode': 'std',
                                        'backbone.ws_eps': 1e-5}
    model = MODELS.build(Config.fromfile(str(cfg_path)).model).eval()
    load_converted(model, ckpt)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        out = model(x, mode='tensor')
    assert_close(out, hf_output(hf, x), 'dpt2mm CLI hybrid depth')


def test_dpt2mm_writes_safetensors(tmp_path) -> None:
    from dpt_mm.utils import load_checkpoint_file
    hf, original, model_cfg = make_case('hybrid_depth')
    src, dst = tmp_path / 'dpt_tiny.pt', tmp_path / 'mm.safetensors'
    torch.save(original, src)
    cfg_path = tmp_path / 'tiny_cfg.py'
    cfg_path.write_text(format_py_config([('model', model_cfg)]))
    assert _load_cli().main([str(src), str(dst), '--config',
                             str(cfg_path)]) == 0
    ckpt = load_checkpoint_file(str(dst))
    assert ckpt['meta']['numerics']['backbone.ws_mode'] == 'std'
    model = MODELS.build(Config.fromfile(str(cfg_path)).model).eval()
    load_converted(model, ckpt)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        out = model(x, mode='tensor')
    assert_close(out, hf_output(hf, x), 'dpt2mm safetensors hybrid depth')


# --------------------------------------------------------------------------
# refusals


def _load_cli():
    import importlib.util
    spec = importlib.util.spec_from_file_location('dpt2mm', DPT2MM)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_unknown_key_is_refused_and_listed(tmp_path, capsys) -> None:
    _, original, model_cfg = make_case('vit_depth')
    original['scratch.refinenet2.mystery.weight'] = torch.zeros(1)
    with pytest.raises(KeyError, match='scratch.refinenet2.mystery.weight'):
        convert_original_state_dict(original, model_cfg)
    src, dst = tmp_path / 'x.pt', tmp_path / 'mm.pth'
    torch.save(original, src)
    cfg_path = tmp_path / 'cfg.py'
    cfg_path.write_text(format_py_config([('model', model_cfg)]))
    assert _load_cli().main([str(src), str(dst), '--config',
                             str(cfg_path)]) == 1
    assert 'scratch.refinenet2.mystery.weight' in capsys.readouterr().err
    assert not dst.exists()


def test_missing_and_extra_keys_are_refused_and_listed() -> None:
    _, original, model_cfg = make_case('vit_depth')
    del original['scratch.layer3_rn.weight']
    # A well-formed name the model does not have (level 3 has no resample).
    original['pretrained.act_postprocess3.4.weight'] = torch.zeros(1)
    state = convert_original_state_dict(original, model_cfg)
    model = MODELS.build(model_cfg)
    with pytest.raises(CheckpointMismatchError) as err:
        load_converted(model, state)
    assert err.value.missing == ['neck.lateral_convs.2.weight']
    assert err.value.unexpected == ['neck.reassemble_blocks.2.resample.weight']
    assert 'neck.lateral_convs.2.weight' in str(err.value)


# --------------------------------------------------------------------------
# variants


@pytest.mark.parametrize('filename, variant', [
    ('dpt_large-midas-2f21e586.pt', 'dpt_large_midas'),
    ('dpt_hybrid-midas-501f0c75.pt', 'dpt_hybrid_midas'),
    ('weights/dpt_hybrid_nyu-2ce69ec7.pt', 'dpt_hybrid_nyu'),
    ('dpt_hybrid_kitti-cb926ef4.pt', 'dpt_hybrid_kitti'),
    ('dpt_large-ade20k-b12dca68.pt', 'dpt_large_ade20k'),
    ('dpt_hybrid-ade20k-53898607.pt', 'dpt_hybrid_ade20k'),
    ('dpt_large_384.pt', 'dpt_large_midas'),
    ('dpt_hybrid_384.pt', 'dpt_hybrid_midas'),
])
def test_guess_variant(filename: str, variant: str) -> None:
    assert guess_variant(filename) == variant


@pytest.mark.parametrize('filename', ['model.pt', 'dpt_large_nyu.pt',
                                      'dpt_base-ade20k.pt'])
def test_unknown_variant_lists_the_variants(filename: str, capsys) -> None:
    with pytest.raises(ValueError) as err:
        guess_variant(filename)
    for variant in ORIGINAL_VARIANTS:
        assert variant in str(err.value)
    with pytest.raises(SystemExit) as exit_info:
        _load_cli().main([filename, 'out.pth'])
    assert exit_info.value.code == 2
    assert 'dpt_hybrid_kitti' in capsys.readouterr().err


@pytest.mark.parametrize('variant', list(ORIGINAL_VARIANTS))
def test_variant_configs_use_original_numerics(variant: str) -> None:
    path = osp.join(REPO, ORIGINAL_VARIANTS[variant])
    if not osp.isfile(path):
        pytest.skip(f'{ORIGINAL_VARIANTS[variant]} not written yet')
    model_cfg = Config.fromfile(path).model
    assert check_original_numerics(model_cfg) == []
    hybrid = 'hybrid' in variant
    assert (model_cfg.backbone.type == 'DPTViTHybrid') == hybrid
    seg = variant.endswith('ade20k')
    assert model_cfg.decode_head.type == ('DPTSegHead'
                                          if seg else 'DPTDepthHead')
    if seg:
        assert model_cfg.decode_head.num_classes == 150


# --------------------------------------------------------------------------
# full-size release variants (DPT_MM_SLOW=1)

_LARGE = dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
              intermediate_size=4096, backbone_out_indices=[5, 11, 17, 23],
              neck_hidden_sizes=[256, 512, 1024, 1024])
_HYBRID = dict(is_hybrid=True, neck_hidden_sizes=[256, 512, 768, 768],
               reassemble_factors=[1, 1, 1, 0.5])
_SEG = dict(use_batch_norm_in_fusion_residual=True, num_labels=150)
FULL_VARIANTS = {
    'dpt_large_midas': (DPTForDepthEstimation, _LARGE),
    'dpt_hybrid_midas': (DPTForDepthEstimation, _HYBRID),
    'dpt_hybrid_nyu': (DPTForDepthEstimation, _HYBRID),
    'dpt_hybrid_kitti': (DPTForDepthEstimation, _HYBRID),
    'dpt_large_ade20k': (DPTForSemanticSegmentation, dict(_LARGE, **_SEG)),
    'dpt_hybrid_ade20k': (DPTForSemanticSegmentation, dict(_HYBRID, **_SEG)),
}


@pytest.mark.slow
@pytest.mark.parametrize('variant', list(FULL_VARIANTS))
def test_full_size_variant_configs_take_release_layout(variant: str) -> None:
    """Each variant's config accepts a release-layout file of the full-size
    architecture strictly, and computes what Transformers computes.

    The configs use the original numerics (LayerNorm eps 1e-6, which the
    Transformers model is given too; hybrid weight standardisation
    (std + 1e-5), switched here to Transformers' sqrt(var + 1e-8) for the
    comparison only). Metric variants apply 1 / (scale·out + shift).
    """
    cls, kwargs = FULL_VARIANTS[variant]
    hf = randomize(cls(DPTConfig(layer_norm_eps=1e-6, **kwargs)))
    original = hf_to_original(hf.state_dict(), hf.config)
    model = MODELS.build(
        Config.fromfile(osp.join(REPO, ORIGINAL_VARIANTS[variant])).model)
    load_converted(model, convert_original_state_dict(original, variant))
    model.eval()
    for module in model.modules():
        if hasattr(module, 'ws_mode'):
            module.ws_mode, module.eps = 'var', 1e-8
    x = torch.randn(1, 3, 384, 384)
    ref = hf_output(hf, x)
    head = model.decode_head
    if getattr(head, 'output_mode', None) == 'metric_from_inverse':
        ref = 1.0 / torch.clamp(
            head.depth_scale * ref + head.depth_shift, min=1e-8)
    with torch.no_grad():
        out = model(x, mode='tensor')
    assert_close(out, ref, f'full-size release layout {variant}')

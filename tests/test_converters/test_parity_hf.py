"""Numerical parity with Transformers' DPT after weight conversion.

Small random-initialised Transformers models (non-trivial weights: every
parameter drawn at random, BatchNorm running statistics randomised) are
converted with ``dpt_mm.converters`` and through the ``hf2mm.py`` CLI, and
our ``model(x, mode='tensor')`` must match ``predicted_depth`` / ``logits``
to 1e-4 of the largest output value (float32, eval mode).
"""
import os
import os.path as osp
import subprocess
import sys
from typing import Dict, Tuple

import pytest
import torch

transformers = pytest.importorskip('transformers')
from mmengine.config import Config  # noqa: E402
from mmseg.registry import MODELS  # noqa: E402
from transformers import (DPTConfig,  # noqa: E402
                          DPTForDepthEstimation, DPTForSemanticSegmentation,
                          DPTModel)

from dpt_mm.converters import (CheckpointMismatchError,  # noqa: E402
                               convert_hf_state_dict, hf_config_to_mm_config,
                               load_converted, map_hf_state_dict,
                               resolve_hf_config)

REPO = osp.abspath(osp.join(osp.dirname(__file__), '../..'))
HF2MM = osp.join(REPO, 'tools', 'model_converters', 'hf2mm.py')
RTOL = 1e-4


@pytest.fixture(autouse=True, scope='module')
def _one_thread():
    """Tiny models: one thread is faster and steady on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def load_script(path: str):
    """Import a tools/ script as a module (for in-process calls)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        osp.splitext(osp.basename(path))[0], path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module

# --------------------------------------------------------------------------
# tiny Transformers models


def vit_config(**kwargs) -> DPTConfig:
    """A 4-block ViT DPT: D=32, patch 16, 64×64 → 4×4 tokens."""
    base = dict(hidden_size=32, num_hidden_layers=4, num_attention_heads=4,
                intermediate_size=64, image_size=64, patch_size=16,
                backbone_out_indices=[0, 1, 2, 3],
                neck_hidden_sizes=[8, 16, 24, 32], fusion_hidden_size=16)
    base.update(kwargs)
    return DPTConfig(**base)


def hybrid_config(**kwargs) -> DPTConfig:
    """A DPT-Hybrid with a 3-stage BiT (1, 1, 2 blocks, 4 groups), D=32."""
    bit = dict(num_groups=4, hidden_sizes=[32, 64, 128], depths=[1, 1, 2],
               embedding_size=16, global_padding='same',
               layer_type='bottleneck', embedding_dynamic_padding=True,
               out_features=['stage1', 'stage2', 'stage3'])
    base = dict(is_hybrid=True, hidden_size=32, num_hidden_layers=4,
                num_attention_heads=4, intermediate_size=64, image_size=64,
                patch_size=16, backbone_out_indices=[0, 1, 2, 3],
                neck_hidden_sizes=[32, 64, 48, 64],
                reassemble_factors=[1, 1, 1, 0.5], fusion_hidden_size=16,
                backbone_config=bit, backbone_featmap_shape=[1, 128, 4, 4])
    base.update(kwargs)
    return DPTConfig(**base)


def randomize(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Random non-trivial weights, scaled so activations stay O(1)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(('cls_token', 'position_embeddings')):
                std = 0.5
            elif p.ndim > 1:
                std = (p.numel() / p.shape[0])**-0.5
            else:
                std = 0.1
            p.copy_(torch.randn(p.shape, generator=gen) * std)
            if p.ndim == 1 and ('norm' in name or 'head.head.1' in name):
                p.add_(1.0)  # norm scales around 1
        for name, b in model.named_buffers():
            if name.endswith('running_mean'):
                b.copy_(torch.randn(b.shape, generator=gen) * 0.1)
            elif name.endswith('running_var'):
                b.copy_(torch.rand(b.shape, generator=gen) + 0.5)
    model.eval()
    if isinstance(model, DPTForDepthEstimation):
        open_final_relu(model)
    return model


def open_final_relu(hf: DPTForDepthEstimation) -> None:
    """Shift the last conv's bias so about half the depth pixels pass the
    final ReLU: random weights otherwise often leave an all-zero output."""
    size = _pair(hf.config.image_size)
    x = torch.randn(1, 3, *size, generator=torch.Generator().manual_seed(1))
    captured = []
    handle = hf.head.head[4].register_forward_hook(
        lambda module, inputs, output: captured.append(output))
    with torch.no_grad():
        hf(pixel_values=x)
        handle.remove()
        hf.head.head[4].bias.sub_(captured[0].median())


def hf_forward(hf: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Transformers' own forward: B×1×H×W depth or B×K×H×W logits."""
    with torch.no_grad():
        out = hf(pixel_values=x)
    if isinstance(hf, DPTForDepthEstimation):
        return out.predicted_depth.unsqueeze(1)
    return out.logits


def hf_forward_manual(hf: torch.nn.Module, x: torch.Tensor
                      ) -> Tuple[torch.Tensor, list]:
    """Transformers' modules called by hand, for any (non-square) input.

    The plain ViT path of ``DPTFor*`` reshapes tokens to a square grid, and
    the hybrid embeddings refuse inputs other than ``image_size``; here the
    hooked hidden states go to ``neck(..., patch_height, patch_width)``
    ourselves. For the hybrid, ``embeddings.image_size`` is set to the input
    size: the check is all it guards, the position embeddings are resized
    to the input's grid in any case.

    Returns:
        tuple: Head output (as :func:`hf_forward`) and the fused maps.
    """
    cfg = hf.config
    height, width = x.shape[-2:]
    if cfg.is_hybrid:
        hf.dpt.embeddings.image_size = (height, width)
    with torch.no_grad():
        out = hf.dpt(x, output_hidden_states=True)
        blocks = out.hidden_states[1:]
        if cfg.is_hybrid:
            feats = list(out.intermediate_activations) + [
                blocks[i] for i in cfg.backbone_out_indices[2:]
            ]
        else:
            feats = [blocks[i] for i in cfg.backbone_out_indices]
        fused = hf.neck(feats, height // cfg.patch_size,
                        width // cfg.patch_size)
        pred = hf.head(fused)
    if cfg.is_hybrid:
        hf.dpt.embeddings.image_size = _pair(cfg.image_size)
    if isinstance(hf, DPTForDepthEstimation):
        pred = pred.unsqueeze(1)
    return pred, fused


def _pair(v):
    return tuple(v) if isinstance(v, (list, tuple)) else (v, v)


def task_of(hf: torch.nn.Module) -> str:
    # ``config.architectures`` is only recorded by save_pretrained.
    return 'seg' if isinstance(hf, DPTForSemanticSegmentation) else 'depth'


def convert_and_build(hf: torch.nn.Module) -> torch.nn.Module:
    """Our model from the converted config, weights loaded strictly."""
    model = MODELS.build(hf_config_to_mm_config(hf.config, task_of(hf)))
    load_converted(model, convert_hf_state_dict(hf.state_dict(), hf.config))
    return model.eval()


def rel_diff(out: torch.Tensor, ref: torch.Tensor) -> float:
    assert out.shape == ref.shape, (out.shape, ref.shape)
    scale = ref.abs().max().item()
    assert scale > 0 and ref.std() > 0, 'reference output is trivial'
    return (out - ref).abs().max().item() / scale


def assert_close(out: torch.Tensor, ref: torch.Tensor, label: str) -> None:
    diff = rel_diff(out, ref)
    print(f'\n[parity] {label}: max |diff| / max |ref| = {diff:.2e}')
    assert diff <= RTOL, f'{label}: relative difference {diff:.2e}'


def check_nontrivial_depth(ref: torch.Tensor) -> None:
    # Depth ends in ReLU: make sure most pixels carry signal.
    assert (ref > 0).float().mean() > 0.2, (ref > 0).float().mean()


# --------------------------------------------------------------------------
# parity through the converter functions

DEPTH_CASES = {
    'vit_project': lambda: vit_config(),
    'vit_add': lambda: vit_config(readout_type='add'),
    'vit_ignore': lambda: vit_config(readout_type='ignore'),
    'vit_head_in_index_-2': lambda: vit_config(head_in_index=-2),
    'vit_add_projection': lambda: vit_config(fusion_hidden_size=256),
    'hybrid': lambda: hybrid_config(),
}


@pytest.mark.parametrize('case', list(DEPTH_CASES))
def test_depth_parity(case: str) -> None:
    torch.manual_seed(0)
    cfg = DEPTH_CASES[case]()
    if case == 'vit_add_projection':
        cfg.add_projection = True
    hf = randomize(DPTForDepthEstimation(cfg))
    model = convert_and_build(hf)
    x = torch.randn(2, 3, 64, 64)
    ref = hf_forward(hf, x)
    check_nontrivial_depth(ref)
    with torch.no_grad():
        out = model(x, mode='tensor')
    assert_close(out, ref, f'depth {case} 64x64')


SEG_CASES = {
    'vit_project': lambda: vit_config(),
    'vit_add': lambda: vit_config(readout_type='add'),
    'vit_ignore': lambda: vit_config(readout_type='ignore'),
    'hybrid': lambda: hybrid_config(),
}


@pytest.mark.parametrize('case', list(SEG_CASES))
def test_seg_parity_with_auxiliary_head(case: str) -> None:
    torch.manual_seed(0)
    cfg = SEG_CASES[case]()
    cfg.use_batch_norm_in_fusion_residual = True
    cfg.num_labels = 5
    cfg.use_auxiliary_head = True
    hf = randomize(DPTForSemanticSegmentation(cfg))
    mm_cfg = hf_config_to_mm_config(hf.config, 'seg')
    assert mm_cfg['auxiliary_head']['in_index'] == 0
    assert mm_cfg['auxiliary_head']['loss_decode']['loss_weight'] == 0.4
    model = convert_and_build(hf)
    x = torch.randn(2, 3, 64, 64)
    ref = hf_forward(hf, x)
    with torch.no_grad():
        out = model(x, mode='tensor')
        feats = model.extract_feat(x)
        aux = model.auxiliary_head.forward(feats)
        _, hf_fused = hf_forward_manual(hf, x)
        aux_ref = hf.auxiliary_head(hf_fused[-1])
    assert_close(out, ref, f'seg {case} logits')
    assert_close(aux, aux_ref, f'seg {case} auxiliary logits')


def test_comparison_is_sensitive() -> None:
    """Negative control: swapping q and k in the converted weights (a
    plausible porting slip) fails the tolerance by orders of magnitude."""
    hf = randomize(DPTForDepthEstimation(vit_config()))
    state = convert_hf_state_dict(hf.state_dict(), hf.config)
    dim = hf.config.hidden_size
    for key in [k for k in state if '.attn.qkv.' in k]:
        q, k, v = state[key].split(dim)
        state[key] = torch.cat([k, q, v])
    model = MODELS.build(hf_config_to_mm_config(hf.config, 'depth')).eval()
    load_converted(model, state)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        out = model(x, mode='tensor')
    assert rel_diff(out, hf_forward(hf, x)) > 100 * RTOL


@pytest.mark.parametrize('size', [96, 80])
def test_vit_depth_other_square_size(size: int) -> None:
    """Position embeddings resized to another grid on both sides; at 80
    (5×5 tokens, odd) the fusion also resizes a lateral map."""
    hf = randomize(DPTForDepthEstimation(vit_config()))
    model = convert_and_build(hf)
    x = torch.randn(1, 3, size, size)
    ref = hf_forward(hf, x)
    with torch.no_grad():
        out = model(x, mode='tensor')
    assert_close(out, ref, f'depth vit {size}x{size} (pos-embed resize)')


@pytest.mark.parametrize('case', ['vit', 'hybrid'])
def test_depth_parity_non_square(case: str) -> None:
    cfg = vit_config() if case == 'vit' else hybrid_config()
    hf = randomize(DPTForDepthEstimation(cfg))
    model = convert_and_build(hf)
    x = torch.randn(1, 3, 64, 128)
    ref, _ = hf_forward_manual(hf, x)
    # The manual path equals the model's own forward where both work.
    square = torch.randn(1, 3, 64, 64)
    assert torch.equal(hf_forward_manual(hf, square)[0],
                       hf_forward(hf, square))
    with torch.no_grad():
        out = model(x, mode='tensor')
    assert out.shape == (1, 1, 64, 128)
    assert_close(out, ref, f'depth {case} 64x128 (non-square)')


def test_dpt_model_backbone_only() -> None:
    """A bare DPTModel converts to backbone weights; hooks match."""
    cfg = vit_config()
    hf = randomize(DPTModel(cfg))
    conversion = map_hf_state_dict(hf.state_dict(), cfg)
    assert all(k.startswith('backbone.') for k in conversion.state_dict)
    assert 'dpt.pooler.dense.weight' in conversion.dropped
    mm_cfg = hf_config_to_mm_config(cfg, task='backbone')
    backbone = MODELS.build(mm_cfg['backbone']).eval()
    load_converted(backbone, {
        k[len('backbone.'):]: v
        for k, v in conversion.state_dict.items()
    })
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        hidden = hf(x, output_hidden_states=True).hidden_states[1:]
        outs = backbone(x)
    for idx, (feat, cls_token) in zip(cfg.backbone_out_indices, outs):
        tokens = hidden[idx]
        assert_close(cls_token, tokens[:, 0], f'backbone cls token {idx}')
        assert_close(feat.flatten(2).transpose(1, 2), tokens[:, 1:],
                     f'backbone tokens {idx}')


# --------------------------------------------------------------------------
# the CLI on save_pretrained folders


def _run_cli(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, HF_HUB_OFFLINE='1', OMP_NUM_THREADS='1',
               PYTHONPATH=REPO + os.pathsep + os.environ.get('PYTHONPATH', ''))
    return subprocess.run([sys.executable, *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)


def _build_from_written(config_path: str, ckpt_path: str) -> torch.nn.Module:
    import dpt_mm.apis
    init_model = getattr(dpt_mm.apis, 'init_model', None)
    if init_model is not None:
        return init_model(config_path, ckpt_path, device='cpu').eval()
    cfg = Config.fromfile(config_path)
    assert cfg.default_scope == 'mmseg'
    assert cfg.custom_imports == dict(imports=['dpt_mm'],
                                      allow_failed_imports=False)
    model = MODELS.build(cfg.model)
    ckpt = torch.load(ckpt_path, map_location='cpu', weights_only=True)
    load_converted(model, ckpt['state_dict'])
    return model.eval()


CLI_CASES = {
    'vit_depth': lambda: DPTForDepthEstimation(vit_config()),
    'hybrid_depth': lambda: DPTForDepthEstimation(hybrid_config()),
    'vit_seg_aux': lambda: DPTForSemanticSegmentation(
        vit_config(use_batch_norm_in_fusion_residual=True, num_labels=3)),
}


@pytest.mark.parametrize('case', list(CLI_CASES))
def test_hf2mm_cli(case: str, tmp_path) -> None:
    hf = randomize(CLI_CASES[case]())
    src = tmp_path / 'hf'
    hf.save_pretrained(src)
    dst, cfg_out = tmp_path / 'mm.pth', tmp_path / 'mm_cfg.py'
    proc = _run_cli(HF2MM, str(src), str(dst), '--config-out', str(cfg_out))
    assert proc.returncode == 0, proc.stderr
    assert 'dropped dpt.layernorm.weight' in proc.stdout
    assert 'verified' in proc.stdout
    ckpt = torch.load(dst, map_location='cpu', weights_only=True)
    # hf_unused: the Transformers tensors dpt_mm does not use, kept so that
    # mm2hf.py gives the source folder back bit for bit.
    assert set(ckpt) == {'state_dict', 'meta', 'hf_unused'}
    assert set(ckpt['hf_unused']) == set(ckpt['meta']['dropped_keys'])
    assert ckpt['meta']['converted_from'] == 'transformers'
    model = _build_from_written(str(cfg_out), str(dst))
    x = torch.randn(1, 3, 64, 64)
    ref = hf_forward(hf, x)
    with torch.no_grad():
        out = model(x, mode='tensor')
    assert_close(out, ref, f'hf2mm CLI {case}')


def test_hf2mm_cli_refuses_unknown_keys(tmp_path, capsys) -> None:
    hf = randomize(DPTForDepthEstimation(vit_config()))
    src = tmp_path / 'hf'
    hf.save_pretrained(src)
    from safetensors.torch import load_file, save_file
    weights = load_file(src / 'model.safetensors')
    weights['neck.mystery.weight'] = torch.zeros(2)
    save_file(weights, src / 'model.safetensors')
    dst = tmp_path / 'mm.pth'
    assert load_script(HF2MM).main([str(src), str(dst)]) == 1
    assert 'neck.mystery.weight' in capsys.readouterr().err
    assert not dst.exists()


# --------------------------------------------------------------------------
# config mapping and error handling


def test_config_mapping_details() -> None:
    cfg = hybrid_config(layer_norm_eps=1e-7, hidden_dropout_prob=0.1)
    mm = hf_config_to_mm_config(cfg, task='depth')
    backbone, neck = mm['backbone'], mm['neck']
    assert backbone['type'] == 'DPTViTHybrid'
    assert backbone['out_indices'] == (2, 3)  # backbone_out_indices[2:]
    assert (backbone['ws_mode'], backbone['ws_eps']) == ('var', 1e-8)
    assert backbone['norm_eps'] == 1e-7 and backbone['norm_groups'] == 4
    assert backbone['stem_widths'] == (32, 64, 128)
    assert neck['passthrough_indices'] == (0, 1)
    assert neck['in_channels'] == [32, 64, 32, 32]
    assert mm['decode_head']['in_index'] == 0
    seg = hf_config_to_mm_config(
        vit_config(use_auxiliary_head=False, semantic_classifier_dropout=0.3,
                   use_batch_norm_in_fusion_residual=True,
                   use_bias_in_fusion_residual=True), task='seg')
    assert 'auxiliary_head' not in seg
    assert seg['decode_head']['dropout_ratio'] == 0.3
    assert seg['neck']['fusion_norm_cfg']['type'] == 'BN'
    assert seg['neck']['fusion_bias'] is True
    # RCU convs get a bias despite BN: the converted weights load strictly.
    hf = randomize(DPTForSemanticSegmentation(vit_config(
        use_batch_norm_in_fusion_residual=True,
        use_bias_in_fusion_residual=True)))
    convert_and_build(hf)


def test_config_json_defaults_match_transformers(tmp_path) -> None:
    """A config.json read without Transformers resolves like DPTConfig."""
    import json

    from dpt_mm.converters.hf import _DPT_DEFAULTS

    from dpt_mm.converters.hf import _BIT_DEFAULTS

    def same(a: dict, b: dict) -> None:
        for key in _DPT_DEFAULTS:
            if key == 'backbone_config' and a[key] is not None:
                for bit_key in _BIT_DEFAULTS:
                    assert a[key][bit_key] == b[key][bit_key], bit_key
            else:
                assert a[key] == b[key], key

    # Fields omitted from config.json take the Transformers defaults.
    for fields in (dict(hidden_size=32), dict(is_hybrid=True),
                   dict(is_hybrid=True, backbone_config=dict(
                       depths=[1, 1, 2], layer_type='bottleneck')),
                   dict(num_labels=7)):
        same(resolve_hf_config(dict(model_type='dpt', **fields)),
             resolve_hf_config(DPTConfig(**fields)))
    # A saved config.json resolves like the config object it came from.
    for cfg in (vit_config(), hybrid_config()):
        cfg.save_pretrained(tmp_path)
        with open(tmp_path / 'config.json') as f:
            same(resolve_hf_config(json.load(f)), resolve_hf_config(cfg))


def test_non_gelu_activation_is_refused() -> None:
    with pytest.raises(ValueError, match='gelu'):
        hf_config_to_mm_config(vit_config(hidden_act='gelu_new'),
                               task='depth')


def test_unsupported_bit_layout_is_refused() -> None:
    cfg = hybrid_config()
    cfg.backbone_config.layer_type = 'preactivation'
    with pytest.raises(ValueError, match='bottleneck'):
        hf_config_to_mm_config(cfg, task='depth')


def test_unknown_key_is_refused_and_listed() -> None:
    hf = DPTForDepthEstimation(vit_config())
    state = dict(hf.state_dict())
    state['neck.extra.weight'] = torch.zeros(1)
    with pytest.raises(KeyError, match='neck.extra.weight'):
        convert_hf_state_dict(state, hf.config)


def test_load_converted_lists_keys_and_never_half_loads() -> None:
    hf = randomize(DPTForDepthEstimation(vit_config()))
    model = MODELS.build(hf_config_to_mm_config(hf.config, 'depth'))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    state = convert_hf_state_dict(hf.state_dict(), hf.config)
    state.pop('neck.lateral_convs.2.weight')
    state['decode_head.extra.bias'] = torch.zeros(1)
    state['backbone.cls_token'] = torch.zeros(1, 1, 7)
    with pytest.raises(CheckpointMismatchError) as err:
        load_converted(model, state)
    message = str(err.value)
    for key in ('neck.lateral_convs.2.weight', 'decode_head.extra.bias',
                'backbone.cls_token'):
        assert key in message
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


# --------------------------------------------------------------------------
# full-size (DPT_MM_SLOW=1)

FULL_SIZE = {
    'dpt_vit-l16_depth.py': (DPTForDepthEstimation, dict(
        hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
        intermediate_size=4096, backbone_out_indices=[5, 11, 17, 23],
        neck_hidden_sizes=[256, 512, 1024, 1024])),
    'dpt_hybrid_depth.py': (DPTForDepthEstimation, dict(
        is_hybrid=True, neck_hidden_sizes=[256, 512, 768, 768],
        reassemble_factors=[1, 1, 1, 0.5])),
    'dpt_vit-l16_seg.py': (DPTForSemanticSegmentation, dict(
        hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
        intermediate_size=4096, backbone_out_indices=[5, 11, 17, 23],
        neck_hidden_sizes=[256, 512, 1024, 1024],
        use_batch_norm_in_fusion_residual=True, num_labels=150)),
}


def _shapes(model: torch.nn.Module) -> Dict[str, tuple]:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


@pytest.mark.slow
@pytest.mark.parametrize('config_name', list(FULL_SIZE))
def test_full_size_base_configs_match_transformers(config_name: str) -> None:
    """Each full-size base config is the Transformers architecture.

    The Transformers model takes the base config's LayerNorm eps (1e-6,
    the original's), so the comparison is of architecture and conversion.
    """
    cls, kwargs = FULL_SIZE[config_name]
    hf = randomize(cls(DPTConfig(layer_norm_eps=1e-6, **kwargs)))
    cfg = Config.fromfile(
        osp.join(REPO, 'configs', '_base_', 'models', config_name))
    model = MODELS.build(cfg.model).eval()
    twin = MODELS.build(hf_config_to_mm_config(hf.config, task_of(hf)))
    assert _shapes(model) == _shapes(twin)
    load_converted(model, convert_hf_state_dict(hf.state_dict(), hf.config))
    x = torch.randn(1, 3, 384, 384)
    ref = hf_forward(hf, x)
    with torch.no_grad():
        out = model(x, mode='tensor')
    assert_close(out, ref, f'full-size {config_name}')

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
        8, 16, 24, 32], fusion_hidden_size=256, add_projection=True,
        readout_type='project', hidden_size=32)
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

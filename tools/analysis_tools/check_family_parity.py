"""Full-size DINOv2-family models: repository config vs Transformers.

    python tools/analysis_tools/check_family_parity.py [--family NAME ...]
        [--size H W ...] [--threads N]

For each family a random-initialised Transformers model of the published
architecture (Depth Anything V2-L relative, V2-S metric, V1-S, DPT-DINOv2-S
NYU) is converted with ``dpt_mm.converters`` and loaded strictly into the
model of its repository config, which checks that the config describes the
published architecture. Both run the same inputs (batch 1, float32, eval);
the script prints max |ours - Transformers| / max |Transformers| and the
forward times. Slow (minutes on a laptop CPU): not part of the test suite.

At the native 518×518 grid no position embedding is resized. At other sizes
the repository's Depth Anything configs resize as the release code does
(``pos_embed_interp_offset=0.1``) and Transformers does not; the script
sets the offset to 0 there, so that the comparison is of like with like.
"""
import argparse
import os.path as osp
import sys
import time
from typing import Callable, Dict, List, Optional, Tuple

import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)


def _dinov2(size: str, **kwargs):
    from transformers import Dinov2Config
    dims = dict(s=(384, 12, 6), b=(768, 12, 12), l=(1024, 24, 16))[size]
    return Dinov2Config(hidden_size=dims[0], num_hidden_layers=dims[1],
                        num_attention_heads=dims[2], image_size=518,
                        patch_size=14, reshape_hidden_states=False, **kwargs)


def _depth_anything(size: str, out_indices: List[int], **kwargs):
    from transformers import (DepthAnythingConfig,
                              DepthAnythingForDepthEstimation)
    neck = dict(s=([48, 96, 192, 384], 64), b=([96, 192, 384, 768], 128),
                l=([256, 512, 1024, 1024], 256))[size]
    backbone = _dinov2(size, out_indices=out_indices)
    return DepthAnythingForDepthEstimation(DepthAnythingConfig(
        backbone_config=backbone, reassemble_hidden_size=backbone.hidden_size,
        neck_hidden_sizes=neck[0], fusion_hidden_size=neck[1], **kwargs))


def _dpt_dinov2_small():
    from transformers import DPTConfig, DPTForDepthEstimation
    backbone = _dinov2('s', out_indices=[3, 6, 9, 12], apply_layernorm=False)
    return DPTForDepthEstimation(DPTConfig(
        backbone_config=backbone, neck_hidden_sizes=[48, 96, 192, 384],
        use_bias_in_fusion_residual=False, add_projection=True))


FAMILIES: Dict[str, Tuple[str, Callable]] = {
    'depth_anything_v2_vitl': (
        'configs/depth_anything/depth-anything-v2_vitl_relative.py',
        lambda: _depth_anything('l', [5, 12, 18, 24])),
    'depth_anything_v2_vits_metric_hypersim': (
        'configs/depth_anything/depth-anything-v2_vits_metric-hypersim.py',
        lambda: _depth_anything('s', [3, 6, 9, 12],
                                depth_estimation_type='metric',
                                max_depth=20)),
    'depth_anything_v1_vits': (
        'configs/depth_anything/depth-anything-v1_vits_relative.py',
        lambda: _depth_anything('s', [9, 10, 11, 12])),
    'dpt_dinov2_vits_nyu': ('configs/dpt_dinov2/dpt-dinov2_vits_nyu.py',
                            _dpt_dinov2_small),
}


def _randomize(model: torch.nn.Module) -> None:
    """Perturb every parameter so no weight keeps a trivial init value, and
    lift the last conv's bias so the final ReLU passes most pixels."""
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for _, param in model.named_parameters():
            param.add_(torch.randn(param.shape, generator=gen) * 0.02)
        last = getattr(model.head, 'conv3', None) or model.head.head[4]
        last.bias.add_(1.0)


def check(name: str, sizes: List[Tuple[int, int]]) -> List[str]:
    """Build, convert, compare one family; returns the report lines."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    import dpt_mm  # noqa: F401
    from dpt_mm.converters import convert_hf_state_dict, load_converted
    init_default_scope('mmseg')
    config, build_hf = FAMILIES[name]
    torch.manual_seed(0)
    hf = build_hf().eval()
    _randomize(hf)
    model_cfg = Config.fromfile(osp.join(ROOT, config)).model.to_dict()
    model_cfg['backbone'].pop('init_cfg', None)
    ours = MODELS.build(model_cfg).eval()
    load_converted(ours, convert_hf_state_dict(hf.state_dict(), hf.config),
                   f'{name} (random Transformers weights) into {config}')
    lines = []
    for height, width in sizes:
        native = (height, width) == (518, 518)
        if not native:
            ours.backbone.pos_embed_interp_offset = 0.0
        x = torch.randn(1, 3, height, width,
                        generator=torch.Generator().manual_seed(1))
        with torch.no_grad():
            start = time.perf_counter()
            ref = hf(pixel_values=x).predicted_depth.unsqueeze(1)
            t_hf = time.perf_counter() - start
            start = time.perf_counter()
            out = ours(x, mode='tensor')
            t_ours = time.perf_counter() - start
        diff = ((out - ref).abs().max() / ref.abs().max()).item()
        lines.append(f'{name} {height}×{width}: max|diff|/max|ref| = '
                     f'{diff:.2e}  (ours {t_ours:.2f} s, Transformers '
                     f'{t_hf:.2f} s, ratio {t_ours / t_hf:.2f})')
        print(lines[-1], flush=True)
    return lines


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--family', nargs='+', choices=sorted(FAMILIES),
                        default=sorted(FAMILIES))
    parser.add_argument('--size', nargs=2, type=int, action='append',
                        metavar=('H', 'W'),
                        help='input sizes (default 518×518 and 518×686)')
    parser.add_argument('--threads', type=int, default=None)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    sizes = [tuple(s) for s in args.size] if args.size else [(518, 518),
                                                            (518, 686)]
    worst = 0.0
    for name in args.family:
        for line in check(name, sizes):
            diff = float(line.split('= ')[1].split()[0])
            worst = max(worst, diff) if diff == diff else float('inf')
    print(f'worst relative difference: {worst:.2e} (contract: <= 1e-4)')
    return 0 if worst <= 1e-4 else 1


if __name__ == '__main__':
    sys.exit(main())

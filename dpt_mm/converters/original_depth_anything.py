"""Original Depth Anything release files → dpt_mm weights.

The layout of ``DepthAnything/Depth-Anything-V2`` (``depth_anything_v2/
dpt.py``, ``dinov2.py``) and of V1 (``LiheYoung/Depth-Anything``), which is
the same: ``pretrained.*`` is the DINOv2 encoder (timm-like: fused
``attn.qkv``, ``ls1.gamma``, SwiGLU ``mlp.w12``/``mlp.w3`` for ViT-g),
``depth_head.projects.i`` / ``resize_layers.i`` / ``readout_projects.i``
the reassemble stage, ``depth_head.scratch.layerK_rn`` the lateral convs,
``depth_head.scratch.refinenetK`` the fusion blocks (K = 4 deepest) and
``depth_head.scratch.output_conv1`` / ``output_conv2.{0,2}`` the head.
These names appear only here.
"""
import os.path as osp
from typing import Any, Dict, List, Mapping, Optional

from .common import (BN, Conversion, Drop, Rule, WB, apply_rules,
                     unwrap_state_dict)

__all__ = [
    'DEPTH_ANYTHING_VARIANTS', 'depth_anything_numerics',
    'guess_depth_anything_variant', 'is_depth_anything_config',
    'map_depth_anything_state_dict'
]

_ENCODERS = ('vits', 'vitb', 'vitl')
# Release variant → dpt_mm config (relative to the repository root).
DEPTH_ANYTHING_VARIANTS: Dict[str, str] = {
    **{f'depth_anything_v2_{e}':
       f'configs/depth_anything/depth-anything-v2_{e}_relative.py'
       for e in _ENCODERS},
    **{f'depth_anything_v2_metric_{d}_{e}':
       f'configs/depth_anything/depth-anything-v2_{e}_metric-{d}.py'
       for d in ('hypersim', 'vkitti') for e in _ENCODERS},
    **{f'depth_anything_v1_{e}':
       f'configs/depth_anything/depth-anything-v1_{e}_relative.py'
       for e in _ENCODERS},
}
# The original DINOv2 resizes position embeddings by a scale factor
# (grid + 0.1) / table size (dinov2.py ``interpolate_offset=0.1``).
ORIGINAL_INTERP_OFFSET = 0.1


def guess_depth_anything_variant(filename: str) -> Optional[str]:
    """Depth Anything variant from a release file name, or None.

    Understands ``depth_anything_v2_vitl.pth``,
    ``depth_anything_v2_metric_hypersim_vits.pth`` and V1's
    ``depth_anything_vitl14.pth``.

    Args:
        filename (str): Path or name of the checkpoint.

    Returns:
        str | None: A key of :data:`DEPTH_ANYTHING_VARIANTS`, or None when
        the name is not a Depth Anything one.

    Raises:
        ValueError: A Depth Anything name whose variant is not released.
    """
    name = osp.basename(filename).lower().replace('-', '_')
    if 'depth_anything' not in name:
        return None
    encoder = next((e for e in _ENCODERS if e in name), None)
    if 'v2' in name:
        data = next((d for d in ('hypersim', 'vkitti') if d in name), None)
        variant = f'depth_anything_v2_metric_{data}_{encoder}' \
            if 'metric' in name else f'depth_anything_v2_{encoder}'
    else:
        variant = f'depth_anything_v1_{encoder}'
    if variant not in DEPTH_ANYTHING_VARIANTS:
        raise ValueError(
            f'cannot tell the Depth Anything variant from {filename!r}; '
            f'pass --variant, one of: {", ".join(DEPTH_ANYTHING_VARIANTS)}')
    return variant


def is_depth_anything_config(model_cfg: Mapping[str, Any]) -> bool:
    """Whether a model config has the DINOv2 backbone of these releases."""
    return model_cfg['backbone'].get('type') == 'DPTDINOv2'


def depth_anything_numerics(model_cfg: Mapping[str, Any]) -> List[str]:
    """Settings that differ from the release code's numerics.

    Args:
        model_cfg (Mapping): Model config.

    Returns:
        list[str]: One line per deviation; empty when faithful.
    """
    backbone = model_cfg['backbone']
    issues = []
    offset = backbone.get('pos_embed_interp_offset', 0.0)
    if offset != ORIGINAL_INTERP_OFFSET:
        issues.append(f'backbone.pos_embed_interp_offset={offset} (original: '
                      f'{ORIGINAL_INTERP_OFFSET}; inputs other than 518×518 '
                      'resize the position embeddings differently)')
    eps = backbone.get('norm_eps', 1e-6)
    if eps != 1e-6:
        issues.append(f'backbone.norm_eps={eps} (original: 1e-6)')
    return issues




def _rules(num_levels: int) -> List[Rule]:
    blk = r'pretrained\.blocks\.(\d+)\.'

    def fusion_unit(m) -> Any:
        k, unit, kind, idx, param = m.groups()
        if int(k) == num_levels and unit == '1':
            return Drop('resConfUnit1 of the deepest refinenet: never used '
                        'by the forward (no lateral input)')
        name = 'conv' if kind == 'conv' else 'norm'
        return (f'neck.fusion_blocks.{int(k) - 1}.residual_unit{unit}.'
                f'{name}{idx}.{param}')

    def level(template: str):
        return lambda m: template.format(int(m[1]) - 1, *m.groups()[1:])

    return [
        Rule(r'pretrained\.(cls_token|pos_embed|register_tokens)',
             r'backbone.\1'),
        Rule(r'pretrained\.mask_token',
             Drop('mask token: masked-image pretraining only')),
        Rule(r'pretrained\.patch_embed\.proj\.' + WB,
             r'backbone.patch_embed.proj.\1'),
        Rule(blk + r'(norm[12]|attn\.qkv|attn\.proj|mlp\.fc[12])\.' + WB,
             r'backbone.layers.\1.\2.\3'),
        Rule(blk + r'(ls[12])\.gamma', r'backbone.layers.\1.\2.gamma'),
        # ViT-g's SwiGLUFFNFused: w12 = [gate; up], w3 the output.
        Rule(blk + r'mlp\.w12\.' + WB, r'backbone.layers.\1.mlp.fc1.\2'),
        Rule(blk + r'mlp\.w3\.' + WB, r'backbone.layers.\1.mlp.fc2.\2'),
        Rule(r'pretrained\.norm\.' + WB, r'backbone.norm.\1'),
        Rule(r'pretrained\.head\..*',
             Drop('DINOv2 classification head: unused by depth models')),
        Rule(r'depth_head\.projects\.(\d)\.' + WB,
             r'neck.reassemble_blocks.\1.projection.\2'),
        Rule(r'depth_head\.resize_layers\.(\d)\.' + WB,
             r'neck.reassemble_blocks.\1.resample.\2'),
        Rule(r'depth_head\.readout_projects\.(\d)\.0\.' + WB,
             r'neck.reassemble_blocks.\1.readout.project.0.\2'),
        Rule(r'depth_head\.scratch\.layer(\d)_rn\.weight',
             level('neck.lateral_convs.{}.weight')),
        Rule(r'depth_head\.scratch\.refinenet(\d)\.resConfUnit([12])\.'
             r'(conv|bn)([12])\.' + BN, fusion_unit),
        Rule(r'depth_head\.scratch\.refinenet(\d)\.out_conv\.' + WB,
             level('neck.fusion_blocks.{}.out_conv.{}')),
        # output_conv2 = Sequential(conv, ReLU, conv, ReLU|Sigmoid, Identity)
        Rule(r'depth_head\.scratch\.output_conv1\.' + WB,
             r'decode_head.conv1.\1'),
        Rule(r'depth_head\.scratch\.output_conv2\.0\.' + WB,
             r'decode_head.conv2.\1'),
        Rule(r'depth_head\.scratch\.output_conv2\.2\.' + WB,
             r'decode_head.conv_seg.\1'),
    ]


def map_depth_anything_state_dict(checkpoint: Mapping[str, Any],
                                  model_cfg: Mapping[str, Any]
                                  ) -> Conversion:
    """Rename a Depth Anything V1/V2 release state dict, with a report.

    Args:
        checkpoint (Mapping): The release file's content (a flat state
            dict; one under ``model`` or ``state_dict`` is unwrapped).
        model_cfg (Mapping): The target model config (its number of neck
            levels names the deepest fusion block).

    Returns:
        Conversion: dpt_mm state dict and the dropped keys with reasons.
    """
    state_dict = unwrap_state_dict(checkpoint, ('model', 'state_dict'))
    # Training checkpoints of the metric code keep DataParallel's prefix.
    if state_dict and all(k.startswith('module.') for k in state_dict):
        state_dict = {k[len('module.'):]: v for k, v in state_dict.items()}
    num_levels = len(model_cfg['neck']['reassemble_channels'])
    return apply_rules(state_dict, _rules(num_levels),
                       'Depth Anything release checkpoint')


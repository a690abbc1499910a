"""Original isl-org/DPT release files → dpt_mm weights.

The release layout (``dpt/models.py``, ``dpt/vit.py`` at isl-org/DPT):
``pretrained.model.*`` is the timm ViT (fused ``qkv``, hybrid ResNet under
``patch_embed.backbone``), ``pretrained.act_postprocessK`` (K = 1..4) is the
reassemble Sequential (``.0.project.0`` readout Linear, ``.3`` 1×1 conv,
``.4`` resample), ``scratch.layerK_rn`` the 3×3 lateral convs,
``scratch.refinenetK`` the fusion blocks (K = 4 deepest), and
``scratch.output_conv`` / ``auxlayer`` the heads. These names appear only in
this file.
"""
import os.path as osp
from typing import Any, Dict, List, Mapping, Union

from torch import Tensor

from . import original_depth_anything as depth_anything
from .common import (BN, Conversion, Drop, Rule, WB, apply_rules,
                     make_num_batches_tracked, unwrap_state_dict)
from .original_midas31 import MIDAS31_VARIANTS, midas31_backbone_rules
from .timm import timm_vit_rules

__all__ = [
    'ORIGINAL_VARIANTS', 'check_original_numerics',
    'convert_original_state_dict', 'guess_variant',
    'map_original_state_dict', 'resolve_model_config', 'variant_config_path'
]

# Release variant → dpt_mm config (relative to the repository root).
ORIGINAL_VARIANTS: Dict[str, str] = {
    'dpt_large_midas': 'configs/dpt_vitl_midas.py',
    'dpt_hybrid_midas': 'configs/dpt_hybrid_midas.py',
    'dpt_hybrid_nyu': 'configs/dpt_hybrid_nyu.py',
    'dpt_hybrid_kitti': 'configs/dpt_hybrid_kitti.py',
    'dpt_large_ade20k': 'configs/dpt_vitl_ade20k.py',
    'dpt_hybrid_ade20k': 'configs/dpt_hybrid_ade20k.py',
    **depth_anything.DEPTH_ANYTHING_VARIANTS,
    **MIDAS31_VARIANTS,
}

_REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def guess_variant(filename: str) -> str:
    """Release variant from a file name.

    Understands the release names (``dpt_large-midas-2f21e586.pt``,
    ``dpt_hybrid_nyu-2ce69ec7.pt``, ``dpt_hybrid-ade20k-53898607.pt``) and
    MiDaS v3's (``dpt_large_384.pt``, ``dpt_hybrid_384.pt``).

    Args:
        filename (str): Path or name of the checkpoint.

    Returns:
        str: A key of :data:`ORIGINAL_VARIANTS`.

    Raises:
        ValueError: No variant can be told from the name; lists them.
    """
    variant = depth_anything.guess_depth_anything_variant(filename)
    if variant is not None:
        return variant
    name = osp.basename(filename).lower().replace('-', '_')
    # MiDaS v3.1 names (dpt_beit_large_512.pt...) name the variant whole.
    for variant in MIDAS31_VARIANTS:
        if variant in name:
            return variant
    encoder = 'hybrid' if 'hybrid' in name else \
        'large' if 'large' in name else None
    if 'ade20k' in name or 'ade' in name.split('_'):
        data = 'ade20k'
    elif 'nyu' in name:
        data = 'nyu'
    elif 'kitti' in name:
        data = 'kitti'
    elif 'midas' in name or '_384' in name:
        data = 'midas'
    else:
        data = None
    variant = f'dpt_{encoder}_{data}'
    if encoder is None or data is None or variant not in ORIGINAL_VARIANTS:
        raise ValueError(
            f'cannot tell the DPT release variant from {filename!r}; pass '
            f'--variant, one of: {", ".join(ORIGINAL_VARIANTS)}')
    return variant


def variant_config_path(variant: str) -> str:
    """Path of the dpt_mm config of a release variant.

    Args:
        variant (str): A key of :data:`ORIGINAL_VARIANTS`.

    Returns:
        str: Absolute path (which exists).
    """
    if variant not in ORIGINAL_VARIANTS:
        raise ValueError(f'unknown DPT release variant {variant!r}; one of: '
                         f'{", ".join(ORIGINAL_VARIANTS)}')
    path = osp.join(_REPO_ROOT, ORIGINAL_VARIANTS[variant])
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'config {path} for variant {variant!r} not found (the configs '
            'ship with the dpt_mm repository, not with an installed wheel); '
            'pass a config explicitly')
    return path


def resolve_model_config(variant_or_config: Any) -> Dict[str, Any]:
    """The ``model`` config dict from a variant, a config path or a dict.

    Args:
        variant_or_config: A variant name, a ``.py`` config path, an
            ``mmengine.Config`` or dict holding ``model``, or a model config
            dict itself (with ``type``).

    Returns:
        dict: The model config.
    """
    cfg = variant_or_config
    if isinstance(cfg, str):
        from mmengine.config import Config
        path = variant_config_path(cfg) if cfg in ORIGINAL_VARIANTS else cfg
        cfg = Config.fromfile(path)
    if hasattr(cfg, 'to_dict'):
        cfg = cfg.to_dict()
    if not isinstance(cfg, Mapping):
        raise TypeError('expected a variant name, a config path or a config '
                        f'dict, got {type(cfg).__name__}')
    if 'model' in cfg and isinstance(cfg['model'], Mapping):
        cfg = cfg['model']
    if 'backbone' not in cfg or 'decode_head' not in cfg:
        raise ValueError('the model config needs backbone and decode_head')
    return dict(cfg)


# timm 0.4.5, which trained the release weights: ViT LayerNorm eps, and the
# hybrid stem's weight standardisation (w - mean) / (std + eps).
ORIGINAL_LN_EPS = 1e-6
ORIGINAL_WS = ('std', 1e-5)


def check_original_numerics(model_cfg: Mapping[str, Any]) -> List[str]:
    """Settings of a model config that differ from the release numerics.

    Args:
        model_cfg (Mapping): Model config.

    Returns:
        list[str]: One line per deviation; empty when faithful.
    """
    if depth_anything.is_depth_anything_config(model_cfg):
        return depth_anything.depth_anything_numerics(model_cfg)
    backbone = model_cfg['backbone']
    issues = []
    # timm's Swin V2 blocks use nn.LayerNorm's default eps.
    original_eps = 1e-5 if backbone.get('type') == 'DPTSwinV2' else \
        ORIGINAL_LN_EPS
    eps = backbone.get('norm_eps', original_eps)
    if eps != original_eps:
        issues.append(f'backbone.norm_eps={eps} (original: {original_eps})')
    if backbone.get('type') == 'DPTViTHybrid':
        ws = (backbone.get('ws_mode', 'var'), backbone.get('ws_eps', 1e-8))
        if ws != ORIGINAL_WS:
            issues.append(f'backbone (ws_mode, ws_eps)={ws} (original: '
                          "('std', 1e-05))")
    return issues




def _original_rules(model_cfg: Mapping[str, Any]) -> List[Rule]:
    head_type = model_cfg['decode_head']['type']
    if head_type not in ('DPTDepthHead', 'DPTSegHead'):
        raise ValueError(f'decode_head {head_type!r}: the original release '
                         'has DPTDepthHead or DPTSegHead heads only')
    num_levels = len(model_cfg['neck']['reassemble_channels'])

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

    rules = [
        # The timm ViT (same rules as ImageNet checkpoints), under our
        # backbone.
        *(midas31_backbone_rules(model_cfg)
          if model_cfg['backbone']['type'] in ('DPTBEiT', 'DPTSwinV2') else
          timm_vit_rules('pretrained.model.', 'backbone.')),
        Rule(r'pretrained\.act_postprocess(\d)\.0\.project\.0\.' + WB,
             level('neck.reassemble_blocks.{}.readout.project.0.{}')),
        Rule(r'pretrained\.act_postprocess(\d)\.3\.' + WB,
             level('neck.reassemble_blocks.{}.projection.{}')),
        Rule(r'pretrained\.act_postprocess(\d)\.4\.' + WB,
             level('neck.reassemble_blocks.{}.resample.{}')),
        Rule(r'scratch\.layer(\d)_rn\.weight',
             level('neck.lateral_convs.{}.weight')),
        Rule(r'scratch\.refinenet(\d)\.resConfUnit([12])\.(conv|bn)([12])\.' +
             BN, fusion_unit),
        Rule(r'scratch\.refinenet(\d)\.out_conv\.' + WB,
             level('neck.fusion_blocks.{}.out_conv.{}')),
    ]
    if head_type == 'DPTDepthHead':
        # Sequential(conv, Interpolate, conv, ReLU, conv, ReLU, Identity).
        rules += [
            Rule(r'scratch\.output_conv\.0\.' + WB, r'decode_head.conv1.\1'),
            Rule(r'scratch\.output_conv\.2\.' + WB, r'decode_head.conv2.\1'),
            Rule(r'scratch\.output_conv\.4\.' + WB,
                 r'decode_head.conv_seg.\1'),
        ]
    else:
        # Sequential(conv, BN, ReLU, Dropout, conv, Interpolate).
        rules += [
            Rule(r'scratch\.output_conv\.0\.weight',
                 'decode_head.conv.conv.weight'),
            Rule(r'scratch\.output_conv\.1\.' + BN,
                 r'decode_head.conv.bn.\1'),
            Rule(r'scratch\.output_conv\.4\.' + WB,
                 r'decode_head.conv_seg.\1'),
        ]
    if model_cfg.get('auxiliary_head'):
        rules += [
            Rule(r'auxlayer\.0\.weight', 'auxiliary_head.convs.0.conv.weight'),
            Rule(r'auxlayer\.1\.' + BN, r'auxiliary_head.convs.0.bn.\1'),
            Rule(r'auxlayer\.4\.' + WB, r'auxiliary_head.conv_seg.\1'),
        ]
    else:
        rules.append(
            Rule(r'auxlayer\..*',
                 Drop('auxiliary head: not in the target config')))
    return rules


def map_original_state_dict(checkpoint: Mapping[str, Any],
                            variant_or_config: Any) -> Conversion:
    """Rename an original DPT release state dict, with a report.

    Args:
        checkpoint (Mapping): A release file's content: a flat state dict,
            or a dict holding it under ``model`` (with ``optimizer``).
        variant_or_config: See :func:`resolve_model_config`; decides the
            head layout and whether ``auxlayer`` is kept.

    Returns:
        Conversion: dpt_mm state dict, dropped keys and filled buffers.
    """
    model_cfg = resolve_model_config(variant_or_config)
    if depth_anything.is_depth_anything_config(model_cfg):
        return depth_anything.map_depth_anything_state_dict(checkpoint,
                                                            model_cfg)
    state_dict = unwrap_state_dict(checkpoint, wrappers=('model', ))
    result = apply_rules(state_dict, _original_rules(model_cfg),
                         'original DPT checkpoint')
    # Checkpoints from before PyTorch 0.4.1 have no BN batch counter; it
    # does not affect inference, so supply it instead of failing.
    for key in list(result.state_dict):
        if key.endswith('.running_mean'):
            counter = key[:-len('running_mean')] + 'num_batches_tracked'
            if counter not in result.state_dict:
                result.state_dict[counter] = make_num_batches_tracked()
                result.filled[counter] = 'BatchNorm batch counter absent ' \
                    'from the release file (unused at inference)'
    return result


def convert_original_state_dict(checkpoint: Mapping[str, Any],
                                variant_or_config: Union[str, Mapping,
                                                         Any]
                                ) -> Dict[str, Tensor]:
    """Original isl-org/DPT weights → dpt_mm weights (pure function).

    ``pretrained.model.head.*`` / ``pretrained.model.norm.*`` (unused timm
    parts) and the deepest ``resConfUnit1`` are dropped; any other key the
    layout does not know raises.

    Args:
        checkpoint (Mapping): Release file content (flat, or under
            ``model``).
        variant_or_config: A variant of :data:`ORIGINAL_VARIANTS`, a config
            path, or a (model) config dict such as a tiny test model's.

    Returns:
        dict[str, Tensor]: Weights for the model of that config.
    """
    return map_original_state_dict(checkpoint, variant_or_config).state_dict

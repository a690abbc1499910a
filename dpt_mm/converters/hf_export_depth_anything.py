"""dpt_mm Depth Anything → Transformers ``DepthAnythingForDepthEstimation``.

The reverse of the Depth Anything half of :mod:`.hf_dinov2`: a
``DPTDINOv2`` + ``DPTNeck(upsample_to_lateral=True)`` + ``DPTDepthHead``
model (what hf2mm writes for V1, V2 and V2 metric folders, and what
``configs/depth_anything/`` build) becomes a ``config.json`` dict with
``model_type='depth_anything'`` and its weights. The encoder part comes
from :mod:`.hf_export_dinov2`, the neck keys are DPT's (:mod:`.hf_dpt`).

A model is recognised as Depth Anything by its fusion blocks upsampling to
the next level's size (``neck.upsample_to_lateral=True``), which DPT's never
do. Settings the Transformers class cannot express (a readout, fusion norms,
another output mode, a head output other than patch × the grid...) raise
``ValueError`` naming the config key. One dpt_mm setting is let through:
``decode_head.min_depth`` of a metric model, a floor dpt_mm applies to its
test-time predictions (the repository's metric configs set 1e-3 m for the
loss); Transformers applies none, so only depths below it differ.
"""
import copy
from typing import Any, Dict, List, Mapping, Optional, Tuple

from torch import Tensor

from .common import Conversion, Rule, WB, apply_rules
from .hf_dinov2 import dinov2_family_to_mm_config
from .hf_dpt import _neck_rules_to_hf, deepest_unit_fills
from .hf_export_dinov2 import (dinov2_backbone_config_to_hf,
                               dinov2_backbone_rules_to_hf,
                               dinov2_backbone_unused_to_hf, split_fused_qkv)
from .hf_export_family import cfg_get as _get
from .hf_export_family import plain, refuse
from .hf_export_family import type_name as _type_name

__all__ = [
    'depth_anything_config_to_hf', 'depth_anything_state_dict_to_hf',
    'is_depth_anything_model'
]



def _refuse(key: str, value: Any, why: str) -> ValueError:
    return refuse(key, value, why, 'Depth Anything')


def is_depth_anything_model(model_cfg: Mapping[str, Any]) -> bool:
    """Whether a dpt_mm model config is a Depth Anything one.

    Args:
        model_cfg (Mapping): The ``model`` config.

    Returns:
        bool: A ``DPTDINOv2`` backbone under a neck whose fusion blocks
        upsample to the next level's size.
    """
    backbone = model_cfg.get('backbone') or {}
    neck = model_cfg.get('neck') or {}
    return _type_name(backbone) == 'DPTDINOv2' and bool(
        neck.get('upsample_to_lateral', False))


def _neck_config(neck: Mapping[str, Any], embed: int) -> Dict[str, Any]:
    if _type_name(neck) != 'DPTNeck':
        raise _refuse('neck.type', _type_name(neck), 'only DPTNeck exists')
    fixed = [('readout_type', 'project', 'ignore',
              'its reassemble layers drop the class token'),
             ('passthrough_indices', (), (), 'every level is reassembled'),
             ('fusion_norm_cfg', None, None,
              'its fusion residual units have no norm'),
             ('align_corners', True, True,
              'its fusion upsampling uses align_corners=True')]
    for key, default, want, why in fixed:
        value = neck.get(key, default)
        if isinstance(value, list):
            value = tuple(value)
        if value != want:
            raise _refuse(f'neck.{key}', value, why)
    if neck.get('fusion_bias') not in (None, True):
        raise _refuse('neck.fusion_bias', neck['fusion_bias'],
                      'its fusion convolutions have biases')
    in_channels = neck.get('in_channels', embed)
    if isinstance(in_channels, int):
        in_channels = [in_channels]
    if set(in_channels) != {embed}:
        raise _refuse('neck.in_channels', neck.get('in_channels'),
                      f'every level reads the {embed}-wide tokens')
    return dict(
        reassemble_hidden_size=embed,
        neck_hidden_sizes=list(_get(neck, 'reassemble_channels',
                                    (96, 192, 384, 768))),
        reassemble_factors=list(_get(neck, 'resample_factors',
                                     (4, 2, 1, 0.5))),
        fusion_hidden_size=_get(neck, 'channels', 256))


def _head_config(head: Mapping[str, Any], hf: Mapping[str, Any],
                 patch: int) -> Dict[str, Any]:
    if _type_name(head) != 'DPTDepthHead':
        raise _refuse('decode_head.type', _type_name(head),
                      'DepthAnythingForDepthEstimation has its depth head '
                      'only')
    fusion = hf['fusion_hidden_size']
    num_levels = len(hf['neck_hidden_sizes'])
    for key, default, want in (('in_channels', fusion, fusion),
                               ('mid_channels', fusion // 2, fusion // 2),
                               ('add_projection', False, False),
                               ('align_corners', False, False)):
        value = _get(head, key, default)
        if value != want:
            raise _refuse(f'decode_head.{key}', value,
                          f'its head has {key}={want!r} only')
    # Ours upsamples the finest fused map (2·f0 × the grid) by a factor;
    # Transformers to patch × the grid.
    factor = float(_get(head, 'upsample_factor', 2.0))
    finest = 2 * float(hf['reassemble_factors'][0])
    if factor * finest != patch:
        raise _refuse('decode_head.upsample_factor', factor,
                      f'its head output is patch_size ({patch}) × the patch '
                      f'grid, i.e. upsample_factor={patch / finest!r} after '
                      f'the {finest:g} × grid finest fused map')
    in_index = _get(head, 'in_index', 0)
    if not 0 <= in_index < num_levels:
        raise _refuse('decode_head.in_index', in_index,
                      f'{num_levels} fused maps')
    mode = _get(head, 'output_mode', 'inverse_depth')
    max_depth = head.get('max_depth')
    if mode == 'inverse_depth':
        for key in ('min_depth', 'max_depth'):
            if head.get(key) is not None:
                raise _refuse(f'decode_head.{key}', head[key],
                              'a relative model has no clamp')
        kind, max_depth = 'relative', 1
    elif mode == 'bounded_depth':
        if float(max_depth) != int(max_depth):
            raise _refuse('decode_head.max_depth', max_depth,
                          'DepthAnythingConfig.max_depth is an integer')
        kind, max_depth = 'metric', int(max_depth)
    else:
        raise _refuse('decode_head.output_mode', mode,
                      "its head ends in ReLU ('inverse_depth', relative) or "
                      "max_depth · sigmoid ('bounded_depth', metric)")
    return dict(
        head_hidden_size=_get(head, 'channels', 32),
        # Ours lists fused maps finest first, Transformers deepest first.
        head_in_index=-1 - in_index,
        depth_estimation_type=kind,
        max_depth=max_depth)


def _same_model(source: Mapping[str, Any], built: Mapping[str, Any]) -> bool:
    """Whether two Depth Anything configs build the same dpt_mm network."""
    if source.get('model_type') != 'depth_anything':
        return False
    try:
        ours = dinov2_family_to_mm_config(source)
    except (ValueError, KeyError, TypeError):
        return False
    return plain(ours) == plain(dinov2_family_to_mm_config(built))


def depth_anything_config_to_hf(model_cfg: Mapping[str, Any],
                                source_config: Optional[Mapping[str, Any]]
                                = None) -> Dict[str, Any]:
    """A ``DepthAnythingConfig`` ``config.json`` dict for a dpt_mm model.

    Args:
        model_cfg (Mapping): The ``model`` config (``DepthEstimator`` or
            ``DPTDepthEstimator`` with ``DPTDINOv2``, ``DPTNeck`` and
            ``DPTDepthHead``).
        source_config (Mapping, optional): The ``config.json`` the model was
            converted from (hf2mm keeps it in the checkpoint's meta); kept
            as it is when it builds the same network.

    Returns:
        dict: ``config.json`` for ``DepthAnythingForDepthEstimation``.

    Raises:
        ValueError: A setting Transformers cannot express; the message
            names the config key.
    """
    model_cfg = copy.deepcopy(dict(model_cfg))
    kind = _type_name(model_cfg)
    if kind not in ('DepthEstimator', 'DPTDepthEstimator'):
        raise _refuse('type', kind, 'it is a depth estimator '
                      '(DPTDepthEstimator)')
    resize_mode = (model_cfg.get('test_cfg') or {}).get('resize_mode',
                                                        'bicubic')
    if resize_mode != 'bicubic':
        raise _refuse('test_cfg.resize_mode', resize_mode,
                      'post_process_depth_estimation resizes bicubically')
    if model_cfg.get('auxiliary_head'):
        raise _refuse('auxiliary_head', _type_name(
            model_cfg['auxiliary_head']), 'it has no auxiliary head')
    backbone_cfg = model_cfg['backbone']
    backbone = dinov2_backbone_config_to_hf(backbone_cfg)
    if backbone.get('num_register_tokens'):
        raise _refuse('backbone.num_register_tokens',
                      backbone['num_register_tokens'],
                      'its reassemble layers drop the class token only')
    cfg: Dict[str, Any] = dict(architectures=[
        'DepthAnythingForDepthEstimation'], model_type='depth_anything',
        backbone_config=backbone, patch_size=backbone['patch_size'])
    cfg.update(_neck_config(model_cfg.get('neck') or {},
                            backbone['hidden_size']))
    if len(cfg['neck_hidden_sizes']) != len(backbone['out_indices']):
        raise _refuse('neck.reassemble_channels', cfg['neck_hidden_sizes'],
                      'one level per hooked block '
                      f"({backbone['out_indices']})")
    cfg.update(_head_config(model_cfg.get('decode_head') or {}, cfg,
                            backbone['patch_size']))
    if source_config is not None and _same_model(source_config, cfg):
        # Same network: keep the source file as it was (fields Transformers
        # adds, equivalent spellings).
        return copy.deepcopy(dict(source_config))
    return cfg


def _neck_head_rules(num_levels: int) -> List[Rule]:
    # The neck keys are DPT's; the head is Depth Anything's own.
    return _neck_rules_to_hf(num_levels) + [
        Rule(r'decode_head\.conv1\.' + WB, r'head.conv1.\1'),
        Rule(r'decode_head\.conv2\.' + WB, r'head.conv2.\1'),
        Rule(r'decode_head\.conv_seg\.' + WB, r'head.conv3.\1'),
    ]


def _unused(state_dict: Mapping[str, Tensor],
            backbone_cfg: Mapping[str, Any]) -> Dict[str, Tuple[Tensor, str]]:
    """Transformers tensors dpt_mm does not keep, with fillers."""
    out = dinov2_backbone_unused_to_hf(backbone_cfg)
    why = 'zeros (deepest fusion layer: never used without a lateral input)'
    out.update({key: (value, why)
                for key, value in deepest_unit_fills(state_dict).items()})
    return out


def depth_anything_state_dict_to_hf(state_dict: Mapping[str, Tensor],
                                    model_cfg: Mapping[str, Any],
                                    unused: Optional[Mapping[str, Tensor]]
                                    = None) -> Conversion:
    """Rename Depth Anything weights into Transformers keys (pure function).

    Args:
        state_dict (Mapping[str, Tensor]): dpt_mm weights of ``model_cfg``.
        model_cfg (Mapping): The model config.
        unused (Mapping[str, Tensor], optional): Transformers tensors that
            dpt_mm does not keep (mask token, an unused final LayerNorm,
            the deepest fusion layer's first residual unit), as hf2mm saved
            them; without them they are filled.

    Returns:
        Conversion: Transformers state dict in the ``save_pretrained``
        spelling; ``filled`` lists tensors made without a source.
    """
    backbone = model_cfg['backbone']
    num_levels = len(_get(model_cfg['neck'], 'reassemble_channels',
                          (96, 192, 384, 768)))
    rules = dinov2_backbone_rules_to_hf(backbone) + _neck_head_rules(
        num_levels)
    result = apply_rules(split_fused_qkv(state_dict), rules,
                         'dpt_mm Depth Anything checkpoint')
    result.num_source = len(state_dict)
    result.restore_or_fill(_unused(result.state_dict, backbone), unused)
    return result

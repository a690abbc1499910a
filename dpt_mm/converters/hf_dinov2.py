"""Transformers DINOv2-based depth models → dpt_mm: config and weights.

Two Transformers classes put a DPT decoder on ``Dinov2Backbone``:

* ``DepthAnythingForDepthEstimation`` (Depth Anything V1, V2, V2 metric):
  no readout, fusion blocks that upsample to the next level's size, and a
  head upsampling to 14 × the patch grid that ends in ReLU (relative) or
  sigmoid × ``max_depth`` (metric);
* ``DPTForDepthEstimation`` with a ``dinov2`` ``backbone_config``
  (``facebook/dpt-dinov2-*``): DPT's readout, fusion and head, plus
  ``add_projection``.

Both become ``DPTDINOv2`` + ``DPTNeck`` + ``DPTDepthHead`` with options.
Hub checkpoints use the older attention names (``attention.attention.
query``, ``attention.output.dense``, SwiGLU ``weights_in``/``weights_out``)
that Transformers 5 renames on load; both spellings are accepted.
"""
import copy
import re
from typing import Any, Dict, List, Mapping, Optional, Sequence

import torch
from torch import Tensor

from .common import Conversion, Drop, Rule, WB, apply_rules

__all__ = [
    'is_dinov2_family', 'resolve_dinov2_family_config',
    'dinov2_family_to_mm_config', 'map_dinov2_family_state_dict',
    'dinov2_backbone_rules', 'fuse_split_projections'
]

# Dinov2Config 5.24 defaults (registers: Dinov2WithRegistersConfig).
_DINOV2_DEFAULTS: Dict[str, Any] = dict(
    hidden_size=768,
    num_hidden_layers=12,
    num_attention_heads=12,
    mlp_ratio=4,
    hidden_act='gelu',
    hidden_dropout_prob=0.0,
    attention_probs_dropout_prob=0.0,
    layer_norm_eps=1e-6,
    image_size=224,
    patch_size=14,
    num_channels=3,
    qkv_bias=True,
    layerscale_value=1.0,
    drop_path_rate=0.0,
    use_swiglu_ffn=False,
    num_register_tokens=0,
    apply_layernorm=True,
    reshape_hidden_states=True,
    out_features=None,
    out_indices=None,
)
# What DepthAnythingConfig fills in without a backbone_config.
_DA_BACKBONE_DEFAULTS: Dict[str, Any] = dict(
    image_size=518, hidden_size=384, num_attention_heads=6,
    out_indices=[9, 10, 11, 12], reshape_hidden_states=False)
# DepthAnythingConfig 5.24 defaults.
_DA_DEFAULTS: Dict[str, Any] = dict(
    patch_size=14,
    reassemble_hidden_size=384,
    reassemble_factors=[4, 2, 1, 0.5],
    neck_hidden_sizes=[48, 96, 192, 384],
    fusion_hidden_size=64,
    head_in_index=-1,
    head_hidden_size=32,
    depth_estimation_type='relative',
    max_depth=1,
    backbone_config=None,
)
_DINOV2_TYPES = ('dinov2', 'dinov2_with_registers')


def _to_dict(config: Any) -> Dict[str, Any]:
    if hasattr(config, 'to_dict'):
        return config.to_dict()
    if isinstance(config, Mapping):
        return copy.deepcopy(dict(config))
    raise TypeError('hf_config must be a transformers config or a '
                    f'config.json dict, got {type(config).__name__}')


def is_dinov2_family(hf_config: Any) -> bool:
    """Whether a config is Depth Anything or DPT on a DINOv2 backbone."""
    cfg = _to_dict(hf_config)
    if cfg.get('model_type') == 'depth_anything':
        return True
    backbone = cfg.get('backbone_config')
    if backbone is None or cfg.get('is_hybrid'):
        return False
    return _to_dict(backbone).get('model_type') in _DINOV2_TYPES


def _resolve_backbone(raw: Optional[Any],
                      defaults: Dict[str, Any]) -> Dict[str, Any]:
    cfg = copy.deepcopy(_DINOV2_DEFAULTS)
    cfg.update(defaults)
    raw = {} if raw is None else _to_dict(raw)
    # Older config.json files store the backbone fields with a leading _.
    for name in ('out_features', 'out_indices'):
        if raw.get(name) is None and raw.get(f'_{name}') is not None:
            raw[name] = raw[f'_{name}']
    cfg.update({k: v for k, v in raw.items() if v is not None or
                k not in ('out_features', 'out_indices')})
    cfg.setdefault('model_type', 'dinov2')
    if cfg['model_type'] not in _DINOV2_TYPES:
        raise ValueError(f"backbone_config model_type={cfg['model_type']!r}"
                         f' is not one of {_DINOV2_TYPES}')
    stages = ['stem'] + [f'stage{i}'
                         for i in range(1, cfg['num_hidden_layers'] + 1)]
    if cfg['out_indices'] is None:
        feats = cfg['out_features'] or [stages[-1]]
        cfg['out_indices'] = [stages.index(f) for f in feats]
    cfg['out_indices'] = [int(i) % len(stages) for i in cfg['out_indices']]
    return cfg


def resolve_dinov2_family_config(hf_config: Any) -> Dict[str, Any]:
    """Complete a Depth Anything / DPT-DINOv2 config into a plain dict.

    Args:
        hf_config: ``DepthAnythingConfig``, ``DPTConfig`` with a DINOv2
            ``backbone_config``, or the dict of either's ``config.json``.

    Returns:
        dict: Every field the conversion reads, with ``family``
        (``'depth_anything'`` or ``'dpt'``) and a completed
        ``backbone_config``.
    """
    from .hf_dpt import _DPT_DEFAULTS
    raw = _to_dict(hf_config)
    if raw.get('model_type') == 'depth_anything':
        cfg = copy.deepcopy(_DA_DEFAULTS)
        cfg.update(raw)
        backbone_defaults = {} if raw.get('backbone_config') else \
            _DA_BACKBONE_DEFAULTS
        cfg['family'] = 'depth_anything'
    else:
        cfg = copy.deepcopy(_DPT_DEFAULTS)
        cfg.update(raw)
        backbone_defaults = {}
        cfg['family'] = 'dpt'
    cfg['backbone_config'] = _resolve_backbone(cfg['backbone_config'],
                                               backbone_defaults)
    return cfg


def _pair(value: Any) -> List[int]:
    if isinstance(value, (list, tuple)):
        return [int(v) for v in value]
    return [int(value), int(value)]


def _backbone(bb: Dict[str, Any], output_cls_token: bool) -> Dict[str, Any]:
    if bb['hidden_act'] != 'gelu' and not bb['use_swiglu_ffn']:
        raise ValueError(f"DINOv2 hidden_act={bb['hidden_act']!r} is not "
                         "supported (exact GELU, or use_swiglu_ffn)")
    if bb['reshape_hidden_states']:
        raise ValueError(
            'backbone_config.reshape_hidden_states=True: the DPT and Depth '
            'Anything necks of Transformers read token sequences '
            '(reshape_hidden_states=False in every published model)')
    patch = _pair(bb['patch_size'])
    image = _pair(bb['image_size'])
    if patch[0] != patch[1]:
        raise ValueError(f'non-square patch_size {patch} is not supported')
    if 0 in bb['out_indices']:
        raise ValueError('out_indices contains 0 (the embeddings, "stem"); '
                         'dpt_mm hooks transformer blocks only')
    # Transformers builds its position table from image_size // patch.
    grid = [s // patch[0] for s in image]
    img_size = [g * patch[0] for g in grid]
    registers = bb['model_type'] == 'dinov2_with_registers'
    return dict(
        type='DPTDINOv2',
        img_size=img_size[0] if img_size[0] == img_size[1] else
        tuple(img_size),
        patch_size=patch[0],
        in_channels=bb['num_channels'],
        embed_dims=bb['hidden_size'],
        num_layers=bb['num_hidden_layers'],
        num_heads=bb['num_attention_heads'],
        mlp_ratio=float(bb['mlp_ratio']),
        qkv_bias=bb['qkv_bias'],
        norm_eps=bb['layer_norm_eps'],
        layer_scale_init=float(bb['layerscale_value']),
        ffn_type='swiglu' if bb['use_swiglu_ffn'] else 'mlp',
        num_register_tokens=bb['num_register_tokens'] if registers else 0,
        pos_embed_antialias=registers,
        # Stage k of Transformers is the output of block k - 1.
        out_indices=tuple(i - 1 for i in bb['out_indices']),
        norm_outputs=bb['apply_layernorm'],
        output_cls_token=output_cls_token,
        drop_rate=bb['hidden_dropout_prob'],
        attn_drop_rate=bb['attention_probs_dropout_prob'])


def dinov2_family_to_mm_config(hf_config: Any,
                               task: Optional[str] = None,
                               mean: Sequence[float] = (123.675, 116.28,
                                                        103.53),
                               std: Sequence[float] = (58.395, 57.12,
                                                       57.375)
                               ) -> Dict[str, Any]:
    """An mmseg model config that builds the dpt_mm twin of the model.

    Args:
        hf_config: See :func:`resolve_dinov2_family_config`.
        task (str, optional): Only ``'depth'`` exists for these models.
        mean (Sequence[float]): Data-preprocessor mean on 0–255 RGB
            (ImageNet's by default, as the Depth Anything processors).
        std (Sequence[float]): Data-preprocessor std.

    Returns:
        dict: ``model`` config for ``MODELS.build`` (scope ``mmseg``).
    """
    cfg = resolve_dinov2_family_config(hf_config)
    if task not in (None, 'depth'):
        raise ValueError(f'{cfg["family"]} with a DINOv2 backbone is a depth '
                         f'model; task={task!r} is not available')
    bb = cfg['backbone_config']
    num_levels = len(cfg['neck_hidden_sizes'])
    if len(bb['out_indices']) != num_levels or len(
            cfg['reassemble_factors']) != num_levels:
        raise ValueError(
            f"{len(bb['out_indices'])} backbone out_indices and "
            f"{len(cfg['reassemble_factors'])} reassemble_factors for "
            f'{num_levels} neck levels')
    fusion = cfg['fusion_hidden_size']
    patch = _pair(bb['patch_size'])[0]
    in_index = num_levels - 1 - cfg['head_in_index'] % num_levels
    if cfg['family'] == 'depth_anything':
        if _pair(cfg['patch_size'])[0] != patch:
            raise ValueError(f"patch_size={cfg['patch_size']} differs from "
                             f'the backbone patch size {patch}')
        if cfg['reassemble_hidden_size'] != bb['hidden_size']:
            raise ValueError('reassemble_hidden_size must equal the backbone '
                             'hidden_size')
        kind = cfg['depth_estimation_type']
        if kind == 'relative' and cfg['max_depth'] not in (None, 1):
            raise ValueError(
                f"relative Depth Anything with max_depth={cfg['max_depth']}"
                ' (a scale on the ReLU output) is not supported')
        if kind not in ('relative', 'metric'):
            raise ValueError(f'depth_estimation_type={kind!r}')
        backbone = _backbone(bb, output_cls_token=False)
        neck = dict(readout_type='ignore', fusion_norm_cfg=None,
                    fusion_bias=True, upsample_to_lateral=True)
        # The finest fused map is 2·f0 × the grid; the head's output is
        # patch × the grid.
        head = dict(
            channels=cfg['head_hidden_size'],
            add_projection=False,
            upsample_factor=patch / (2 * cfg['reassemble_factors'][0]),
            output_mode='bounded_depth' if kind == 'metric' else
            'inverse_depth',
            max_depth=float(cfg['max_depth']) if kind == 'metric' else None)
    else:
        if cfg['hidden_act'] != 'gelu':
            raise ValueError(f"hidden_act={cfg['hidden_act']!r}: the readout "
                             'projection uses exact GELU')
        if cfg['add_projection'] and fusion != 256:
            raise ValueError('add_projection needs fusion_hidden_size 256 '
                             '(hard-coded in Transformers)')
        backbone = _backbone(bb, output_cls_token=True)
        neck = dict(
            readout_type=cfg['readout_type'],
            fusion_norm_cfg=dict(type='BN', requires_grad=True)
            if cfg['use_batch_norm_in_fusion_residual'] else None,
            fusion_bias=cfg['use_bias_in_fusion_residual'])
        # The published DPT-DINOv2 heads (facebook/dpt-dinov2-*, NYU and
        # KITTI) predict metric depth in metres through the final ReLU.
        head = dict(channels=32, add_projection=cfg['add_projection'],
                    output_mode='depth')
    neck = dict(
        type='DPTNeck',
        in_channels=bb['hidden_size'],
        reassemble_channels=tuple(cfg['neck_hidden_sizes']),
        resample_factors=tuple(cfg['reassemble_factors']),
        channels=fusion,
        **neck)
    decode_head = dict(type='DPTDepthHead', in_channels=fusion,
                       mid_channels=fusion // 2, in_index=in_index,
                       align_corners=False, **head)
    return dict(
        type='DepthEstimator',
        data_preprocessor=dict(
            type='SegDataPreProcessor', mean=list(mean), std=list(std),
            bgr_to_rgb=True, pad_val=0, seg_pad_val=0, size_divisor=patch),
        backbone=backbone,
        neck=neck,
        decode_head=decode_head,
        train_cfg=dict(),
        test_cfg=dict(mode='whole'))


# --------------------------------------------------------------------------
# weights



def dinov2_backbone_rules(src: str, layer: str, norm_used: bool,
                          dst: str = 'backbone.') -> List[Rule]:
    """Renaming rules of a DINOv2 encoder, Transformers layout.

    The split projections (q/k/v, SwiGLU gate/up) are fused apart by
    :func:`fuse_split_projections`; these rules leave them unmatched.

    Args:
        src (str): Prefix of the embeddings/layernorm (``backbone.``).
        layer (str): Regex of a block prefix with the index as group 1.
        norm_used (bool): Whether the final LayerNorm is applied to the
            hooked outputs (else its weights are dropped).
        dst (str): Our backbone prefix.
    """
    e = re.escape(src) + r'embeddings\.'
    return [
        Rule(e + r'cls_token', dst + 'cls_token'),
        Rule(e + r'mask_token',
             Drop('mask token: masked-image pretraining only')),
        Rule(e + r'position_embeddings', dst + 'pos_embed'),
        Rule(e + r'register_tokens', dst + 'register_tokens'),
        Rule(e + r'patch_embeddings\.projection\.' + WB,
             dst + r'patch_embed.proj.\1'),
        Rule(layer + r'(norm[12])\.' + WB, dst + r'layers.\1.\2.\3'),
        Rule(layer + r'attention\.(o_proj|output\.dense)\.' + WB,
             dst + r'layers.\1.attn.proj.\3'),
        Rule(layer + r'layer_scale([12])\.lambda1',
             dst + r'layers.\1.ls\2.gamma'),
        Rule(layer + r'mlp\.(fc[12])\.' + WB,
             dst + r'layers.\1.mlp.\2.\3'),
        Rule(layer + r'mlp\.weights_in\.' + WB,
             dst + r'layers.\1.mlp.fc1.\2'),
        Rule(layer + r'mlp\.(down_proj|weights_out)\.' + WB,
             dst + r'layers.\1.mlp.fc2.\3'),
        Rule(re.escape(src) + r'layernorm\.' + WB,
             dst + r'norm.\1' if norm_used else Drop(
                 'final LayerNorm: apply_layernorm=False, the hooked '
                 'outputs are not normed')),
    ]


_SPLIT = re.compile(
    r'(?P<layer>.*?\.)(?P<name>attention\.(?:attention\.)?'
    r'(?:q_proj|k_proj|v_proj|query|key|value)|mlp\.(?:gate|up)_proj)'
    r'\.(?P<param>weight|bias)')
_ORDER = {'q_proj': 0, 'query': 0, 'k_proj': 1, 'key': 1, 'v_proj': 2,
          'value': 2, 'gate_proj': 0, 'up_proj': 1}


def fuse_split_projections(state_dict: Mapping[str, Tensor],
                           layer: str, dst: str = 'backbone.'
                           ) -> Dict[str, Tensor]:
    """Fuse q/k/v into ``attn.qkv`` and SwiGLU gate/up into ``mlp.fc1``.

    Args:
        state_dict (Mapping[str, Tensor]): Transformers weights; only the
            split projection keys are read.
        layer (str): Regex of a block prefix with the index as group 1.
        dst (str): Our backbone prefix.

    Returns:
        dict[str, Tensor]: The fused tensors under our names.
    """
    layer_re = re.compile(layer)
    parts: Dict[tuple, Dict[int, Tensor]] = {}
    for key, value in state_dict.items():
        m = _SPLIT.fullmatch(key)
        lm = layer_re.fullmatch(m['layer']) if m else None
        if lm is None:
            continue
        short = m['name'].rsplit('.', 1)[-1]
        target = 'mlp.fc1' if short in ('gate_proj', 'up_proj') else \
            'attn.qkv'
        parts.setdefault((int(lm[1]), target, m['param']),
                         {})[_ORDER[short]] = value
    fused = {}
    for (idx, target, param), chunks in sorted(parts.items()):
        need = 2 if target == 'mlp.fc1' else 3
        if sorted(chunks) != list(range(need)):
            raise KeyError(f'block {idx}: {target} {param} has only parts '
                           f'{sorted(chunks)} of {need}')
        fused[f'{dst}layers.{idx}.{target}.{param}'] = torch.cat(
            [chunks[i] for i in range(need)], dim=0)
    return fused


def map_dinov2_family_state_dict(state_dict: Mapping[str, Tensor],
                                 hf_config: Any) -> Conversion:
    """Rename Depth Anything / DPT-DINOv2 weights into dpt_mm keys.

    Args:
        state_dict (Mapping[str, Tensor]): Transformers weights (either
            attention spelling).
        hf_config: Its config or ``config.json`` dict.

    Returns:
        Conversion: dpt_mm state dict plus the dropped keys and reasons.
    """
    from .hf_dpt import _hf_rules
    cfg = resolve_dinov2_family_config(hf_config)
    num_levels = len(cfg['neck_hidden_sizes'])
    layer = r'backbone\.encoder\.layer\.(\d+)\.'
    rules = dinov2_backbone_rules(
        'backbone.', layer, cfg['backbone_config']['apply_layernorm'])
    # The neck keys are DPT's; dpt.* rules simply match nothing here.
    rules += _hf_rules(num_levels, 'depth')
    rules += [
        Rule(r'head\.conv1\.' + WB, r'decode_head.conv1.\1'),
        Rule(r'head\.conv2\.' + WB, r'decode_head.conv2.\1'),
        Rule(r'head\.conv3\.' + WB, r'decode_head.conv_seg.\1'),
    ]
    rest = {k: v for k, v in state_dict.items() if not _SPLIT.fullmatch(k)}
    result = apply_rules(rest, rules, f"Transformers {cfg['family']} "
                         'checkpoint (DINOv2 backbone)')
    result.state_dict.update(fuse_split_projections(state_dict, layer))
    result.num_source = len(state_dict)
    return result

"""Transformers DPT (``DPTForDepthEstimation``, ``DPTForSemanticSegmentation``,
``DPTModel``) → dpt_mm: model config and weights.

Names on the Transformers side (``dpt.encoder.layer.N``, ``neck.convs.i``,
``neck.fusion_stage.layers.j``...) appear only here. Transformers orders its
fusion layers deepest first, so its ``fusion_stage.layers.j`` is our
``fusion_blocks.{n-1-j}``; its fused-map list is deepest first as well, so
its ``head_in_index=-1`` is our ``in_index=0``.

Transformers is not needed at runtime: a ``config.json`` dict is completed
with the defaults of ``DPTConfig``/``BitConfig`` 5.24 (tested against the
installed classes).
"""
import copy
import re
from typing import Any, Dict, List, Mapping, Optional, Sequence

import torch
from torch import Tensor

from . import hf_dinov2
from .common import Conversion, apply_rules
# The DPT part of the layout, shared with the DINOv2 family's converter.
from .hf_dpt import (_BIT_DEFAULTS, _DPT_DEFAULTS,  # noqa: F401
                     _QKV, _hf_rules)

__all__ = [
    'HF_TASKS', 'convert_hf_state_dict', 'hf_config_to_mm_config',
    'hf_dataset_meta', 'hf_processor_to_mm', 'infer_hf_task',
    'map_hf_state_dict', 'resolve_hf_config'
]

# What a saved model holds: depth estimator, segmenter, or bare encoder.
HF_TASKS = ('depth', 'seg', 'backbone')
_ARCH_TASKS = {
    'DPTForDepthEstimation': 'depth',
    'DPTForSemanticSegmentation': 'seg',
    'DPTModel': 'backbone',
    'DepthAnythingForDepthEstimation': 'depth',
}

# What DPTConfig fills in for a hybrid without an explicit backbone_config.
_BIT_HYBRID_DEFAULTS: Dict[str, Any] = dict(
    global_padding='same',
    layer_type='bottleneck',
    depths=[3, 4, 9],
    out_features=['stage1', 'stage2', 'stage3'],
    embedding_dynamic_padding=True,
)
_BIT_OUT_FEATURES = ['stage1', 'stage2', 'stage3']


def _to_dict(config: Any) -> Dict[str, Any]:
    if hasattr(config, 'to_dict'):
        return config.to_dict()
    if isinstance(config, Mapping):
        return copy.deepcopy(dict(config))
    raise TypeError('hf_config must be a transformers DPTConfig or a '
                    f'config.json dict, got {type(config).__name__}')


def _resolve_bit_config(bit: Optional[Any]) -> Dict[str, Any]:
    cfg = copy.deepcopy(_BIT_DEFAULTS)
    cfg.update(copy.deepcopy(_BIT_HYBRID_DEFAULTS) if bit is None else
               _to_dict(bit))
    if cfg.get('model_type', 'bit') != 'bit':
        raise ValueError('DPT-Hybrid needs a BiT backbone_config, got '
                         f"model_type={cfg['model_type']!r}")
    if cfg['global_padding'] is not None:
        cfg['global_padding'] = str(cfg['global_padding']).upper()
    names = ['stem'] + [f'stage{i + 1}' for i in range(len(cfg['depths']))]
    if cfg['out_features'] is None and cfg['out_indices'] is not None:
        cfg['out_features'] = [names[i] for i in cfg['out_indices']]
    if cfg['out_features'] is None:
        cfg['out_features'] = [names[-1]]
    cfg['out_indices'] = [names.index(n) for n in cfg['out_features']]
    return cfg


def resolve_hf_config(hf_config: Any) -> Dict[str, Any]:
    """Complete a Transformers DPT config into a plain dict.

    Args:
        hf_config: A ``transformers.DPTConfig`` or the dict of a
            ``config.json`` (missing fields take the Transformers defaults).

    Returns:
        dict: Every field the conversion reads; ``backbone_config`` is a
        completed BiT dict for hybrids, else None.
    """
    raw = _to_dict(hf_config)
    cfg = copy.deepcopy(_DPT_DEFAULTS)
    cfg.update(raw)
    if 'id2label' not in raw and raw.get('num_labels') is not None:
        cfg['id2label'] = {i: f'LABEL_{i}' for i in range(raw['num_labels'])}
    # config.json stores the class ids as strings.
    cfg['id2label'] = {int(k): v for k, v in cfg['id2label'].items()}
    if cfg.get('model_type', 'dpt') != 'dpt':
        raise ValueError(f"not a DPT config: model_type={cfg['model_type']!r}")
    if cfg['is_hybrid']:
        cfg['backbone_config'] = _resolve_bit_config(cfg['backbone_config'])
    elif _separate_backbone(cfg) is not None:
        cfg['backbone_config'] = _separate_backbone(
            cfg).resolve_backbone_config(cfg['backbone_config'])
        cfg['neck_ignore_stages'] = []
        cfg['backbone_featmap_shape'] = None
    elif cfg['backbone_config'] is not None or cfg.get('backbone'):
        backbone = cfg['backbone_config'] or {}
        model_type = getattr(backbone, 'model_type', None) or (
            backbone.get('model_type') if isinstance(backbone, dict)
            else None) or cfg.get('backbone')
        raise ValueError(
            f'DPT with a {model_type!r} backbone is not supported; dpt_mm '
            'converts DPT with the ViT, ViT-Hybrid, BEiT, Swin V2 and DINOv2 '
            'encoders, and Depth Anything')
    else:
        # As DPTConfig: both fields only mean something for hybrids.
        cfg['neck_ignore_stages'] = []
        cfg['backbone_featmap_shape'] = None
    return cfg


def _separate_backbone(cfg: Mapping[str, Any]) -> Any:
    """The converter module of a separate backbone (BEiT, Swin V2) of a
    non-hybrid DPT config, or None."""
    from . import hf_beit, hf_swinv2
    backbone = cfg.get('backbone_config')
    if cfg.get('is_hybrid') or backbone is None:
        return None
    model_type = (backbone.model_type if hasattr(backbone, 'model_type')
                  else backbone.get('model_type'))
    return dict(beit=hf_beit, swinv2=hf_swinv2).get(model_type)


def infer_hf_task(state_dict: Optional[Mapping[str, Tensor]] = None,
                  hf_config: Any = None) -> str:
    """Which Transformers class a checkpoint belongs to.

    The weights decide when given (a segmentation head has a BatchNorm at
    ``head.head.1``); otherwise the config's ``architectures``.

    Args:
        state_dict (Mapping, optional): Transformers weights.
        hf_config: Config, read when ``state_dict`` is None.

    Returns:
        str: ``'depth'``, ``'seg'`` or ``'backbone'``.
    """
    if state_dict is not None:
        if any(k.startswith('head.head.1.') for k in state_dict):
            return 'seg'
        if any(k.startswith('head.') for k in state_dict):
            return 'depth'
        return 'backbone'
    archs = _to_dict(hf_config).get('architectures') or []
    tasks = {_ARCH_TASKS[a] for a in archs if a in _ARCH_TASKS}
    if len(tasks) != 1:
        raise ValueError(
            f'cannot tell the task from architectures={archs}; expected one '
            f'of {sorted(_ARCH_TASKS)} (or pass task=...)')
    return tasks.pop()


def _pair(value: Any, name: str) -> List[int]:
    if isinstance(value, (list, tuple)):
        if len(value) != 2:
            raise ValueError(f'{name} must be an int or a pair, got {value}')
        return [int(v) for v in value]
    return [int(value), int(value)]


def _make_div(value: float, divisor: int = 8) -> int:
    """BiT's channel rounding (``transformers.models.bit.make_div``)."""
    new_value = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if new_value < 0.9 * value:
        new_value += divisor
    return new_value


def _check_hybrid(cfg: Dict[str, Any]) -> List[int]:
    """Validate the BiT settings dpt_mm implements; returns stage widths."""
    bit = cfg['backbone_config']
    expected = dict(layer_type='bottleneck', global_padding='SAME',
                    embedding_dynamic_padding=True, hidden_act='relu')
    wrong = {k: bit[k] for k, v in expected.items() if bit[k] != v}
    if wrong:
        raise ValueError(
            f'unsupported BiT settings {wrong}: dpt_mm implements the '
            f'DPT-Hybrid stem only ({expected})')
    if len(bit['depths']) != 3 or list(
            bit['out_features']) != _BIT_OUT_FEATURES:
        raise ValueError(
            'DPT-Hybrid needs a 3-stage BiT with out_features '
            f"{_BIT_OUT_FEATURES}, got depths={bit['depths']}, "
            f"out_features={bit['out_features']}")
    if bit['output_stride'] < 16:
        raise ValueError('BiT output_stride < 16 (dilated stages) is not '
                         'supported')
    widths = [
        _make_div(h * bit['width_factor'])
        for h in bit['hidden_sizes'][:len(bit['depths'])]
    ]
    for width in widths:
        if width % 4 or _make_div(width * 0.25) != width // 4:
            raise ValueError(
                f'BiT stage width {width}: its bottleneck width rounds to '
                f'{_make_div(width * 0.25)} in Transformers, not {width}/4 '
                'as in dpt_mm; use widths that are multiples of 32')
    if bit['num_channels'] != cfg['num_channels']:
        raise ValueError('backbone_config.num_channels differs from '
                         'num_channels')
    if list(cfg['neck_ignore_stages']) != [0, 1]:
        raise ValueError('DPT-Hybrid needs neck_ignore_stages=[0, 1], got '
                         f"{cfg['neck_ignore_stages']}")
    if cfg['backbone_featmap_shape'][1] != widths[-1]:
        raise ValueError(
            f"backbone_featmap_shape[1]={cfg['backbone_featmap_shape'][1]} "
            f'must equal the last BiT stage width {widths[-1]}')
    if cfg['readout_type'] != 'project':
        raise ValueError('Transformers DPT-Hybrid supports only '
                         "readout_type='project'")
    return widths


def _fusion_norm_cfg(cfg: Dict[str, Any]) -> Optional[dict]:
    return dict(type='BN', requires_grad=True) \
        if cfg['use_batch_norm_in_fusion_residual'] else None


def _head_in_index(cfg: Dict[str, Any], num_levels: int) -> int:
    index = cfg['head_in_index']
    if not -num_levels <= index < num_levels:
        raise ValueError(f'head_in_index={index} out of range for '
                         f'{num_levels} fused maps')
    # Transformers lists fused maps deepest first; ours are finest first.
    return num_levels - 1 - index % num_levels


def hf_config_to_mm_config(hf_config: Any,
                           task: Optional[str] = None,
                           mean: Sequence[float] = (127.5, 127.5, 127.5),
                           std: Sequence[float] = (127.5, 127.5, 127.5)
                           ) -> Dict[str, Any]:
    """An mmseg model config that builds the dpt_mm twin of a Transformers DPT.

    Architecture and numerics follow the Transformers config exactly
    (LayerNorm eps ``layer_norm_eps``, BiT weight standardisation
    ``sqrt(var + 1e-8)``, fusion BN/bias flags), so converted weights give
    the same outputs.

    Args:
        hf_config: ``transformers.DPTConfig`` or a ``config.json`` dict.
        task (str, optional): ``'depth'``, ``'seg'`` or ``'backbone'``
            (a bare ``DPTModel``: a depth model whose neck and head start
            untrained). Default: from ``architectures``.
        mean (Sequence[float]): Data-preprocessor mean on 0–255 RGB.
        std (Sequence[float]): Data-preprocessor std.

    Returns:
        dict: ``model`` config for ``MODELS.build`` (scope ``mmseg``).

    Raises:
        ValueError: For settings dpt_mm does not implement (non-GELU
            activation, separate backbones, other BiT layouts...).
    """
    if hf_dinov2.is_dinov2_family(hf_config):
        return hf_dinov2.dinov2_family_to_mm_config(hf_config, task, mean,
                                                    std)
    cfg = resolve_hf_config(hf_config)
    task = task or infer_hf_task(hf_config=hf_config)
    if task not in HF_TASKS:
        raise ValueError(f'task must be one of {HF_TASKS}, got {task!r}')
    if cfg['hidden_act'] != 'gelu':
        raise ValueError(
            f"hidden_act={cfg['hidden_act']!r} is not supported: dpt_mm's "
            "ViT MLP and readout use exact GELU (Transformers 'gelu')")
    hidden = cfg['hidden_size']
    if hidden % cfg['num_attention_heads']:
        raise ValueError('hidden_size must be divisible by '
                         'num_attention_heads')
    mlp_ratio = cfg['intermediate_size'] / hidden
    if int(hidden * mlp_ratio) != cfg['intermediate_size']:
        raise ValueError(f"intermediate_size={cfg['intermediate_size']} is "
                         'not representable as an MLP ratio')
    patch = _pair(cfg['patch_size'], 'patch_size')
    if patch[0] != patch[1]:
        raise ValueError(f'non-square patch_size {patch} is not supported')
    image_size = _pair(cfg['image_size'], 'image_size')
    num_levels = len(cfg['neck_hidden_sizes'])
    if len(cfg['reassemble_factors']) != num_levels:
        raise ValueError('reassemble_factors and neck_hidden_sizes must have '
                         'the same length')
    out_indices = list(cfg['backbone_out_indices'])
    backbone = dict(
        type='DPTViT',
        img_size=image_size[0] if image_size[0] == image_size[1] else
        tuple(image_size),
        patch_size=patch[0],
        in_channels=cfg['num_channels'],
        embed_dims=hidden,
        num_layers=cfg['num_hidden_layers'],
        num_heads=cfg['num_attention_heads'],
        mlp_ratio=mlp_ratio,
        qkv_bias=cfg['qkv_bias'],
        norm_eps=cfg['layer_norm_eps'],
        drop_rate=cfg['hidden_dropout_prob'],
        attn_drop_rate=cfg['attention_probs_dropout_prob'])
    if cfg['is_hybrid']:
        widths = _check_hybrid(cfg)
        bit = cfg['backbone_config']
        if num_levels != 4 or len(out_indices) != 4:
            raise ValueError('DPT-Hybrid needs 4 neck levels and 4 '
                             'backbone_out_indices (the first two unused)')
        backbone.update(
            type='DPTViTHybrid',
            # Transformers reads only backbone_out_indices[2:] as blocks;
            # the first two levels are the BiT stage1/stage2 maps.
            out_indices=tuple(out_indices[2:]),
            stem_channels=bit['embedding_size'],
            stem_depths=tuple(bit['depths']),
            stem_widths=tuple(widths),
            stem_out_indices=(0, 1),
            ws_eps=1e-8,
            ws_mode='var',
            norm_groups=bit['num_groups'])
        in_channels = [widths[0], widths[1], hidden, hidden]
        passthrough = (0, 1)
    elif _separate_backbone(cfg) is not None:
        backbone, neck_keys = _separate_backbone(cfg).mm_backbone(cfg)
        in_channels = neck_keys['in_channels']
        passthrough = neck_keys.get('passthrough_indices', ())
    else:
        if len(out_indices) != num_levels:
            raise ValueError(
                f'{len(out_indices)} backbone_out_indices for {num_levels} '
                'neck levels')
        backbone['out_indices'] = tuple(out_indices)
        in_channels = hidden
        passthrough = ()
    neck = dict(
        type='DPTNeck',
        in_channels=in_channels,
        reassemble_channels=tuple(cfg['neck_hidden_sizes']),
        resample_factors=tuple(cfg['reassemble_factors']),
        readout_type=cfg['readout_type'],
        passthrough_indices=passthrough,
        channels=cfg['fusion_hidden_size'],
        fusion_norm_cfg=_fusion_norm_cfg(cfg),
        fusion_bias=cfg['use_bias_in_fusion_residual'])
    fusion = cfg['fusion_hidden_size']
    in_index = _head_in_index(cfg, num_levels)
    if task == 'seg':
        model = _seg_model(cfg, fusion, in_index)
    else:
        if cfg['add_projection'] and fusion != 256:
            raise ValueError('add_projection with fusion_hidden_size != 256 '
                             'cannot be built by Transformers either (its '
                             'projection is hard-coded 256 → 256)')
        model = dict(
            type='DPTDepthEstimator',
            decode_head=dict(
                type='DPTDepthHead',
                in_channels=fusion,
                channels=32,
                mid_channels=fusion // 2,
                add_projection=cfg['add_projection'],
                output_mode='inverse_depth',
                in_index=in_index,
                align_corners=False))
    seg_pad_val = 255 if task == 'seg' else 0
    model.update(
        data_preprocessor=dict(
            type='SegDataPreProcessor', mean=list(mean), std=list(std),
            bgr_to_rgb=True, pad_val=0, seg_pad_val=seg_pad_val,
            size_divisor=32, test_cfg=dict(size_divisor=32)),
        backbone=backbone,
        neck=neck,
        train_cfg=dict(),
        test_cfg=dict(mode='whole'))
    order = ['type', 'data_preprocessor', 'backbone', 'neck', 'decode_head',
             'auxiliary_head', 'train_cfg', 'test_cfg']
    return {k: model[k] for k in order if k in model}


def _seg_model(cfg: Dict[str, Any], fusion: int,
               in_index: int) -> Dict[str, Any]:
    num_classes = len(cfg['id2label'])
    norm_cfg = dict(type='BN', requires_grad=True)
    ignore_index = cfg['semantic_loss_ignore_index']
    model = dict(
        type='DPTEncoderDecoder',
        decode_head=dict(
            type='DPTSegHead',
            in_channels=fusion,
            channels=fusion,
            num_classes=num_classes,
            dropout_ratio=float(cfg['semantic_classifier_dropout']),
            norm_cfg=norm_cfg,
            in_index=in_index,
            align_corners=False,
            ignore_index=ignore_index,
            loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False,
                             loss_weight=1.0)))
    if cfg['use_auxiliary_head']:
        # Transformers feeds its auxiliary head the last (finest) fused
        # map, the same as the main head: our in_index 0.
        model['auxiliary_head'] = dict(
            type='FCNHead',
            in_channels=fusion,
            channels=fusion,
            in_index=0,
            num_convs=1,
            kernel_size=3,
            concat_input=False,
            dropout_ratio=0.1,
            num_classes=num_classes,
            norm_cfg=norm_cfg,
            align_corners=False,
            ignore_index=ignore_index,
            loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False,
                             loss_weight=float(cfg['auxiliary_loss_weight'])))
    return model


# --------------------------------------------------------------------------
# weights

def _fuse_qkv(state_dict: Mapping[str, Tensor]) -> Dict[str, Tensor]:
    """Concatenate Transformers' query/key/value into timm's fused qkv."""
    regex = re.compile(_QKV)
    parts: Dict[tuple, Dict[str, Tensor]] = {}
    for key, value in state_dict.items():
        m = regex.fullmatch(key)
        if m:
            parts.setdefault((int(m[1]), m[3]), {})[m[2]] = value
    fused = {}
    for (layer, param), qkv in sorted(parts.items()):
        missing = [p for p in ('query', 'key', 'value') if p not in qkv]
        if missing:
            raise KeyError(f'layer {layer}: attention {param} lacks '
                           f'{missing}')
        # timm's fused layout is [q; k; v] along the output dimension.
        fused[f'backbone.layers.{layer}.attn.qkv.{param}'] = torch.cat(
            [qkv['query'], qkv['key'], qkv['value']], dim=0)
    return fused


def map_hf_state_dict(state_dict: Mapping[str, Tensor],
                      hf_config: Any,
                      task: Optional[str] = None) -> Conversion:
    """Rename a Transformers DPT state dict into dpt_mm keys, with a report.

    Args:
        state_dict (Mapping[str, Tensor]): Weights of
            ``DPTForDepthEstimation``, ``DPTForSemanticSegmentation`` or
            ``DPTModel`` (whose keys lack the ``dpt.`` prefix).
        hf_config: Its ``DPTConfig`` or ``config.json`` dict.
        task (str, optional): Default: inferred from the keys.

    Returns:
        Conversion: dpt_mm state dict plus the dropped keys and reasons.
    """
    if hf_dinov2.is_dinov2_family(hf_config):
        return hf_dinov2.map_dinov2_family_state_dict(state_dict, hf_config)
    cfg = resolve_hf_config(hf_config)
    state_dict = dict(state_dict)
    if not any(k.startswith('dpt.') for k in state_dict) and any(
            k.startswith(('embeddings.', 'encoder.')) for k in state_dict):
        # A bare DPTModel saves its own keys without the base prefix.
        state_dict = {f'dpt.{k}': v for k, v in state_dict.items()}
    task = task or infer_hf_task(state_dict)
    if _separate_backbone(cfg) is not None:
        from .hf_backbone import map_separate_backbone_state_dict
        return map_separate_backbone_state_dict(
            state_dict, cfg, _hf_rules(len(cfg['neck_hidden_sizes']), task),
            _separate_backbone(cfg))
    qkv_regex = re.compile(_QKV)
    rest = {k: v for k, v in state_dict.items() if not qkv_regex.fullmatch(k)}
    result = apply_rules(rest, _hf_rules(len(cfg['neck_hidden_sizes']), task),
                         'Transformers DPT checkpoint')
    result.state_dict.update(_fuse_qkv(state_dict))
    result.num_source = len(state_dict)
    return result


def convert_hf_state_dict(state_dict: Mapping[str, Tensor],
                          hf_config: Any) -> Dict[str, Tensor]:
    """Transformers DPT weights → dpt_mm weights (pure function).

    Every key is renamed or dropped on purpose (``dpt.layernorm``, the
    pooler, the unused ``residual_layer1`` of the deepest fusion layer); an
    unknown key raises.

    Args:
        state_dict (Mapping[str, Tensor]): Transformers weights.
        hf_config: Its ``DPTConfig`` or ``config.json`` dict.

    Returns:
        dict[str, Tensor]: Weights for the model of
        :func:`hf_config_to_mm_config`.
    """
    return map_hf_state_dict(state_dict, hf_config).state_dict


def hf_palette(num_classes: int) -> List[List[int]]:
    """A fixed colour per class for ``dataset_meta`` (seeded, reproducible).
    """
    gen = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (num_classes, 3),
                         generator=gen).tolist()


def hf_dataset_meta(hf_config: Any, task: str) -> Dict[str, Any]:
    """``dataset_meta`` for the checkpoint: class names from ``id2label``.
    """
    if task != 'seg':
        return dict(classes=('depth', ))
    cfg = resolve_hf_config(hf_config)
    id2label = cfg['id2label']
    classes = tuple(id2label[i] for i in sorted(id2label))
    return dict(classes=classes, palette=hf_palette(len(classes)))


# --------------------------------------------------------------------------
# image processor

# DPTImageProcessor(Pil) 5.24 class defaults: what the pipeline uses for a
# field that preprocessor_config.json leaves out.
_PROCESSOR_DEFAULTS: Dict[str, Any] = dict(
    do_resize=True,
    size={'height': 384, 'width': 384},
    keep_aspect_ratio=False,
    ensure_multiple_of=1,
    resample=3,
    do_rescale=True,
    rescale_factor=1 / 255,
    do_normalize=True,
    image_mean=[0.5, 0.5, 0.5],
    image_std=[0.5, 0.5, 0.5],
    do_pad=False,
    size_divisor=None,
)
# PIL.Image.Resampling values, as Transformers stores ``resample``.
_PIL_RESAMPLE = {0: 'nearest', 1: 'lanczos', 2: 'bilinear', 3: 'bicubic',
                 4: 'box', 5: 'hamming'}


def _per_channel(value: Any, name: str) -> List[float]:
    values = [float(value)] * 3 if isinstance(value, (int, float)) else \
        [float(v) for v in value]
    if len(values) != 3:
        raise ValueError(f'preprocessor_config.json: {name} must have 3 '
                         f'values, got {value}')
    return values


def hf_processor_to_mm(preprocessor: Optional[Mapping[str, Any]] = None
                       ) -> Dict[str, Any]:
    """Transformers' ``DPTImageProcessor`` settings as a dpt_mm pipeline.

    Every field that changes the network input is carried over: ``size``,
    ``keep_aspect_ratio``, ``ensure_multiple_of``, ``resample`` (Pillow's
    filter, as ``DPTImageProcessorPil``), ``do_rescale``/``rescale_factor``,
    ``do_normalize``/``image_mean``/``image_std`` and
    ``do_pad``/``size_divisor`` (centred padding with 0 after
    normalisation). Fields left out take the 5.24 class defaults.

    Args:
        preprocessor (Mapping, optional): ``preprocessor_config.json`` dict;
            None gives the defaults (384×384 squashed, bicubic, 0.5/0.5).

    Returns:
        dict: ``mean`` and ``std`` on 0–255 RGB for the data preprocessor,
        and ``inference_pipeline`` (a list of transform configs).

    Raises:
        ValueError: A setting with no dpt_mm equivalent; the message names
        the field.
    """
    cfg = copy.deepcopy(_PROCESSOR_DEFAULTS)
    cfg.update({k: v for k, v in (preprocessor or {}).items() if k in cfg})
    factor = float(cfg['rescale_factor']) if cfg['do_rescale'] else 1.0
    if cfg['do_normalize']:
        mean = [m / factor for m in _per_channel(cfg['image_mean'],
                                                 'image_mean')]
        std = [s / factor for s in _per_channel(cfg['image_std'],
                                                'image_std')]
    else:  # only the rescale: x * factor = (x - 0) / (1 / factor)
        mean, std = [0.0] * 3, [1 / factor] * 3
    mean = [round(m, 6) for m in mean]
    std = [round(s, 6) for s in std]
    pipeline = [dict(type='LoadImageFromNDArray')]
    if cfg['do_resize']:
        size = cfg['size']
        if isinstance(size, int):
            size = {'height': size, 'width': size}
        if not {'height', 'width'} <= set(size or {}):
            raise ValueError('preprocessor_config.json: size must give '
                             f'height and width for DPT, got {size}')
        resample = cfg['resample']
        if isinstance(resample, str):  # an enum name, e.g. "BICUBIC"
            resample = resample.lower()
        else:
            resample = _PIL_RESAMPLE.get(int(resample))
        if resample not in _PIL_RESAMPLE.values():
            raise ValueError('preprocessor_config.json: unsupported resample='
                             f"{cfg['resample']!r}")
        height, width = int(size['height']), int(size['width'])
        resize = dict(
            type='DPTResize',
            size=height if height == width else (height, width),
            keep_aspect_ratio=bool(cfg['keep_aspect_ratio']),
            ensure_multiple_of=int(cfg['ensure_multiple_of'] or 1),
            interpolation=resample,
            backend='pil')
        if cfg['do_pad'] and cfg['size_divisor']:
            # Zero after normalisation is the mean before it (BGR here).
            resize.update(pad_size_divisor=int(cfg['size_divisor']),
                          pad_val=mean[::-1])
        pipeline.append(resize)
    elif cfg['do_pad'] and cfg['size_divisor']:
        raise ValueError('preprocessor_config.json: do_pad without do_resize '
                         'is not supported')
    pipeline.append(dict(type='PackSegInputs'))
    return dict(mean=mean, std=std, inference_pipeline=pipeline)

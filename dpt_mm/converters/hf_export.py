"""dpt_mm → Transformers DPT: config and weights (the reverse of ``hf.py``).

Pure functions over configs and state dicts, used by
``tools/model_converters/mm2hf.py`` and the tests. Each backbone family
registers its part in :data:`MM2HF_FAMILIES` (keyed by the backbone's
``type``): the Transformers config fields of the encoder and the renaming
rules of its weights. ViT and ViT-Hybrid are here; BEiT, Swin V2 and
DINOv2 (a separate ``backbone_config``) come from
:mod:`.hf_export_beit`, :mod:`.hf_export_swinv2` and
:mod:`.hf_export_dinov2`. The neck and heads are shared by all families.

Depth Anything models (a ``DPTDINOv2`` under fusion blocks that upsample
to the next level) go to ``DepthAnythingForDepthEstimation`` instead, by
:mod:`.hf_export_depth_anything`.

A setting Transformers cannot express (another depth output mode, a
readout the hybrid lacks, an auxiliary head on another fused map, the
release's weight standardisation...) raises ``ValueError`` naming the
config key, so an exported model always gives the numbers dpt_mm gives.
"""
import copy
from typing import Any, Dict, List, Mapping, Optional

import torch
from torch import Tensor

from .common import BN, Conversion, Rule, WB, apply_rules
from .hf import _BIT_DEFAULTS, _DPT_DEFAULTS, resolve_hf_config
from . import hf_export_depth_anything as depth_anything
from .hf_dpt import _neck_rules_to_hf, deepest_unit_fills
from .hf_export_beit import BEIT_FAMILY
from .hf_export_dinov2 import (dinov2_backbone_config_to_hf,
                               dinov2_backbone_rules_to_hf,
                               dinov2_backbone_unused_to_hf,
                               split_fused_qkv)
from .hf_export_family import HFFamily
from .hf_export_family import cfg_get as _get
from .hf_export_family import refuse as _refuse
from .hf_export_family import plain, token_neck_check
from .hf_export_family import type_name as _type_name
from .hf_export_swinv2 import SWINV2_FAMILY

__all__ = [
    'MM2HF_FAMILIES', 'HFFamily', 'HF_UNUSED_FILL', 'convert_mm_to_hf',
    'mm_config_to_hf_config', 'mm_state_dict_to_hf'
]

# Transformers tensors that dpt_mm does not keep (unused by the depth and
# segmentation forward passes): restored from the converted folder when
# hf2mm kept them, else filled as said here.
HF_UNUSED_FILL = {
    'dpt.layernorm.weight': 'ones (final LayerNorm, read by DPTModel only)',
    'dpt.layernorm.bias': 'zeros (final LayerNorm, read by DPTModel only)',
    'neck.fusion_stage.layers.0.residual_layer1.*':
    'zeros (deepest fusion layer: never used without a lateral input)',
    'backbone.embeddings.mask_token':
    'zeros (DINOv2 mask token: masked-image pretraining only)',
    'backbone.layernorm.*':
    'ones/zeros (DINOv2 final LayerNorm with norm_outputs=False)',
}


def _vit_config(backbone: Mapping[str, Any]) -> Dict[str, Any]:
    embed = _get(backbone, 'embed_dims', 768)
    mlp_ratio = _get(backbone, 'mlp_ratio', 4.0)
    img_size = _get(backbone, 'img_size', 384)
    if not isinstance(img_size, int):
        img_size = list(img_size)
        if img_size[0] == img_size[1]:
            img_size = img_size[0]
    return dict(
        hidden_size=embed,
        num_hidden_layers=_get(backbone, 'num_layers', 12),
        num_attention_heads=_get(backbone, 'num_heads', 12),
        intermediate_size=int(embed * mlp_ratio),
        hidden_act='gelu',
        hidden_dropout_prob=float(_get(backbone, 'drop_rate', 0.0)),
        attention_probs_dropout_prob=float(
            _get(backbone, 'attn_drop_rate', 0.0)),
        layer_norm_eps=float(_get(backbone, 'norm_eps', 1e-6)),
        image_size=img_size,
        patch_size=_get(backbone, 'patch_size', 16),
        num_channels=_get(backbone, 'in_channels', 3),
        qkv_bias=bool(_get(backbone, 'qkv_bias', True)),
        backbone_out_indices=list(_get(backbone, 'out_indices',
                                       (2, 5, 8, 11))),
        is_hybrid=False,
    )


def _hybrid_config(backbone: Mapping[str, Any]) -> Dict[str, Any]:
    ws = (_get(backbone, 'ws_mode', 'var'), float(_get(backbone, 'ws_eps',
                                                       1e-8)))
    if ws != ('var', 1e-8):
        raise _refuse(
            'backbone.(ws_mode, ws_eps)', ws, "Transformers' BiT "
            "standardises weights as (w - mean) / sqrt(var + 1e-8) "
            "(ws_mode='var', ws_eps=1e-8); these weights were made for the "
            "release numerics")
    cfg = _vit_config(backbone)
    depths = list(_get(backbone, 'stem_depths', (3, 4, 9)))
    widths = list(_get(backbone, 'stem_widths', (256, 512, 1024)))
    if len(depths) != 3 or tuple(_get(backbone, 'stem_out_indices',
                                      (0, 1))) != (0, 1):
        raise _refuse('backbone.stem_depths/stem_out_indices',
                      (depths, backbone.get('stem_out_indices')),
                      'the hybrid reads a 3-stage BiT at stages 1 and 2')
    # Transformers reads only backbone_out_indices[2:] as blocks; the first
    # two are placeholders (its converter leaves the default 2, 5).
    cfg['backbone_out_indices'] = [2, 5] + cfg['backbone_out_indices']
    img_size = cfg['image_size']
    grid = [s // cfg['patch_size'] for s in (
        [img_size, img_size] if isinstance(img_size, int) else img_size)]
    cfg.update(
        is_hybrid=True,
        backbone_featmap_shape=[1, widths[-1], *grid],
        neck_ignore_stages=[0, 1],
        backbone_config=dict(
            _BIT_DEFAULTS, model_type='bit',
            embedding_size=_get(backbone, 'stem_channels', 64),
            hidden_sizes=widths,
            depths=depths, layer_type='bottleneck', global_padding='SAME',
            num_groups=_get(backbone, 'norm_groups', 32),
            embedding_dynamic_padding=True,
            out_features=['stage1', 'stage2', 'stage3'],
            out_indices=[1, 2, 3]))
    return cfg


_ENC = r'backbone\.layers\.(\d+)\.'


def _vit_rules(backbone: Mapping[str, Any]) -> List[Rule]:
    hybrid = backbone.get('type') == 'DPTViTHybrid'
    bit = r'backbone\.patch_embed\.backbone\.'
    out = 'dpt.embeddings.backbone.bit.'
    return [
        Rule(r'backbone\.cls_token', 'dpt.embeddings.cls_token'),
        Rule(r'backbone\.pos_embed', 'dpt.embeddings.position_embeddings'),
        Rule(r'backbone\.patch_embed\.proj\.' + WB,
             r'dpt.embeddings.projection.\1' if hybrid else
             r'dpt.embeddings.patch_embeddings.projection.\1'),
        Rule(bit + r'stem\.conv\.weight', out + 'embedder.convolution.weight'),
        Rule(bit + r'stem\.norm\.' + WB, out + r'embedder.norm.\1'),
        Rule(bit + r'stages\.(\d+)\.blocks\.(\d+)\.(conv[123]|norm[123]|'
             r'downsample\.conv|downsample\.norm)\.' + WB,
             out + r'encoder.stages.\1.layers.\2.\3.\4'),
        Rule(_ENC + r'norm1\.' + WB,
             r'dpt.encoder.layer.\1.layernorm_before.\2'),
        Rule(_ENC + r'attn\.(query|key|value)\.' + WB,
             r'dpt.encoder.layer.\1.attention.attention.\2.\3'),
        Rule(_ENC + r'attn\.proj\.' + WB,
             r'dpt.encoder.layer.\1.attention.output.dense.\2'),
        Rule(_ENC + r'norm2\.' + WB,
             r'dpt.encoder.layer.\1.layernorm_after.\2'),
        Rule(_ENC + r'mlp\.fc1\.' + WB,
             r'dpt.encoder.layer.\1.intermediate.dense.\2'),
        Rule(_ENC + r'mlp\.fc2\.' + WB,
             r'dpt.encoder.layer.\1.output.dense.\2'),
    ]


def _vit_neck(backbone: Mapping[str, Any], neck: Mapping[str, Any]) -> None:
    hybrid = backbone.get('type') == 'DPTViTHybrid'
    passthrough = tuple(_get(neck, 'passthrough_indices', ()))
    if passthrough != ((0, 1) if hybrid else ()):
        raise _refuse('neck.passthrough_indices', passthrough,
                      'only the hybrid passes its two BiT maps through')
    if hybrid and _get(neck, 'readout_type', 'project') != 'project':
        raise _refuse('neck.readout_type', neck['readout_type'],
                      "DPT-Hybrid supports readout_type='project' only")


def _vit_fills(backbone: Mapping[str, Any]) -> Dict[str, Tensor]:
    embed = _get(backbone, 'embed_dims', 768)
    return {'dpt.layernorm.weight': torch.ones(embed),
            'dpt.layernorm.bias': torch.zeros(embed)}


def _dinov2_config(backbone: Mapping[str, Any]) -> Dict[str, Any]:
    return dict(is_hybrid=False,
                backbone_config=dinov2_backbone_config_to_hf(backbone),
                neck_ignore_stages=[], backbone_featmap_shape=None)


def _dinov2_rules(backbone: Mapping[str, Any]) -> List[Rule]:
    return dinov2_backbone_rules_to_hf(backbone, 'backbone.')


def _dinov2_fills(backbone: Mapping[str, Any]) -> Dict[str, Tensor]:
    return {key: value for key, (value, _) in
            dinov2_backbone_unused_to_hf(backbone, 'backbone.').items()}


# Backbone type → its Transformers mapping (DPTForDepthEstimation or
# DPTForSemanticSegmentation; Depth Anything has its own exporter). BEiT and
# Swin V2 live in their own modules; DPT-DINOv2 reuses the DINOv2 encoder
# rules that Depth Anything's export shares.
MM2HF_FAMILIES: Dict[str, HFFamily] = {
    'DPTViT': HFFamily(_vit_config, _vit_rules, _vit_neck, _vit_fills),
    'DPTViTHybrid': HFFamily(_hybrid_config, _vit_rules, _vit_neck,
                             _vit_fills),
    'DPTBEiT': BEIT_FAMILY,
    'DPTSwinV2': SWINV2_FAMILY,
    # No DPT segmenter on DINOv2 in Transformers.
    'DPTDINOv2': HFFamily(_dinov2_config, _dinov2_rules,
                          token_neck_check('DINOv2'), _dinov2_fills,
                          tasks=('depth', ),
                          output_mode='depth'),
}


def _neck_config(neck: Mapping[str, Any]) -> Dict[str, Any]:
    if _type_name(neck) != 'DPTNeck':
        raise _refuse('neck.type', _type_name(neck), 'only DPTNeck exists')
    if not _get(neck, 'align_corners', True):
        raise _refuse('neck.align_corners', False,
                      'its fusion upsampling uses align_corners=True')
    if _get(neck, 'upsample_to_lateral', False):
        raise _refuse('neck.upsample_to_lateral', True,
                      'its fusion layers upsample ×2 (Depth Anything, '
                      'another class, upsamples to the next level)')
    norm = neck.get('fusion_norm_cfg')
    if norm is not None and norm.get('type') not in ('BN', 'SyncBN'):
        raise _refuse('neck.fusion_norm_cfg.type', norm.get('type'),
                      'the fusion residual units use BatchNorm or nothing')
    return dict(
        neck_hidden_sizes=list(_get(neck, 'reassemble_channels',
                                    (96, 192, 384, 768))),
        reassemble_factors=list(_get(neck, 'resample_factors',
                                     (4, 2, 1, 0.5))),
        readout_type=_get(neck, 'readout_type', 'project'),
        fusion_hidden_size=_get(neck, 'channels', 256),
        use_batch_norm_in_fusion_residual=norm is not None,
        use_bias_in_fusion_residual=neck.get('fusion_bias'),
    )


def _head_in_index(in_index: int, num_levels: int) -> int:
    # Ours lists fused maps finest first, Transformers deepest first; its
    # default -1 (the finest) is our 0.
    if not 0 <= in_index < num_levels:
        raise _refuse('decode_head.in_index', in_index,
                      f'{num_levels} fused maps')
    return -1 - in_index


def _depth_head_config(head: Mapping[str, Any], fusion: int,
                       num_levels: int, output_mode: str) -> Dict[str, Any]:
    if _type_name(head) != 'DPTDepthHead':
        raise _refuse('decode_head.type', _type_name(head),
                      'DPTForDepthEstimation has the DPT depth head only')
    mode = head.get('output_mode') or 'inverse_depth'
    if mode != output_mode:
        raise _refuse('decode_head.output_mode', mode,
                      f'its predicted_depth stands for {output_mode!r} in '
                      'the models of this backbone family')
    checks = [('depth_scale', 1.0),
              ('depth_shift', 0.0), ('min_depth', None), ('max_depth', None),
              ('channels', 32), ('mid_channels', fusion // 2),
              ('in_channels', fusion), ('align_corners', False),
              ('upsample_factor', 2.0)]
    for key, expected in checks:
        value = head.get(key, expected)
        if key == 'mid_channels' and value is None:
            value = expected
        if value != expected:
            raise _refuse(f'decode_head.{key}', value,
                          f'its depth head has {key}={expected!r} only')
    add_projection = bool(head.get('add_projection', False))
    if add_projection and fusion != 256:
        raise _refuse('decode_head.add_projection', True,
                      'its projection is 256 → 256 only')
    return dict(add_projection=add_projection,
                head_in_index=_head_in_index(head.get('in_index', 0),
                                             num_levels))


def _seg_head_config(model: Mapping[str, Any], fusion: int,
                     num_levels: int) -> Dict[str, Any]:
    head = model['decode_head']
    if _type_name(head) != 'DPTSegHead':
        raise _refuse('decode_head.type', _type_name(head),
                      'DPTForSemanticSegmentation has the DPT head only')
    for key, expected in (('channels', fusion), ('in_channels', fusion),
                          ('align_corners', False)):
        if head.get(key, expected) != expected:
            raise _refuse(f'decode_head.{key}', head.get(key),
                          f'its head has {key}={expected!r} only')
    cfg = dict(
        semantic_classifier_dropout=float(head.get('dropout_ratio', 0.1)),
        semantic_loss_ignore_index=int(head.get('ignore_index', 255)),
        head_in_index=_head_in_index(head.get('in_index', 0), num_levels),
        use_auxiliary_head=False)
    aux = model.get('auxiliary_head')
    if aux:
        if isinstance(aux, (list, tuple)):
            raise _refuse('auxiliary_head', f'{len(aux)} heads',
                          'it has at most one auxiliary head')
        expected = dict(type='DPTFCNHead', in_channels=fusion,
                        channels=fusion, in_index=0, num_convs=1,
                        kernel_size=3, concat_input=False, dropout_ratio=0.1)
        for key, want in expected.items():
            value = _type_name(aux) if key == 'type' else aux.get(key, want)
            if key == 'type' and value == 'FCNHead':
                continue  # same keys and forward
            if value != want:
                raise _refuse(
                    f'auxiliary_head.{key}', value,
                    f'DPTAuxiliaryHead has {key}={want!r} only (it reads '
                    'the finest fused map)')
        loss = aux.get('loss_decode') or {}
        cfg.update(use_auxiliary_head=True,
                   auxiliary_loss_weight=float(loss.get('loss_weight', 0.4)
                                               if isinstance(loss, Mapping)
                                               else 0.4))
    return cfg


def mm_config_to_hf_config(model_cfg: Mapping[str, Any],
                           dataset_meta: Optional[Mapping[str, Any]] = None,
                           source_config: Optional[Mapping[str, Any]] = None
                           ) -> Dict[str, Any]:
    """A Transformers ``config.json`` dict for a dpt_mm DPT model config.

    Args:
        model_cfg (Mapping): The ``model`` config (``DPTDepthEstimator``,
            ``DepthEstimator``, ``DPTEncoderDecoder`` or ``EncoderDecoder``
            with a DPT backbone,
            ``DPTNeck`` and DPT heads).
        dataset_meta (Mapping, optional): ``classes`` become ``id2label``.
        source_config (Mapping, optional): The ``config.json`` the model was
            converted from (hf2mm keeps it in the checkpoint's meta). Fields
            that a dpt_mm config does not hold (the hybrid's two placeholder
            out indices, label names, ``transformers_version``...) are taken
            from it; everything a dpt_mm config holds is written anew.

    Returns:
        dict: A ``config.json`` dict for ``DPTForDepthEstimation`` or
        ``DPTForSemanticSegmentation``.

    Raises:
        ValueError: A setting Transformers cannot express; the message
            names the config key.
    """
    if depth_anything.is_depth_anything_model(model_cfg):
        return depth_anything.depth_anything_config_to_hf(model_cfg,
                                                          source_config)
    model_cfg = copy.deepcopy(dict(model_cfg))
    backbone = model_cfg.get('backbone') or {}
    family = MM2HF_FAMILIES.get(_type_name(backbone))
    if family is None:
        raise _refuse('backbone.type', _type_name(backbone),
                      f'mm2hf knows {sorted(MM2HF_FAMILIES)}')
    head = model_cfg.get('decode_head') or {}
    seg = _type_name(head) != 'DPTDepthHead'
    kind = _type_name(model_cfg)
    task = 'seg' if seg else 'depth'
    if task not in family.tasks:
        raise _refuse('decode_head.type', _type_name(head),
                      f'Transformers takes a {_type_name(backbone)} '
                      f'encoder for {" and ".join(family.tasks)} only')
    if seg and kind not in ('EncoderDecoder', 'DPTEncoderDecoder') or \
            not seg and kind not in ('DepthEstimator', 'DPTDepthEstimator'):
        raise _refuse('type', kind, 'it has a depth estimator '
                      '(DPTDepthEstimator + DPTDepthHead) and a segmenter '
                      '(DPTEncoderDecoder + DPTSegHead)')
    if seg and (model_cfg.get('test_cfg') or {}).get(
            'resize_mode', 'bilinear') != 'bilinear':
        raise _refuse('test_cfg.resize_mode',
                      model_cfg['test_cfg']['resize_mode'],
                      'post_process_semantic_segmentation resizes '
                      'bilinearly')
    if model_cfg.get('neck') is None:
        raise _refuse('neck', None, 'DPT needs its neck')
    cfg = family.config(backbone)
    neck = _neck_config(model_cfg['neck'])
    family.check_neck(backbone, model_cfg['neck'])
    cfg.update(neck)
    fusion = neck['fusion_hidden_size']
    num_levels = len(neck['neck_hidden_sizes'])
    if seg:
        cfg.update(_seg_head_config(model_cfg, fusion, num_levels))
        classes = list((dataset_meta or {}).get('classes') or [])
        num_classes = head.get('num_classes')
        if len(classes) != num_classes:
            classes = [f'LABEL_{i}' for i in range(num_classes)]
        cfg['id2label'] = {str(i): c for i, c in enumerate(classes)}
        cfg['label2id'] = {c: i for i, c in enumerate(classes)}
        cfg['architectures'] = ['DPTForSemanticSegmentation']
    else:
        cfg.update(_depth_head_config(head, fusion, num_levels,
                                      family.output_mode))
        resize_mode = (model_cfg.get('test_cfg') or {}).get('resize_mode',
                                                            'bicubic')
        if resize_mode != 'bicubic':
            raise _refuse('test_cfg.resize_mode', resize_mode,
                          'post_process_depth_estimation resizes bicubically')
        cfg['architectures'] = ['DPTForDepthEstimation']
    cfg['model_type'] = 'dpt'
    for key, default in _DPT_DEFAULTS.items():
        cfg.setdefault(key, copy.deepcopy(default))
    if source_config is not None and _same_model(source_config, cfg):
        # Same network as the source: keep its file as it was (placeholder
        # indices, equivalent spellings, fields Transformers adds), with the
        # labels of this checkpoint.
        out = copy.deepcopy(dict(source_config))
        if seg:
            out.update(id2label=cfg['id2label'], label2id=cfg['label2id'])
        return out
    return cfg


def _same_model(source: Mapping[str, Any], built: Mapping[str, Any]) -> bool:
    """Whether two Transformers configs build the same dpt_mm network
    (class names aside: they come from the checkpoint)."""
    from .hf import hf_config_to_mm_config
    seg = 'DPTForSemanticSegmentation' in built['architectures']
    task = 'seg' if seg else 'depth'
    try:
        ours = hf_config_to_mm_config(source, task)
    except ValueError:
        return False
    theirs = hf_config_to_mm_config(built, task)
    if seg:
        if len(resolve_hf_config(source)['id2label']) != len(
                built['id2label']):
            return False
        for cfg in (ours, theirs):
            cfg['decode_head'].pop('num_classes')
            if cfg.get('auxiliary_head'):
                cfg['auxiliary_head'].pop('num_classes')
    return plain(ours) == plain(theirs)


def _neck_head_rules(num_levels: int, seg: bool) -> List[Rule]:
    rules = _neck_rules_to_hf(num_levels)
    if seg:
        rules += [
            Rule(r'decode_head\.conv\.conv\.weight', 'head.head.0.weight'),
            Rule(r'decode_head\.conv\.bn\.' + BN, r'head.head.1.\1'),
            Rule(r'decode_head\.conv_seg\.' + WB, r'head.head.4.\1'),
            Rule(r'auxiliary_head\.convs\.0\.conv\.weight',
                 'auxiliary_head.head.0.weight'),
            Rule(r'auxiliary_head\.convs\.0\.bn\.' + BN,
                 r'auxiliary_head.head.1.\1'),
            Rule(r'auxiliary_head\.conv_seg\.' + WB,
                 r'auxiliary_head.head.4.\1'),
        ]
    else:
        rules += [
            Rule(r'decode_head\.projection\.' + WB, r'head.projection.\1'),
            Rule(r'decode_head\.conv1\.' + WB, r'head.head.0.\1'),
            Rule(r'decode_head\.conv2\.' + WB, r'head.head.2.\1'),
            Rule(r'decode_head\.conv_seg\.' + WB, r'head.head.4.\1'),
        ]
    return rules


def mm_state_dict_to_hf(state_dict: Mapping[str, Tensor],
                        model_cfg: Mapping[str, Any],
                        unused: Optional[Mapping[str, Tensor]] = None
                        ) -> Conversion:
    """Rename dpt_mm weights into Transformers keys (pure function).

    Args:
        state_dict (Mapping[str, Tensor]): dpt_mm weights of ``model_cfg``.
        model_cfg (Mapping): The model config.
        unused (Mapping[str, Tensor], optional): Transformers tensors that
            dpt_mm does not keep (see :data:`HF_UNUSED_FILL`), as hf2mm
            saved them; without them they are filled.

    Returns:
        Conversion: Transformers state dict; ``filled`` lists tensors made
        without a source.
    """
    if depth_anything.is_depth_anything_model(model_cfg):
        return depth_anything.depth_anything_state_dict_to_hf(
            state_dict, model_cfg, unused)
    backbone = model_cfg['backbone']
    family = MM2HF_FAMILIES[_type_name(backbone)]
    seg = _type_name(model_cfg['decode_head']) != 'DPTDepthHead'
    num_levels = len(model_cfg['neck'].get('reassemble_channels',
                                           (96, 192, 384, 768)))
    rules = family.rules(backbone) + _neck_head_rules(num_levels, seg)
    result = apply_rules(split_fused_qkv(state_dict), rules,
                         'dpt_mm checkpoint')
    result.num_source = len(state_dict)
    fills = family.fills(backbone)
    fills.update(deepest_unit_fills(result.state_dict))
    why = 'not in dpt_mm (unused by the forward)'
    result.restore_or_fill({k: (v, why) for k, v in fills.items()}, unused)
    return result


def convert_mm_to_hf(state_dict: Mapping[str, Tensor],
                     model_cfg: Mapping[str, Any],
                     dataset_meta: Optional[Mapping[str, Any]] = None,
                     source_config: Optional[Mapping[str, Any]] = None,
                     unused: Optional[Mapping[str, Tensor]] = None):
    """Config and weights for Transformers, in one call.

    Args:
        state_dict (Mapping[str, Tensor]): dpt_mm weights.
        model_cfg (Mapping): The model config.
        dataset_meta (Mapping, optional): For segmentation labels.
        source_config (Mapping, optional): See
            :func:`mm_config_to_hf_config`.
        unused (Mapping[str, Tensor], optional): See
            :func:`mm_state_dict_to_hf`.

    Returns:
        tuple[dict, Conversion]: ``config.json`` dict and the weights.
    """
    hf_config = mm_config_to_hf_config(model_cfg, dataset_meta,
                                       source_config)
    return hf_config, mm_state_dict_to_hf(state_dict, model_cfg, unused)

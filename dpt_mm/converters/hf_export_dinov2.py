"""dpt_mm ``DPTDINOv2`` → Transformers ``Dinov2Backbone``: config, weights.

The reverse of the backbone half of :mod:`.hf_dinov2`, shared by the two
Transformers classes that put a DPT decoder on a DINOv2 encoder
(``DepthAnythingForDepthEstimation`` and ``DPTForDepthEstimation`` with a
``dinov2`` ``backbone_config``); both keep the encoder under ``backbone.``.

Weights are written in the spelling ``save_pretrained`` writes (and the Hub
files use): ``attention.attention.{query,key,value}``,
``attention.output.dense``, SwiGLU ``weights_in``/``weights_out``.
Transformers 5 renames them on load; the forward converter
(:func:`.hf_dinov2.fuse_split_projections`) reads either. The Transformers
config fields are typed strictly (``mlp_ratio`` an int,
``layerscale_value`` a float), so values they cannot hold are refused
rather than rounded.
"""
import re
from typing import Any, Dict, List, Mapping, Tuple

import torch
from torch import Tensor

from .common import Rule, WB
from .hf_dinov2 import _ORDER
from .hf_export_family import cfg_get as _get
from .hf_export_family import hf_stages, refuse, square_size
from .hf_export_family import type_name as _type_name

__all__ = [
    'dinov2_backbone_config_to_hf', 'dinov2_backbone_rules_to_hf',
    'dinov2_backbone_unused_to_hf', 'split_fused_qkv'
]

#: Block prefix of our encoder, with the block index as group 1.
MM_LAYER = r'backbone\.layers\.(\d+)\.'
# Query, key, value in the order they are stacked in the fused qkv.
_QKV_NAMES = sorted(('query', 'key', 'value'), key=_ORDER.__getitem__)


def _refuse(key: str, value: Any, why: str) -> ValueError:
    return refuse(key, value, why, 'DINOv2')


def _square(value: Any, key: str, why: str) -> int:
    return square_size(value, key, why, 'DINOv2')


def dinov2_backbone_config_to_hf(backbone_cfg: Mapping[str, Any]
                                 ) -> Dict[str, Any]:
    """A ``Dinov2Config`` (or ``Dinov2WithRegistersConfig``) dict.

    The inverse of the backbone part of
    :func:`.hf_dinov2.dinov2_family_to_mm_config`. Training-only options
    (``drop_path_rate``, ``with_cp``, ``frozen_stages``, ``init_cfg``) are not
    written: Transformers' stochastic depth is not dpt_mm's linear ramp.

    Args:
        backbone_cfg (Mapping): A ``DPTDINOv2`` config.

    Returns:
        dict: ``backbone_config`` for ``config.json`` (``model_type``
        ``'dinov2'``, or ``'dinov2_with_registers'`` with registers or
        antialiased position resizing), ``out_indices``/``out_features``
        naming stages (block k + 1), ``reshape_hidden_states=False``.

    Raises:
        ValueError: A setting the Transformers DINOv2 lacks; the message
            names the config key (``backbone.*``).
    """
    if _type_name(backbone_cfg) != 'DPTDINOv2':
        raise _refuse('backbone.type', _type_name(backbone_cfg),
                      'only DPTDINOv2 maps onto Dinov2Backbone')
    patch = _get(backbone_cfg, 'patch_size', 14)
    img_size = _square(
        _get(backbone_cfg, 'img_size', 518), 'backbone.img_size',
        'Transformers reshapes the position table to a square grid '
        '(sqrt of its length); use a square img_size')
    if img_size % patch:
        raise _refuse('backbone.img_size', img_size,
                      f'not a multiple of patch_size {patch}')
    offset = float(_get(backbone_cfg, 'pos_embed_interp_offset', 0.0))
    if offset:
        raise _refuse(
            'backbone.pos_embed_interp_offset', offset,
            'Transformers resizes the position embeddings to the target '
            'grid (offset 0, what hf2mm writes); the release offset 0.1 '
            'samples them slightly differently at other input sizes. Set '
            'pos_embed_interp_offset=0 (and check the model at that '
            'setting) to export')
    registers = int(_get(backbone_cfg, 'num_register_tokens', 0))
    antialias = bool(_get(backbone_cfg, 'pos_embed_antialias', False))
    if registers and not antialias:
        raise _refuse('backbone.pos_embed_antialias', False,
                      'Dinov2WithRegisters resizes its position embeddings '
                      'with antialiasing')
    mlp_ratio = float(_get(backbone_cfg, 'mlp_ratio', 4.0))
    if mlp_ratio != int(mlp_ratio):
        raise _refuse('backbone.mlp_ratio', mlp_ratio,
                      'Dinov2Config.mlp_ratio is an integer')
    ffn = _get(backbone_cfg, 'ffn_type', 'mlp')
    if ffn not in ('mlp', 'swiglu'):
        raise _refuse('backbone.ffn_type', ffn, "'mlp' or 'swiglu' only")
    num_layers = _get(backbone_cfg, 'num_layers', 12)
    out_features, stages = hf_stages(
        _get(backbone_cfg, 'out_indices', (8, 9, 10, 11)), num_layers)
    cfg = dict(
        model_type='dinov2_with_registers' if antialias else 'dinov2',
        hidden_size=_get(backbone_cfg, 'embed_dims', 384),
        num_hidden_layers=num_layers,
        num_attention_heads=_get(backbone_cfg, 'num_heads', 6),
        mlp_ratio=int(mlp_ratio),
        hidden_act='gelu',
        hidden_dropout_prob=float(_get(backbone_cfg, 'drop_rate', 0.0)),
        attention_probs_dropout_prob=float(
            _get(backbone_cfg, 'attn_drop_rate', 0.0)),
        layer_norm_eps=float(_get(backbone_cfg, 'norm_eps', 1e-6)),
        image_size=img_size,
        patch_size=patch,
        num_channels=_get(backbone_cfg, 'in_channels', 3),
        qkv_bias=bool(_get(backbone_cfg, 'qkv_bias', True)),
        layerscale_value=float(_get(backbone_cfg, 'layer_scale_init', 1.0)),
        use_swiglu_ffn=ffn == 'swiglu',
        apply_layernorm=bool(_get(backbone_cfg, 'norm_outputs', True)),
        # Both DPT-style necks read token sequences, not maps.
        reshape_hidden_states=False,
        out_features=out_features,
        out_indices=stages)
    if antialias:
        cfg['num_register_tokens'] = registers
    else:
        cfg['use_mask_token'] = True
    return cfg


def split_fused_qkv(state_dict: Mapping[str, Tensor],
                    layer: str = MM_LAYER) -> Dict[str, Tensor]:
    """Split every ``attn.qkv`` into ``attn.{query,key,value}``.

    The inverse of the attention half of
    :func:`.hf_dinov2.fuse_split_projections`. The SwiGLU ``mlp.fc1`` stays
    fused: the saved layout (``weights_in``) holds it fused as well.

    Args:
        state_dict (Mapping[str, Tensor]): dpt_mm weights.
        layer (str): Regex of a block prefix with the index as group 1.

    Returns:
        dict[str, Tensor]: The same weights, each fused qkv replaced by
        its three parts (clones, so they save as separate tensors).
    """
    regex = re.compile(layer + r'attn\.qkv\.' + WB)
    out = {}
    for key, value in state_dict.items():
        m = regex.fullmatch(key)
        if m is None:
            out[key] = value
            continue
        attn = key.rsplit('qkv.', 1)[0]
        for name, part in zip(_QKV_NAMES, value.chunk(3)):
            out[f'{attn}{name}.{m[2]}'] = part.clone()
    return out


def dinov2_backbone_rules_to_hf(backbone_cfg: Mapping[str, Any],
                                hf_prefix: str = 'backbone.') -> List[Rule]:
    """Rules renaming our ``backbone.*`` keys into Transformers keys.

    The inverse of :func:`.hf_dinov2.dinov2_backbone_rules`, applied after
    :func:`split_fused_qkv`.

    Args:
        backbone_cfg (Mapping): The ``DPTDINOv2`` config (``ffn_type``
            decides the MLP names).
        hf_prefix (str): Transformers prefix of the encoder
            (``'backbone.'`` in both DINOv2-based models).

    Returns:
        list[Rule]: One rule per parameter group of the encoder.
    """
    emb = hf_prefix + 'embeddings.'
    enc = hf_prefix + r'encoder.layer.\1.'
    swiglu = _get(backbone_cfg, 'ffn_type', 'mlp') == 'swiglu'
    return [
        Rule(r'backbone\.cls_token', emb + 'cls_token'),
        Rule(r'backbone\.pos_embed', emb + 'position_embeddings'),
        Rule(r'backbone\.register_tokens', emb + 'register_tokens'),
        Rule(r'backbone\.patch_embed\.proj\.' + WB,
             emb + r'patch_embeddings.projection.\1'),
        Rule(MM_LAYER + r'(norm[12])\.' + WB, enc + r'\2.\3'),
        Rule(MM_LAYER + r'attn\.(query|key|value)\.' + WB,
             enc + r'attention.attention.\2.\3'),
        Rule(MM_LAYER + r'attn\.proj\.' + WB,
             enc + r'attention.output.dense.\2'),
        Rule(MM_LAYER + r'ls([12])\.gamma', enc + r'layer_scale\2.lambda1'),
        Rule(MM_LAYER + r'mlp\.fc1\.' + WB,
             enc + (r'mlp.weights_in.\2' if swiglu else r'mlp.fc1.\2')),
        Rule(MM_LAYER + r'mlp\.fc2\.' + WB,
             enc + (r'mlp.weights_out.\2' if swiglu else r'mlp.fc2.\2')),
        Rule(r'backbone\.norm\.' + WB, hf_prefix + r'layernorm.\1'),
    ]


def dinov2_backbone_unused_to_hf(backbone_cfg: Mapping[str, Any],
                                 hf_prefix: str = 'backbone.'
                                 ) -> Dict[str, Tuple[Tensor, str]]:
    """Transformers encoder tensors that dpt_mm does not keep.

    hf2mm drops them (they do not change a depth prediction) and saves them
    as ``hf_unused``; an export restores them from there, else fills them
    as returned here.

    Args:
        backbone_cfg (Mapping): The ``DPTDINOv2`` config.
        hf_prefix (str): Transformers prefix of the encoder.

    Returns:
        dict[str, tuple[Tensor, str]]: Key → (filler tensor, why it is
        not in dpt_mm).
    """
    embed = _get(backbone_cfg, 'embed_dims', 384)
    out = {hf_prefix + 'embeddings.mask_token': (
        torch.zeros(1, embed), 'zeros (mask token: masked-image pretraining '
        'only)')}
    if not _get(backbone_cfg, 'norm_outputs', True):
        out[hf_prefix + 'layernorm.weight'] = (
            torch.ones(embed), 'ones (final LayerNorm: apply_layernorm=False)')
        out[hf_prefix + 'layernorm.bias'] = (
            torch.zeros(embed), 'zeros (final LayerNorm: '
            'apply_layernorm=False)')
    return out

"""dpt_mm :class:`DPTBEiT` → Transformers DPT with a BEiT
``backbone_config`` (``DPTForDepthEstimation``): the reverse of
:mod:`.hf_beit`.

Ours fuses q/k/v into one ``attn.qkv`` weight with separate query and
value biases; Transformers' BEiT has ``query`` (with bias), ``key``
(without) and ``value`` (with bias). The split weights arrive here as
``backbone.layers.N.attn.{query,key,value}.weight`` (see
:mod:`.hf_export`), written in the file layout that ``save_pretrained``
uses (``backbone.encoder.layer.N.attention.attention.query``...).
"""
from typing import Any, Dict, List, Mapping

from .common import Rule, WB
from .hf_beit import BEIT_DEFAULTS
from .hf_export_family import (HFFamily, cfg_get, hf_stages, refuse,
                               square_size, token_neck_check)

__all__ = ['BEIT_FAMILY', 'beit_hf_config', 'beit_hf_rules']

_LAYER = r'backbone\.layers\.(\d+)\.'
_HF_LAYER = r'backbone.encoder.layer.\1.'


def beit_hf_config(backbone: Mapping[str, Any]) -> Dict[str, Any]:
    """``DPTConfig`` fields for a :class:`DPTBEiT` config.

    Args:
        backbone (Mapping): The ``DPTBEiT`` config (defaults as the class).

    Returns:
        dict: ``backbone_config`` (a ``BeitConfig`` dict) and the DPT
        fields of a separate backbone.

    Raises:
        ValueError: A setting Transformers' BEiT lacks, naming the key.
    """
    if not cfg_get(backbone, 'qkv_bias', True):
        raise refuse('backbone.qkv_bias', False,
                     "BEiT's query and value projections always have biases")
    embed = cfg_get(backbone, 'embed_dims', 768)
    mlp_ratio = cfg_get(backbone, 'mlp_ratio', 4.0)
    if embed * mlp_ratio != int(embed * mlp_ratio):
        raise refuse('backbone.mlp_ratio', mlp_ratio,
                     'intermediate_size is a whole number of channels')
    num_layers = cfg_get(backbone, 'num_layers', 12)
    features, indices = hf_stages(
        cfg_get(backbone, 'out_indices', (2, 5, 8, 11)), num_layers)
    beit = dict(
        BEIT_DEFAULTS,
        model_type='beit',
        hidden_size=embed,
        num_hidden_layers=num_layers,
        num_attention_heads=cfg_get(backbone, 'num_heads', 12),
        intermediate_size=int(embed * mlp_ratio),
        hidden_dropout_prob=float(cfg_get(backbone, 'drop_rate', 0.0)),
        attention_probs_dropout_prob=float(
            cfg_get(backbone, 'attn_drop_rate', 0.0)),
        drop_path_rate=float(cfg_get(backbone, 'drop_path_rate', 0.0)),
        layer_norm_eps=float(cfg_get(backbone, 'norm_eps', 1e-6)),
        image_size=square_size(cfg_get(backbone, 'img_size', 384),
                               'backbone.img_size'),
        patch_size=cfg_get(backbone, 'patch_size', 16),
        num_channels=cfg_get(backbone, 'in_channels', 3),
        layer_scale_init_value=float(
            cfg_get(backbone, 'layer_scale_init', 0.1)),
        use_relative_position_bias=bool(
            cfg_get(backbone, 'use_rel_pos_bias', True)),
        use_shared_relative_position_bias=bool(
            cfg_get(backbone, 'use_shared_rel_pos_bias', False)),
        use_absolute_position_embeddings=bool(
            cfg_get(backbone, 'use_abs_pos_embed', False)),
        # DPT reads the unreshaped tokens, class token included.
        reshape_hidden_states=False,
        out_features=features,
        out_indices=indices)
    return dict(is_hybrid=False, backbone_config=beit,
                neck_ignore_stages=[], backbone_featmap_shape=None)


def beit_hf_rules(backbone: Mapping[str, Any]) -> List[Rule]:
    """Rules renaming :class:`DPTBEiT` keys into Transformers' file layout
    (the inverse of :func:`.hf_beit.beit_rules`)."""
    attn = _HF_LAYER + 'attention.attention.'
    return [
        Rule(r'backbone\.cls_token', 'backbone.embeddings.cls_token'),
        Rule(r'backbone\.pos_embed',
             'backbone.embeddings.position_embeddings'),
        Rule(r'backbone\.patch_embed\.proj\.' + WB,
             r'backbone.embeddings.patch_embeddings.projection.\1'),
        Rule(_LAYER + r'gamma_([12])', _HF_LAYER + r'lambda_\2'),
        Rule(_LAYER + r'attn\.(query|key|value)\.weight',
             attn + r'\2.weight'),
        Rule(_LAYER + r'attn\.q_bias', attn + 'query.bias'),
        Rule(_LAYER + r'attn\.v_bias', attn + 'value.bias'),
        Rule(_LAYER + r'attn\.rel_pos_bias\.relative_position_bias_table',
             attn + 'relative_position_bias.relative_position_bias_table'),
        Rule(_LAYER + r'attn\.proj\.' + WB,
             _HF_LAYER + r'attention.output.dense.\2'),
        Rule(_LAYER + r'norm1\.' + WB, _HF_LAYER + r'layernorm_before.\2'),
        Rule(_LAYER + r'norm2\.' + WB, _HF_LAYER + r'layernorm_after.\2'),
        Rule(_LAYER + r'mlp\.fc1\.' + WB,
             _HF_LAYER + r'intermediate.dense.\2'),
        Rule(_LAYER + r'mlp\.fc2\.' + WB, _HF_LAYER + r'output.dense.\2'),
        Rule(r'backbone\.rel_pos_bias\.relative_position_bias_table',
             # Transformers 5.24 saves the shared table under beit.
             'backbone.beit.encoder.relative_position_bias.'
             'relative_position_bias_table'),
    ]


# BEiT has no DPT segmenter in Transformers (DPTForSemanticSegmentation
# builds a ViT).
BEIT_FAMILY = HFFamily(beit_hf_config, beit_hf_rules,
                       token_neck_check('BEiT'),
                       tasks=('depth', ))

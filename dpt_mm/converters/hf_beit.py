"""Transformers DPT with a BEiT backbone (``Intel/dpt-beit-large-512``,
``-large-384``, ``-base-384``; MiDaS v3.1) → :class:`DPTBEiT` config and
weights. Transformers' names appear only here, in both layouts: the files
(the Hub's and ``save_pretrained``'s: ``backbone.encoder.layer.N.attention.
attention.query``...) and the 5.x modules' own state dict
(``backbone.beit.layers.N.attention.q_proj``...).
"""
from typing import Any, Dict, List, Mapping, Tuple

from torch import Tensor

from .common import Drop, Rule, WB
from .hf_backbone import complete_backbone_config, fuse_qkv, stage_indices

__all__ = ['BEIT_DEFAULTS', 'backbone_rules', 'beit_rules',
           'fuse_backbone_qkv', 'fuse_beit_qkv', 'mm_backbone',
           'resolve_backbone_config']

# BeitConfig 5.24 defaults.
BEIT_DEFAULTS: Dict[str, Any] = dict(
    hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
    intermediate_size=3072, hidden_act='gelu', hidden_dropout_prob=0.0,
    attention_probs_dropout_prob=0.0, layer_norm_eps=1e-12, image_size=224,
    patch_size=16, num_channels=3, use_mask_token=False,
    use_absolute_position_embeddings=False, use_relative_position_bias=False,
    use_shared_relative_position_bias=False, layer_scale_init_value=0.1,
    use_mean_pooling=True, out_features=None, out_indices=None,
    reshape_hidden_states=True, add_fpn=False)

# Module layout | file layout.
_LAYER = r'backbone\.(?:beit\.layers|encoder\.layer)\.(\d+)\.'


def resolve_backbone_config(raw: Any) -> Dict[str, Any]:
    """The BEiT ``backbone_config`` completed with Transformers' defaults.
    """
    return complete_backbone_config(raw, BEIT_DEFAULTS, 'beit')


def mm_backbone(cfg: Mapping[str, Any]
                ) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """Our backbone config and the neck settings it implies.

    Args:
        cfg (Mapping): Resolved DPT config whose ``backbone_config`` is a
            resolved BEiT config.

    Returns:
        tuple[dict, dict]: ``DPTBEiT`` config; neck keys (``in_channels``).
    """
    beit = cfg['backbone_config']
    wrong = {k: beit[k] for k, v in dict(reshape_hidden_states=False,
                                         add_fpn=False,
                                         hidden_act='gelu').items()
             if beit[k] != v}
    if wrong:
        raise ValueError(f'unsupported BEiT backbone settings {wrong}: DPT '
                         'reads unreshaped tokens (reshape_hidden_states='
                         'False), no FPN, exact GELU')
    hidden = beit['hidden_size']
    if int(hidden * (beit['intermediate_size'] / hidden)) != \
            beit['intermediate_size']:
        raise ValueError('BEiT intermediate_size is not representable as '
                         'an MLP ratio')
    image_size = beit['image_size']
    if isinstance(image_size, (list, tuple)):
        if image_size[0] != image_size[1]:
            raise ValueError(f'non-square BEiT image_size {image_size} is '
                             'not supported')
        image_size = image_size[0]
    stages = stage_indices(beit, beit['num_hidden_layers'])
    backbone = dict(
        type='DPTBEiT',
        img_size=image_size,
        patch_size=beit['patch_size'],
        in_channels=beit['num_channels'],
        embed_dims=hidden,
        num_layers=beit['num_hidden_layers'],
        num_heads=beit['num_attention_heads'],
        mlp_ratio=beit['intermediate_size'] / hidden,
        qkv_bias=True,
        norm_eps=beit['layer_norm_eps'],
        layer_scale_init=float(beit['layer_scale_init_value']),
        use_rel_pos_bias=beit['use_relative_position_bias'],
        use_shared_rel_pos_bias=beit['use_shared_relative_position_bias'],
        use_abs_pos_embed=beit['use_absolute_position_embeddings'],
        # stageK is the output of block K (1-based).
        out_indices=tuple(s - 1 for s in stages),
        drop_rate=beit['hidden_dropout_prob'],
        attn_drop_rate=beit['attention_probs_dropout_prob'])
    return backbone, dict(in_channels=hidden)


def beit_rules() -> List[Rule]:
    """Renaming rules of the BEiT part of a Transformers DPT state dict."""
    emb = r'backbone\.(?:beit\.)?embeddings\.'
    return [
        Rule(emb + r'cls_token', 'backbone.cls_token'),
        Rule(emb + r'position_embeddings', 'backbone.pos_embed'),
        Rule(emb + r'patch_embeddings\.projection\.' + WB,
             r'backbone.patch_embed.proj.\1'),
        Rule(emb + r'mask_token',
             Drop('mask token of masked image modelling: unused by DPT')),
        Rule(_LAYER + r'lambda_([12])', r'backbone.layers.\1.gamma_\2'),
        Rule(_LAYER + r'attention\.(?:q_proj|attention\.query)\.bias',
             r'backbone.layers.\1.attn.q_bias'),
        Rule(_LAYER + r'attention\.(?:v_proj|attention\.value)\.bias',
             r'backbone.layers.\1.attn.v_bias'),
        Rule(_LAYER + r'attention\.(?:o_proj|output\.dense)\.' + WB,
             r'backbone.layers.\1.attn.proj.\2'),
        Rule(_LAYER + r'layernorm_before\.' + WB,
             r'backbone.layers.\1.norm1.\2'),
        Rule(_LAYER + r'layernorm_after\.' + WB,
             r'backbone.layers.\1.norm2.\2'),
        Rule(_LAYER + r'mlp\.(fc[12])\.' + WB,
             r'backbone.layers.\1.mlp.\2.\3'),
        Rule(_LAYER + r'intermediate\.dense\.' + WB,
             r'backbone.layers.\1.mlp.fc1.\2'),
        Rule(_LAYER + r'output\.dense\.' + WB,
             r'backbone.layers.\1.mlp.fc2.\2'),
        Rule(_LAYER + r'(?:attention\.attention\.)?relative_position_bias\.'
             r'relative_position_bias_table',
             r'backbone.layers.\1.attn.rel_pos_bias.'
             'relative_position_bias_table'),
        Rule(r'backbone\.(?:beit\.shared_position_bias|'
             r'(?:beit\.)?encoder\.relative_position_bias)\.'
             r'relative_position_bias_table',
             'backbone.rel_pos_bias.relative_position_bias_table'),
        Rule(r'backbone\.(?:beit\.)?layernorm\.' + WB,
             Drop('final LayerNorm: DPT reads hooked blocks, never the '
                  'normed last output')),
    ]


def fuse_beit_qkv(state_dict: Mapping[str, Tensor]
                  ) -> Tuple[Dict[str, Tensor], Dict[str, Tensor]]:
    """Split off Transformers' q/k/v weights, fused into ``attn.qkv``."""
    return fuse_qkv(state_dict,
                    _LAYER + r'attention\.(?:attention\.)?(q|k|v|query|key|'
                    r'value)(?:_proj)?\.weight', ('q', 'k', 'v'),
                    lambda m: f'backbone.layers.{m[1]}.attn.qkv.weight')


def backbone_rules(cfg: Mapping[str, Any]) -> List[Rule]:
    """The family interface of :mod:`.hf_backbone`: :func:`beit_rules`."""
    return beit_rules()


def fuse_backbone_qkv(state_dict: Mapping[str, Tensor],
                      cfg: Mapping[str, Any]
                      ) -> Tuple[Dict[str, Tensor], Dict[str, Tensor]]:
    """The family interface of :mod:`.hf_backbone`: :func:`fuse_beit_qkv`.
    """
    return fuse_beit_qkv(state_dict)

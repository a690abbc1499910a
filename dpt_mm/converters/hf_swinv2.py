"""Transformers DPT with a Swin V2 backbone (``Intel/dpt-swinv2-large-384``,
``-base-384``, ``-tiny-256``; MiDaS v3.1) → :class:`DPTSwinV2` config and
weights. Transformers numbers blocks per stage
(``backbone.encoder.layers.S.blocks.J``); ours run through all stages
(``backbone.layers.N``). Transformers' names appear only here.
"""
from typing import Any, Dict, List, Mapping, Sequence, Tuple

from torch import Tensor

from .common import Rule, WB
from .hf_backbone import complete_backbone_config, fuse_qkv, stage_indices

__all__ = ['SWINV2_DEFAULTS', 'backbone_rules', 'fuse_backbone_qkv',
           'fuse_swinv2_qkv', 'mm_backbone', 'resolve_backbone_config',
           'swinv2_rules']

# Swinv2Config 5.24 defaults.
SWINV2_DEFAULTS: Dict[str, Any] = dict(
    image_size=224, patch_size=4, num_channels=3, embed_dim=96,
    depths=[2, 2, 6, 2], num_heads=[3, 6, 12, 24], window_size=7,
    pretrained_window_sizes=[0, 0, 0, 0], mlp_ratio=4.0, qkv_bias=True,
    hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
    hidden_act='gelu', use_absolute_embeddings=False, layer_norm_eps=1e-5,
    out_features=None, out_indices=None)

_BLOCK = r'backbone\.encoder\.layers\.(\d+)\.blocks\.(\d+)\.'


def resolve_backbone_config(raw: Any) -> Dict[str, Any]:
    """The Swin V2 ``backbone_config`` completed with Transformers'
    defaults."""
    return complete_backbone_config(raw, SWINV2_DEFAULTS, 'swinv2')


def _square(value: Any, name: str) -> int:
    if isinstance(value, (list, tuple)):
        if value[0] != value[1]:
            raise ValueError(f'non-square Swin V2 {name} {value} is not '
                             'supported')
        return int(value[0])
    return int(value)


def mm_backbone(cfg: Mapping[str, Any]
                ) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """Our backbone config and the neck settings it implies.

    Transformers' ``DPTNeck`` has no reassemble stage for Swin V2: the stage
    maps go straight to the 3×3 ``neck.convs``. Ours passes every level
    through (``passthrough_indices``), which requires ``neck_hidden_sizes``
    to equal the stage widths, as Transformers' convs do.

    Args:
        cfg (Mapping): Resolved DPT config with a resolved Swin V2
            ``backbone_config``.

    Returns:
        tuple[dict, dict]: ``DPTSwinV2`` config; neck keys.
    """
    swin = cfg['backbone_config']
    if swin['hidden_act'] != 'gelu' or swin['use_absolute_embeddings']:
        raise ValueError(
            'unsupported Swin V2 settings: dpt_mm implements exact GELU and '
            'no absolute position embeddings (as in MiDaS v3.1), got '
            f"hidden_act={swin['hidden_act']!r}, use_absolute_embeddings="
            f"{swin['use_absolute_embeddings']}")
    depths = list(swin['depths'])
    stages = [s - 1 for s in stage_indices(swin, len(depths))]
    widths = [swin['embed_dim'] * 2**s for s in stages]
    if list(cfg['neck_hidden_sizes']) != widths:
        raise ValueError(
            f"neck_hidden_sizes={cfg['neck_hidden_sizes']} must equal the "
            f'hooked Swin V2 stage widths {widths} (no reassemble stage)')
    backbone = dict(
        type='DPTSwinV2',
        img_size=_square(swin['image_size'], 'image_size'),
        patch_size=_square(swin['patch_size'], 'patch_size'),
        in_channels=swin['num_channels'],
        embed_dims=swin['embed_dim'],
        depths=tuple(depths),
        num_heads=tuple(swin['num_heads']),
        window_size=int(swin['window_size']),
        pretrained_window_sizes=tuple(swin['pretrained_window_sizes']),
        mlp_ratio=float(swin['mlp_ratio']),
        qkv_bias=bool(swin['qkv_bias']),
        norm_eps=swin['layer_norm_eps'],
        out_indices=tuple(stages),
        drop_rate=swin['hidden_dropout_prob'],
        attn_drop_rate=swin['attention_probs_dropout_prob'])
    return backbone, dict(in_channels=widths,
                          passthrough_indices=tuple(range(len(widths))))


def _global_block(depths: Sequence[int]):
    def index(m) -> int:
        return sum(depths[:int(m[1])]) + int(m[2])
    return index


def swinv2_rules(depths: Sequence[int]) -> List[Rule]:
    """Renaming rules of the Swin V2 part of a Transformers DPT state dict.

    Args:
        depths (Sequence[int]): Blocks per stage.
    """
    block = _global_block(depths)

    def to(suffix: str):
        return lambda m: (f'backbone.layers.{block(m)}.' +
                          m.expand(suffix.replace('$', '\\')))

    attn = _BLOCK + r'attention\.'
    return [
        Rule(r'backbone\.embeddings\.patch_embeddings\.projection\.' + WB,
             r'backbone.patch_embed.proj.\1'),
        Rule(r'backbone\.embeddings\.norm\.' + WB,
             r'backbone.patch_embed.norm.\1'),
        Rule(attn + r'self\.logit_scale', to('attn.logit_scale')),
        Rule(attn + r'self\.continuous_position_bias_mlp\.([02])\.' + WB,
             to('attn.cpb_mlp.$3.$4')),
        Rule(attn + r'self\.query\.bias', to('attn.q_bias')),
        Rule(attn + r'self\.value\.bias', to('attn.v_bias')),
        Rule(attn + r'output\.dense\.' + WB, to('attn.proj.$3')),
        Rule(_BLOCK + r'layernorm_before\.' + WB, to('norm1.$3')),
        Rule(_BLOCK + r'layernorm_after\.' + WB, to('norm2.$3')),
        Rule(_BLOCK + r'intermediate\.dense\.' + WB, to('mlp.fc1.$3')),
        Rule(_BLOCK + r'output\.dense\.' + WB, to('mlp.fc2.$3')),
        Rule(r'backbone\.encoder\.layers\.(\d+)\.downsample\.'
             r'(reduction\.weight|norm\.weight|norm\.bias)',
             r'backbone.downsamples.\1.\2'),
    ]


def fuse_swinv2_qkv(state_dict: Mapping[str, Tensor],
                    depths: Sequence[int]
                    ) -> Tuple[Dict[str, Tensor], Dict[str, Tensor]]:
    """Split off Transformers' query/key/value weights, fused into
    ``attn.qkv``."""
    block = _global_block(depths)
    return fuse_qkv(
        state_dict, _BLOCK + r'attention\.self\.(query|key|value)\.weight',
        ('q', 'k', 'v'),
        lambda m: f'backbone.layers.{block(m)}.attn.qkv.weight')


def backbone_rules(cfg: Mapping[str, Any]) -> List[Rule]:
    """The family interface of :mod:`.hf_backbone`: :func:`swinv2_rules`.
    """
    return swinv2_rules(cfg['backbone_config']['depths'])


def fuse_backbone_qkv(state_dict: Mapping[str, Tensor],
                      cfg: Mapping[str, Any]
                      ) -> Tuple[Dict[str, Tensor], Dict[str, Tensor]]:
    """The family interface of :mod:`.hf_backbone`:
    :func:`fuse_swinv2_qkv`."""
    return fuse_swinv2_qkv(state_dict, cfg['backbone_config']['depths'])

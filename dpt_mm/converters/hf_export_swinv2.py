"""dpt_mm :class:`DPTSwinV2` → Transformers DPT with a Swin V2
``backbone_config`` (``DPTForDepthEstimation``): the reverse of
:mod:`.hf_swinv2`.

Ours numbers blocks through all stages (``backbone.layers.N``),
Transformers per stage (``backbone.encoder.layers.S.blocks.J``). The fused
qkv weight arrives split as ``backbone.layers.N.attn.{query,key,value}.
weight`` (see :mod:`.hf_export`); query and value carry the biases, the key
none, in both.
"""
from typing import Any, Dict, List, Mapping, Sequence

from .common import Rule, WB
from .hf_export_family import (HFFamily, cfg_get, hf_stages, refuse,
                               square_size)
from .hf_swinv2 import SWINV2_DEFAULTS

__all__ = ['SWINV2_FAMILY', 'swinv2_hf_config', 'swinv2_hf_rules']

_LAYER = r'backbone\.layers\.(\d+)\.'
# DPTSwinV2 defaults (MiDaS v3.1 Swin2-L 384).
_DEPTHS = (2, 2, 18, 2)
_EMBED = 192


def _widths(backbone: Mapping[str, Any]) -> List[int]:
    embed = cfg_get(backbone, 'embed_dims', _EMBED)
    stages = cfg_get(backbone, 'out_indices', (0, 1, 2, 3))
    return [embed * 2**int(s) for s in stages]


def swinv2_hf_config(backbone: Mapping[str, Any]) -> Dict[str, Any]:
    """``DPTConfig`` fields for a :class:`DPTSwinV2` config.

    Args:
        backbone (Mapping): The ``DPTSwinV2`` config (defaults as the
            class).

    Returns:
        dict: ``backbone_config`` (a ``Swinv2Config`` dict) and the DPT
        fields of a separate backbone.

    Raises:
        ValueError: A setting Transformers' Swin V2 lacks, naming the key.
    """
    depths = list(cfg_get(backbone, 'depths', _DEPTHS))
    features, indices = hf_stages(
        cfg_get(backbone, 'out_indices', (0, 1, 2, 3)), len(depths))
    swin = dict(
        SWINV2_DEFAULTS,
        model_type='swinv2',
        image_size=square_size(cfg_get(backbone, 'img_size', 384),
                               'backbone.img_size'),
        patch_size=square_size(cfg_get(backbone, 'patch_size', 4),
                               'backbone.patch_size'),
        num_channels=cfg_get(backbone, 'in_channels', 3),
        embed_dim=cfg_get(backbone, 'embed_dims', _EMBED),
        depths=depths,
        num_heads=list(cfg_get(backbone, 'num_heads', (6, 12, 24, 48))),
        window_size=int(cfg_get(backbone, 'window_size', 24)),
        pretrained_window_sizes=list(cfg_get(
            backbone, 'pretrained_window_sizes', (12, 12, 12, 6))),
        mlp_ratio=float(cfg_get(backbone, 'mlp_ratio', 4.0)),
        qkv_bias=bool(cfg_get(backbone, 'qkv_bias', True)),
        layer_norm_eps=float(cfg_get(backbone, 'norm_eps', 1e-5)),
        hidden_dropout_prob=float(cfg_get(backbone, 'drop_rate', 0.0)),
        attention_probs_dropout_prob=float(
            cfg_get(backbone, 'attn_drop_rate', 0.0)),
        drop_path_rate=float(cfg_get(backbone, 'drop_path_rate', 0.0)),
        out_features=features,
        out_indices=indices)
    return dict(is_hybrid=False, backbone_config=swin,
                neck_ignore_stages=[], backbone_featmap_shape=None)


def _stage_block(depths: Sequence[int]):
    """Our block index → Transformers' ``layers.S.blocks.J``."""
    starts = [sum(depths[:s]) for s in range(len(depths))]

    def name(index: int) -> str:
        stage = max(s for s, start in enumerate(starts) if start <= index)
        return f'layers.{stage}.blocks.{index - starts[stage]}'
    return name


def swinv2_hf_rules(backbone: Mapping[str, Any]) -> List[Rule]:
    """Rules renaming :class:`DPTSwinV2` keys into Transformers' layout
    (the inverse of :func:`.hf_swinv2.swinv2_rules`)."""
    block = _stage_block(list(cfg_get(backbone, 'depths', _DEPTHS)))

    def to(suffix: str):
        # suffix may refer to the pattern's groups after the block index.
        return lambda m: (f'backbone.encoder.{block(int(m[1]))}.' +
                          m.expand(suffix.replace('$', '\\')))

    return [
        Rule(r'backbone\.patch_embed\.proj\.' + WB,
             r'backbone.embeddings.patch_embeddings.projection.\1'),
        Rule(r'backbone\.patch_embed\.norm\.' + WB,
             r'backbone.embeddings.norm.\1'),
        Rule(_LAYER + r'attn\.logit_scale', to('attention.self.logit_scale')),
        Rule(_LAYER + r'attn\.cpb_mlp\.([02])\.' + WB,
             to('attention.self.continuous_position_bias_mlp.$2.$3')),
        Rule(_LAYER + r'attn\.(query|key|value)\.weight',
             to('attention.self.$2.weight')),
        Rule(_LAYER + r'attn\.q_bias', to('attention.self.query.bias')),
        Rule(_LAYER + r'attn\.v_bias', to('attention.self.value.bias')),
        Rule(_LAYER + r'attn\.proj\.' + WB, to('attention.output.dense.$2')),
        Rule(_LAYER + r'norm1\.' + WB, to('layernorm_before.$2')),
        Rule(_LAYER + r'norm2\.' + WB, to('layernorm_after.$2')),
        Rule(_LAYER + r'mlp\.fc1\.' + WB, to('intermediate.dense.$2')),
        Rule(_LAYER + r'mlp\.fc2\.' + WB, to('output.dense.$2')),
        Rule(r'backbone\.downsamples\.(\d+)\.'
             r'(reduction\.weight|norm\.weight|norm\.bias)',
             r'backbone.encoder.layers.\1.downsample.\2'),
    ]


def _swinv2_neck(backbone: Mapping[str, Any],
                 neck: Mapping[str, Any]) -> None:
    # Transformers' DPTNeck has no reassemble stage for Swin V2: the stage
    # maps go straight to its 3×3 convs.
    widths = _widths(backbone)
    passthrough = tuple(cfg_get(neck, 'passthrough_indices', ()))
    if passthrough != tuple(range(len(widths))):
        raise refuse('neck.passthrough_indices', passthrough,
                     'Swin V2 stage maps skip the reassemble stage: every '
                     f'level passes through {tuple(range(len(widths)))}')
    channels = list(cfg_get(neck, 'reassemble_channels', ()))
    if channels != widths:
        raise refuse('neck.reassemble_channels', tuple(channels),
                     f'they are the hooked stage widths {widths}')


# Swin V2 has no DPT segmenter in Transformers.
SWINV2_FAMILY = HFFamily(swinv2_hf_config, swinv2_hf_rules, _swinv2_neck,
                         tasks=('depth', ))

"""Transformers' DPT layout shared by every DPT-style converter.

``DPTConfig``'s defaults and the key rules of the DPT neck and heads
(``neck.*``, ``head.*``, ``auxiliary_head.*``): :mod:`.hf` uses them for
DPT with ViT/hybrid/BEiT/Swin V2 encoders, :mod:`.hf_dinov2` for DPT-DINOv2
and Depth Anything. The neck's rules the other way serve both exports
(:mod:`.hf_export`, :mod:`.hf_export_depth_anything`). A module of its own
so none of these imports another.
"""
from typing import Any, Dict, List, Mapping

import torch
from torch import Tensor

from .common import BN, Drop, Rule, WB

__all__: List[str] = []

# DPTConfig 5.24 defaults, for config.json files that omit fields.
_DPT_DEFAULTS: Dict[str, Any] = dict(
    hidden_size=768,
    num_hidden_layers=12,
    num_attention_heads=12,
    intermediate_size=3072,
    hidden_act='gelu',
    hidden_dropout_prob=0.0,
    attention_probs_dropout_prob=0.0,
    layer_norm_eps=1e-12,
    image_size=384,
    patch_size=16,
    num_channels=3,
    is_hybrid=False,
    qkv_bias=True,
    backbone_out_indices=[2, 5, 8, 11],
    readout_type='project',
    reassemble_factors=[4, 2, 1, 0.5],
    neck_hidden_sizes=[96, 192, 384, 768],
    fusion_hidden_size=256,
    head_in_index=-1,
    use_batch_norm_in_fusion_residual=False,
    use_bias_in_fusion_residual=None,
    add_projection=False,
    use_auxiliary_head=True,
    auxiliary_loss_weight=0.4,
    semantic_loss_ignore_index=255,
    semantic_classifier_dropout=0.1,
    backbone_featmap_shape=[1, 1024, 24, 24],
    neck_ignore_stages=[0, 1],
    backbone_config=None,
    backbone=None,
    id2label={0: 'LABEL_0', 1: 'LABEL_1'},
)
# BitConfig 5.24 defaults.
_BIT_DEFAULTS: Dict[str, Any] = dict(
    num_channels=3,
    embedding_size=64,
    hidden_sizes=[256, 512, 1024, 2048],
    depths=[3, 4, 6, 3],
    layer_type='preactivation',
    hidden_act='relu',
    global_padding=None,
    num_groups=32,
    drop_path_rate=0.0,
    embedding_dynamic_padding=False,
    output_stride=32,
    width_factor=1,
    out_features=None,
    out_indices=None,
)

_ENC = r'dpt\.encoder\.layer\.(\d+)\.'
_BIT = r'dpt\.embeddings\.backbone\.bit\.'
_QKV = r'dpt\.encoder\.layer\.(\d+)\.attention\.attention\.' \
    r'(query|key|value)\.(weight|bias)'


def _hf_rules(num_levels: int, task: str) -> List[Rule]:
    deepest = Drop('residual_layer1 of the deepest fusion layer: never '
                   'used by the forward (no lateral input)')

    def fusion_unit(m) -> Any:
        j, unit, kind, idx, param = m.groups()
        if j == '0' and unit == '1':
            return deepest
        name = 'conv' if kind == 'convolution' else 'norm'
        return (f'neck.fusion_blocks.{num_levels - 1 - int(j)}.'
                f'residual_unit{unit}.{name}{idx}.{param}')

    rules = [
        Rule(r'dpt\.embeddings\.cls_token', 'backbone.cls_token'),
        Rule(r'dpt\.embeddings\.position_embeddings', 'backbone.pos_embed'),
        Rule(r'dpt\.embeddings\.patch_embeddings\.projection\.' + WB,
             r'backbone.patch_embed.proj.\1'),
        # Hybrid: 1×1 projection of the BiT 1/16 map, and the BiT trunk.
        Rule(r'dpt\.embeddings\.projection\.' + WB,
             r'backbone.patch_embed.proj.\1'),
        Rule(_BIT + r'embedder\.convolution\.weight',
             'backbone.patch_embed.backbone.stem.conv.weight'),
        Rule(_BIT + r'embedder\.norm\.' + WB,
             r'backbone.patch_embed.backbone.stem.norm.\1'),
        Rule(_BIT + r'encoder\.stages\.(\d+)\.layers\.(\d+)\.'
             r'(conv[123]|norm[123]|downsample\.conv|downsample\.norm)\.' +
             WB, r'backbone.patch_embed.backbone.stages.\1.blocks.\2.\3.\4'),
        Rule(_ENC + r'layernorm_before\.' + WB,
             r'backbone.layers.\1.norm1.\2'),
        Rule(_ENC + r'attention\.output\.dense\.' + WB,
             r'backbone.layers.\1.attn.proj.\2'),
        Rule(_ENC + r'layernorm_after\.' + WB,
             r'backbone.layers.\1.norm2.\2'),
        Rule(_ENC + r'intermediate\.dense\.' + WB,
             r'backbone.layers.\1.mlp.fc1.\2'),
        Rule(_ENC + r'output\.dense\.' + WB,
             r'backbone.layers.\1.mlp.fc2.\2'),
        Rule(r'dpt\.layernorm\.' + WB,
             Drop('final LayerNorm: DPT reads hooked blocks, never the '
                  'normed last output')),
        Rule(r'dpt\.pooler\..*', Drop('pooler of DPTModel: unused by DPT')),
        Rule(r'neck\.reassemble_stage\.readout_projects\.(\d+)\.0\.' + WB,
             r'neck.reassemble_blocks.\1.readout.project.0.\2'),
        Rule(r'neck\.reassemble_stage\.layers\.(\d+)\.projection\.' + WB,
             r'neck.reassemble_blocks.\1.projection.\2'),
        Rule(r'neck\.reassemble_stage\.layers\.(\d+)\.resize\.' + WB,
             r'neck.reassemble_blocks.\1.resample.\2'),
        Rule(r'neck\.convs\.(\d+)\.weight', r'neck.lateral_convs.\1.weight'),
        Rule(r'neck\.fusion_stage\.layers\.(\d+)\.projection\.' + WB,
             lambda m: f'neck.fusion_blocks.{num_levels - 1 - int(m[1])}.'
             f'out_conv.{m[2]}'),
        Rule(r'neck\.fusion_stage\.layers\.(\d+)\.residual_layer([12])\.'
             r'(convolution|batch_norm)([12])\.' + BN, fusion_unit),
    ]
    if task == 'depth':
        rules += [
            Rule(r'head\.projection\.' + WB, r'decode_head.projection.\1'),
            Rule(r'head\.head\.0\.' + WB, r'decode_head.conv1.\1'),
            Rule(r'head\.head\.2\.' + WB, r'decode_head.conv2.\1'),
            Rule(r'head\.head\.4\.' + WB, r'decode_head.conv_seg.\1'),
        ]
    elif task == 'seg':
        rules += [
            Rule(r'head\.head\.0\.weight', 'decode_head.conv.conv.weight'),
            Rule(r'head\.head\.1\.' + BN, r'decode_head.conv.bn.\1'),
            Rule(r'head\.head\.4\.' + WB, r'decode_head.conv_seg.\1'),
            Rule(r'auxiliary_head\.head\.0\.weight',
                 'auxiliary_head.convs.0.conv.weight'),
            Rule(r'auxiliary_head\.head\.1\.' + BN,
                 r'auxiliary_head.convs.0.bn.\1'),
            Rule(r'auxiliary_head\.head\.4\.' + WB,
                 r'auxiliary_head.conv_seg.\1'),
        ]
    return rules


def _neck_rules_to_hf(num_levels: int) -> List[Rule]:
    """The reverse of the neck part of :func:`_hf_rules`: our ``neck.*``
    keys into Transformers' (DPT and Depth Anything alike)."""
    def unit(m) -> str:
        i, u, kind, idx, param = m.groups()
        name = 'convolution' if kind == 'conv' else 'batch_norm'
        return (f'neck.fusion_stage.layers.{num_levels - 1 - int(i)}.'
                f'residual_layer{u}.{name}{idx}.{param}')

    return [
        Rule(r'neck\.reassemble_blocks\.(\d+)\.readout\.project\.0\.' + WB,
             r'neck.reassemble_stage.readout_projects.\1.0.\2'),
        Rule(r'neck\.reassemble_blocks\.(\d+)\.projection\.' + WB,
             r'neck.reassemble_stage.layers.\1.projection.\2'),
        Rule(r'neck\.reassemble_blocks\.(\d+)\.resample\.' + WB,
             r'neck.reassemble_stage.layers.\1.resize.\2'),
        Rule(r'neck\.lateral_convs\.(\d+)\.weight', r'neck.convs.\1.weight'),
        Rule(r'neck\.fusion_blocks\.(\d+)\.(out_conv)\.' + WB,
             lambda m: f'neck.fusion_stage.layers.{num_levels - 1 - int(m[1])}'
             f'.projection.{m[3]}'),
        Rule(r'neck\.fusion_blocks\.(\d+)\.residual_unit([12])\.'
             r'(conv|norm)([12])\.' + BN, unit),
    ]


_DEEPEST = 'neck.fusion_stage.layers.0.residual_layer'


def deepest_unit_fills(hf_state: Mapping[str, Tensor]) -> Dict[str, Tensor]:
    """Zeros for the first residual unit of Transformers' deepest fusion
    layer (it never gets a lateral input, so dpt_mm has none), shaped like
    that layer's second unit in ``hf_state`` (DPT and Depth Anything
    alike)."""
    twin = _DEEPEST + '2.'
    return {_DEEPEST + '1.' + key[len(twin):]: torch.zeros_like(value)
            for key, value in hf_state.items() if key.startswith(twin)}

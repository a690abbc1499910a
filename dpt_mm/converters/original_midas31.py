"""MiDaS v3.1 release files with BEiT and Swin V2 encoders → dpt_mm keys.

The releases (isl-org/MiDaS, tag v3_1: ``dpt_beit_large_512.pt``,
``dpt_beit_large_384.pt``, ``dpt_beit_base_384.pt``,
``dpt_swin2_large_384.pt``, ``dpt_swin2_base_384.pt``,
``dpt_swin2_tiny_256.pt``) are flat state dicts of ``DPTDepthModel``:
``pretrained.model.*`` is the timm 0.6 encoder, the neck and head keys are
those of the original DPT (:mod:`.original`). Layouts from
``midas/backbones/{beit,swin2,swin_common}.py`` and Transformers'
``convert_dpt_{beit,swinv2}_to_hf.py``. timm's buffers (relative position
indices, Swin's coordinate tables and shift masks) are recomputed by our
modules and dropped with a reason.
"""
from typing import Any, Dict, List, Mapping, Sequence

from .common import Drop, Rule, WB

__all__ = ['MIDAS31_VARIANTS', 'midas31_backbone_rules']

# Release name → dpt_mm config (relative to the repository root).
MIDAS31_VARIANTS: Dict[str, str] = {
    'dpt_beit_large_512': 'configs/dpt_beitl512_midas31.py',
    'dpt_beit_large_384': 'configs/dpt_beitl384_midas31.py',
    'dpt_beit_base_384': 'configs/dpt_beitb384_midas31.py',
    'dpt_swin2_large_384': 'configs/dpt_swin2l384_midas31.py',
    'dpt_swin2_base_384': 'configs/dpt_swin2b384_midas31.py',
    'dpt_swin2_tiny_256': 'configs/dpt_swin2t256_midas31.py',
}

_SRC = r'pretrained\.model\.'
_UNUSED_HEAD = [
    Rule(_SRC + r'(norm|fc_norm)\.' + WB,
         Drop("timm's final/pooling LayerNorm: DPT reads hooked blocks")),
    Rule(_SRC + r'head\.' + WB,
         Drop("timm's ImageNet classifier: unused by DPT")),
]


def _beit_rules() -> List[Rule]:
    block = _SRC + r'blocks\.(\d+)\.'
    return [
        Rule(_SRC + r'cls_token', 'backbone.cls_token'),
        Rule(_SRC + r'pos_embed', 'backbone.pos_embed'),
        Rule(_SRC + r'patch_embed\.proj\.' + WB,
             r'backbone.patch_embed.proj.\1'),
        Rule(_SRC + r'rel_pos_bias\.relative_position_bias_table',
             'backbone.rel_pos_bias.relative_position_bias_table'),
        Rule(block + r'(norm1|norm2|mlp\.fc1|mlp\.fc2|attn\.proj)\.' + WB,
             r'backbone.layers.\1.\2.\3'),
        Rule(block + r'(attn\.qkv\.weight|attn\.q_bias|attn\.v_bias|'
             r'gamma_1|gamma_2)', r'backbone.layers.\1.\2'),
        Rule(block + r'attn\.relative_position_bias_table',
             r'backbone.layers.\1.attn.rel_pos_bias.'
             'relative_position_bias_table'),
        Rule(_SRC + r'(blocks\.\d+\.attn\.)?relative_position_index|' +
             _SRC + r'rel_pos_bias\.relative_position_index',
             Drop('relative position index buffer: recomputed for each '
                  'input grid')),
        *_UNUSED_HEAD,
    ]


def _swinv2_rules(depths: Sequence[int]) -> List[Rule]:
    block = _SRC + r'layers\.(\d+)\.blocks\.(\d+)\.'

    def to(suffix: str):
        def target(m) -> str:
            index = sum(depths[:int(m[1])]) + int(m[2])
            return f'backbone.layers.{index}.{m.expand(suffix)}'
        return target

    return [
        Rule(_SRC + r'patch_embed\.(proj|norm)\.' + WB,
             r'backbone.patch_embed.\1.\2'),
        Rule(block + r'(norm1|norm2|mlp\.fc1|mlp\.fc2|attn\.proj|'
             r'attn\.cpb_mlp\.0)\.' + WB, to(r'\3.\4')),
        Rule(block + r'(attn\.qkv\.weight|attn\.q_bias|attn\.v_bias|'
             r'attn\.logit_scale|attn\.cpb_mlp\.2\.weight)', to(r'\3')),
        Rule(block + r'(attn\.relative_coords_table|'
             r'attn\.relative_position_index|attn_mask)',
             Drop('Swin V2 buffer (coordinates, index or shift mask): '
                  'recomputed by the model')),
        Rule(_SRC + r'layers\.(\d+)\.downsample\.(reduction\.weight|'
             r'norm\.weight|norm\.bias)', r'backbone.downsamples.\1.\2'),
        *_UNUSED_HEAD,
    ]


def midas31_backbone_rules(model_cfg: Mapping[str, Any]) -> List[Rule]:
    """Renaming rules of a MiDaS v3.1 encoder for the config's backbone.

    Args:
        model_cfg (Mapping): Model config with a ``DPTBEiT`` or
            ``DPTSwinV2`` backbone.

    Returns:
        list[Rule]: Rules from ``pretrained.model.*`` to ``backbone.*``.
    """
    backbone = model_cfg['backbone']
    if backbone['type'] == 'DPTBEiT':
        return _beit_rules()
    if backbone['type'] == 'DPTSwinV2':
        # (2, 2, 18, 2): DPTSwinV2's default depths.
        return _swinv2_rules(tuple(backbone.get('depths', (2, 2, 18, 2))))
    raise ValueError(f"backbone {backbone['type']!r} is not a MiDaS v3.1 "
                     'encoder (DPTBEiT, DPTSwinV2)')

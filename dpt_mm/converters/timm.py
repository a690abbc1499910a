"""timm ViT / ViT-Hybrid ImageNet checkpoints → dpt_mm backbone weights.

The paper configs start their encoder from ImageNet weights
(``pretrain/vit-b16_384.pth``, ``pretrain/vit-l16_384.pth``,
``pretrain/vit-hybrid_384.pth``). Those come from timm's
``vit_base_patch16_384``, ``vit_large_patch16_384`` and
``vit_base_resnet50_384`` (later timm: ``vit_base_r50_s16_384``), whose keys
are ``cls_token``, ``pos_embed``, ``patch_embed.proj.*``, ``blocks.N.*``,
``norm.*``, ``head.*`` (and ``pre_logits.*`` in some), plus the BiT ResNet
under ``patch_embed.backbone.*`` for the hybrid.

The original DPT release stores the same timm model under
``pretrained.model.``, so :func:`timm_vit_rules` is the one rule table for
both converters (``original.py`` calls it with that prefix).

The converted keys carry **no** ``backbone.`` prefix: mmengine's
``PretrainedInit`` without ``prefix`` loads the file into the module that
owns the ``init_cfg`` (the backbone itself), which is how the configs write
``backbone=dict(init_cfg=dict(type='Pretrained', checkpoint=...))``. With
``prefix='backbone.'`` it would instead expect a whole-model checkpoint.
"""
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Tuple

import torch
import torch.nn as nn
from torch import Tensor

from ..utils.pos_embed import resize_pos_embed
from .common import (Conversion, Drop, Rule, WB, apply_rules, load_converted,
                     unwrap_state_dict)

__all__ = [
    'TIMM_PRETRAIN_FILES', 'TIMM_VARIANTS', 'TimmConversion',
    'build_backbone_skeleton', 'check_backbone_weights',
    'convert_timm_state_dict', 'guess_timm_variant',
    'load_backbone_checkpoint', 'map_timm_state_dict',
    'timm_backbone_config', 'timm_vit_rules'
]

# timm model name → our backbone with the same architecture. Only sizes:
# the hooks do not change the weights, ws_mode/eps only the forward.
TIMM_VARIANTS: Dict[str, Dict[str, Any]] = {
    'vit_base_patch16_384': dict(
        type='DPTViT', img_size=384, patch_size=16, embed_dims=768,
        num_layers=12, num_heads=12, out_indices=(2, 5, 8, 11)),
    'vit_large_patch16_384': dict(
        type='DPTViT', img_size=384, patch_size=16, embed_dims=1024,
        num_layers=24, num_heads=16, out_indices=(5, 11, 17, 23)),
    'vit_base_resnet50_384': dict(
        type='DPTViTHybrid', img_size=384, patch_size=16, embed_dims=768,
        num_layers=12, num_heads=12, stem_depths=(3, 4, 9),
        stem_widths=(256, 512, 1024), out_indices=(8, 11)),
}

# Where the paper configs (configs/*.py) look for each converted file.
TIMM_PRETRAIN_FILES: Dict[str, str] = {
    'vit_base_patch16_384': 'pretrain/vit-b16_384.pth',
    'vit_large_patch16_384': 'pretrain/vit-l16_384.pth',
    'vit_base_resnet50_384': 'pretrain/vit-hybrid_384.pth',
}

_HYBRID_KEY = 'patch_embed.backbone.'


def timm_vit_rules(src_prefix: str = '', dst_prefix: str = '') -> List[Rule]:
    """Renaming rules of a timm ViT / ViT-Hybrid state dict.

    Our backbone keeps timm's names except ``blocks`` → ``layers``; the
    BiT ResNet's names (``stem.conv``, ``stages.S.blocks.B.conv1`` ...) are
    ours already. timm's final LayerNorm, classifier and pre-logits layer are
    dropped with a reason; any other key is left unmatched (an error in
    :func:`~dpt_mm.converters.common.apply_rules`).

    Args:
        src_prefix (str): Literal prefix of the timm keys (``''`` for a timm
            checkpoint, ``'pretrained.model.'`` in the DPT release).
        dst_prefix (str): Prefix of our keys (``''`` for a backbone file,
            ``'backbone.'`` in a whole-model checkpoint).

    Returns:
        list[Rule]: Rules for :func:`~dpt_mm.converters.common.apply_rules`.
    """
    src = re.escape(src_prefix)
    dst = dst_prefix.replace('\\', r'\\')  # literal in a match template
    return [
        Rule(src + r'cls_token', dst + 'cls_token'),
        Rule(src + r'pos_embed', dst + 'pos_embed'),
        Rule(src + r'patch_embed\.proj\.' + WB,
             dst + r'patch_embed.proj.\1'),
        # timm's ResNetV2 names are ours already (stem.conv, stages.S...).
        Rule(src + r'patch_embed\.backbone\.(stem\.conv\.weight|'
             r'stem\.norm\.(?:weight|bias)|stages\.\d+\.blocks\.\d+\.'
             r'(?:conv[123]|norm[123]|downsample\.conv|downsample\.norm)\.'
             r'(?:weight|bias))',
             dst + r'patch_embed.backbone.\1'),
        Rule(src + r'blocks\.(\d+)\.(norm1|attn\.qkv|attn\.proj|norm2|'
             r'mlp\.fc1|mlp\.fc2)\.' + WB, dst + r'layers.\1.\2.\3'),
        Rule(src + r'norm\.' + WB,
             Drop("timm's final LayerNorm: DPT reads hooked blocks, never "
                  'the normed last output')),
        Rule(src + r'head\.' + WB,
             Drop("timm's ImageNet classifier: unused by DPT")),
        Rule(src + r'pre_logits\.fc\.' + WB,
             Drop("timm's pre-logits layer before the classifier: unused "
                  'by DPT')),
    ]


@dataclass
class TimmConversion(Conversion):
    """A :class:`Conversion` that also reports resized position embeddings.

    Attributes:
        resized (dict[str, str]): Target key → how it was resized.
    """
    resized: Dict[str, str] = field(default_factory=dict)

    def summary(self) -> str:
        """Counts, dropped keys, then resized keys."""
        lines = [super().summary()]
        lines += [f'  resized {k}: {how}' for k, how in self.resized.items()]
        return '\n'.join(lines)


def guess_timm_variant(checkpoint: Mapping[str, Any]) -> str:
    """The :data:`TIMM_VARIANTS` entry a timm state dict looks like.

    Args:
        checkpoint (Mapping): A timm state dict (or one wrapped under
            ``state_dict`` / ``model``).

    Returns:
        str: A key of :data:`TIMM_VARIANTS`.

    Raises:
        ValueError: The keys do not look like a supported timm ViT.
    """
    state_dict = unwrap_state_dict(checkpoint)
    if 'cls_token' not in state_dict:
        raise ValueError('not a timm ViT state dict (no cls_token); keys '
                         f'start with: {sorted(state_dict)[:5]}')
    width = state_dict['cls_token'].shape[-1]
    hybrid = any(k.startswith(_HYBRID_KEY) for k in state_dict)
    for name, cfg in TIMM_VARIANTS.items():
        if cfg['embed_dims'] == width and hybrid == (
                cfg['type'] == 'DPTViTHybrid'):
            return name
    raise ValueError(
        f'no supported timm variant has width {width}'
        f'{" with a ResNet stem" if hybrid else ""}; pass --variant or '
        f'--config, variants: {", ".join(TIMM_VARIANTS)}')


def timm_backbone_config(variant: str) -> Dict[str, Any]:
    """Our backbone config for a timm variant (a copy).

    Args:
        variant (str): A key of :data:`TIMM_VARIANTS`.

    Returns:
        dict: Backbone config, e.g. ``dict(type='DPTViT', ...)``.
    """
    if variant not in TIMM_VARIANTS:
        raise ValueError(f'unknown timm variant {variant!r}; one of: '
                         f'{", ".join(TIMM_VARIANTS)}')
    return dict(TIMM_VARIANTS[variant])


def map_timm_state_dict(checkpoint: Mapping[str, Any],
                        grid_size: Optional[Tuple[int, int]] = None
                        ) -> TimmConversion:
    """Rename a timm ViT / ViT-Hybrid state dict, with a report.

    A pure function of the weights (like timm's ``checkpoint_filter_fn``):
    keys are renamed by :func:`timm_vit_rules`, and ``pos_embed`` is resized
    (bilinear, class token kept, as the original DPT) when its square grid
    differs from ``grid_size``.

    Args:
        checkpoint (Mapping): A timm state dict, flat or under
            ``state_dict`` / ``model``.
        grid_size (tuple[int, int], optional): Target patch grid (img_size /
            patch_size of the backbone); None keeps the checkpoint's.

    Returns:
        TimmConversion: Backbone state dict (no ``backbone.`` prefix),
        dropped keys and resized keys.

    Raises:
        KeyError: A key no rule knows (listed), e.g. from another model.
    """
    state_dict = unwrap_state_dict(checkpoint)
    base = apply_rules(state_dict, timm_vit_rules(), 'timm ViT checkpoint')
    result = TimmConversion(base.state_dict, base.dropped, base.filled,
                            base.num_source)
    pos_embed = result.state_dict.get('pos_embed')
    if pos_embed is not None and grid_size is not None:
        resized = resize_pos_embed(pos_embed, tuple(grid_size), 1)
        if resized is not pos_embed:
            side = round((pos_embed.shape[1] - 1)**0.5)
            result.state_dict['pos_embed'] = resized.contiguous()
            result.resized['pos_embed'] = (
                f'{side}×{side} → {grid_size[0]}×{grid_size[1]} patch grid '
                '(bilinear, class token kept)')
    return result


def convert_timm_state_dict(checkpoint: Mapping[str, Any],
                            grid_size: Optional[Tuple[int, int]] = None
                            ) -> Dict[str, Tensor]:
    """timm ViT / ViT-Hybrid weights → dpt_mm backbone weights.

    Args:
        checkpoint (Mapping): A timm state dict.
        grid_size (tuple[int, int], optional): Target patch grid.

    Returns:
        dict[str, Tensor]: Weights for ``DPTViT`` / ``DPTViTHybrid``, loadable
        with ``init_cfg=dict(type='Pretrained', checkpoint=...)``.
    """
    return map_timm_state_dict(checkpoint, grid_size).state_dict


def build_backbone_skeleton(backbone_cfg: Mapping[str, Any]) -> nn.Module:
    """Build a backbone on the meta device: its keys and shapes, no memory.

    Args:
        backbone_cfg (Mapping): Backbone config (``init_cfg`` is ignored).

    Returns:
        nn.Module: The backbone with meta tensors (has ``pos_grid``).
    """
    from mmseg.registry import MODELS
    cfg = {k: v for k, v in backbone_cfg.items() if k != 'init_cfg'}
    with torch.device('meta'):
        return MODELS.build(cfg)


def check_backbone_weights(skeleton: nn.Module,
                           state_dict: Mapping[str, Tensor],
                           context: str = 'converted timm checkpoint'
                           ) -> None:
    """Refuse weights whose keys or shapes differ from the backbone's.

    Args:
        skeleton (nn.Module): From :func:`build_backbone_skeleton`.
        state_dict (Mapping[str, Tensor]): Converted weights.
        context (str): Named in the error.

    Raises:
        CheckpointMismatchError: Lists missing, unexpected and
            shape-mismatched keys.
    """
    # Meta copies: the strict load then only compares (no data is moved).
    load_converted(skeleton, {k: v.to('meta') for k, v in state_dict.items()},
                   context)


def load_backbone_checkpoint(backbone: nn.Module, checkpoint: str) -> None:
    """Load a backbone weight file strictly, or raise listing the keys.

    What ``init_cfg=dict(type='Pretrained', checkpoint=...)`` does, minus
    mmengine's ``strict=False``: there, an unconverted timm file or one
    made for another ``img_size`` only logs a warning, and training starts
    from an uninitialised encoder. The file is read with the safe loader.

    Args:
        backbone (nn.Module): ``DPTViT`` / ``DPTViTHybrid``.
        checkpoint (str): File from ``tools/model_converters/timm2mm.py``
            (bare backbone keys, optionally under ``state_dict``).

    Raises:
        CheckpointMismatchError: Missing, unexpected or mis-shaped keys,
            with a hint when the file is an unconverted timm checkpoint or
            a whole-model checkpoint.
    """
    from ..utils import load_checkpoint_file
    state_dict = unwrap_state_dict(load_checkpoint_file(checkpoint))
    hint = ''
    if any(k.startswith('blocks.') for k in state_dict):
        hint = ('; its keys look like an unconverted timm checkpoint: '
                'convert it with tools/model_converters/timm2mm.py')
    elif any(k.startswith('backbone.') for k in state_dict):
        hint = ("; its keys carry 'backbone.' (a whole-model checkpoint): "
                "add prefix='backbone.' to init_cfg")
    load_converted(backbone, state_dict,
                   f'backbone checkpoint {checkpoint}{hint}')

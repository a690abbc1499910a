"""Shared pieces of the converters for DPT with a separate Transformers
backbone (``DPTConfig(backbone_config=...)``, ``is_hybrid=False``).

A family module (:mod:`.hf_beit`, :mod:`.hf_swinv2`) provides
``resolve_backbone_config(raw)``, ``mm_backbone(cfg)`` and
``backbone_rules(cfg)``/``fuse_backbone_qkv(...)``; :mod:`.hf` dispatches to
it by the backbone's ``model_type``.
"""
import copy
import re
from typing import Any, Callable, Dict, List, Mapping, Sequence, Tuple

import torch
from torch import Tensor

__all__ = [
    'complete_backbone_config', 'fuse_qkv', 'map_separate_backbone_state_dict',
    'stage_indices'
]


def complete_backbone_config(raw: Any, defaults: Mapping[str, Any],
                             model_type: str) -> Dict[str, Any]:
    """A backbone config dict with Transformers' defaults filled in.

    Args:
        raw: The ``backbone_config`` (config object or dict).
        defaults (Mapping): The family's config defaults.
        model_type (str): Expected ``model_type``.

    Returns:
        dict: Completed config.
    """
    raw = raw.to_dict() if hasattr(raw, 'to_dict') else copy.deepcopy(
        dict(raw))
    if raw.get('model_type', model_type) != model_type:
        raise ValueError(f'expected a {model_type} backbone_config, got '
                         f"model_type={raw['model_type']!r}")
    cfg = copy.deepcopy(dict(defaults))
    cfg.update(raw)
    return cfg


def stage_indices(cfg: Mapping[str, Any], num_stages: int) -> List[int]:
    """1-based stage numbers of ``out_features`` (``stage3`` → 3).

    Transformers' backbones name the embedding output ``stem`` and the
    outputs of blocks/stages ``stage1``...; without ``out_features`` or
    ``out_indices`` only the last stage is returned.
    """
    names = ['stem'] + [f'stage{i}' for i in range(1, num_stages + 1)]
    features = cfg.get('out_features')
    if features is None and cfg.get('out_indices') is not None:
        features = [names[i] for i in cfg['out_indices']]
    if features is None:
        features = [names[-1]]
    unknown = [f for f in features if f not in names]
    if unknown or 'stem' in features:
        raise ValueError(
            f'backbone out_features {list(features)}: dpt_mm hooks '
            f'stage1..stage{num_stages} only (not the embedding output)')
    # Transformers returns them in stage order, whatever the listed order.
    return sorted(names.index(f) for f in features)


def fuse_qkv(state_dict: Mapping[str, Tensor], pattern: str,
             parts: Sequence[str], target: Callable[[re.Match], str]
             ) -> Tuple[Dict[str, Tensor], Dict[str, Tensor]]:
    """Concatenate separate query/key/value weights into timm's fused qkv.

    Args:
        state_dict (Mapping): Source weights.
        pattern (str): Full-match regex whose last group is the part name
            (``q``/``query``...: its first letter counts) and whose other
            groups identify the block.
        parts (Sequence[str]): ``('q', 'k', 'v')``, the order of the parts.
        target (callable): Match → fused key.

    Returns:
        tuple[dict, dict]: The keys left over, and the fused tensors.
    """
    regex = re.compile(pattern)
    rest: Dict[str, Tensor] = {}
    groups: Dict[str, Dict[str, Tensor]] = {}
    for key, value in state_dict.items():
        m = regex.fullmatch(key)
        if m is None:
            rest[key] = value
            continue
        groups.setdefault(target(m), {})[m.groups()[-1][0]] = value
    fused = {}
    for key, found in groups.items():
        missing = [p for p in parts if p not in found]
        if missing:
            raise KeyError(f'{key}: the source lacks the {missing} part(s) '
                           'of the attention projection')
        # timm's fused layout is [q; k; v] along the output dimension.
        fused[key] = torch.cat([found[p] for p in parts], dim=0)
    return rest, fused


def map_separate_backbone_state_dict(state_dict: Mapping[str, Tensor],
                                     cfg: Mapping[str, Any],
                                     dpt_rules: Sequence[Any],
                                     family: Any) -> Any:
    """Rename a Transformers DPT state dict with a separate backbone.

    Args:
        state_dict (Mapping): Transformers weights.
        cfg (Mapping): Resolved DPT config (:func:`.hf.resolve_hf_config`).
        dpt_rules (Sequence[Rule]): The neck and head rules of plain DPT.
        family (module): The backbone's converter module, with
            ``fuse_backbone_qkv(state_dict, cfg)`` and
            ``backbone_rules(cfg)``.

    Returns:
        Conversion: dpt_mm state dict with the dropped keys.
    """
    from .common import apply_rules
    rest, fused = family.fuse_backbone_qkv(state_dict, cfg)
    result = apply_rules(rest, [*family.backbone_rules(cfg), *dpt_rules],
                         'Transformers DPT-'
                         f"{cfg['backbone_config'].get('model_type')} "
                         'checkpoint')
    result.state_dict.update(fused)
    result.num_source = len(state_dict)
    return result

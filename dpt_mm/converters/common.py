"""Shared machinery of the weight converters: renaming rules, strict loading.

A converter is a list of :class:`Rule` objects. Every source key must match
exactly one rule, which either renames it or drops it with a stated reason;
a key no rule knows is an error, so nothing is ever dropped silently.
"""
import keyword
import re
from dataclasses import dataclass, field
from typing import (Any, Callable, Dict, List, Mapping, Optional, Sequence,
                    Tuple, Union)

import torch
import torch.nn as nn
from torch import Tensor

__all__ = [
    'BN', 'CheckpointMismatchError', 'Conversion', 'Drop', 'Rule', 'WB',
    'apply_rules',
    'compare_state_dict', 'format_py_config', 'load_converted',
    'unwrap_state_dict'
]

StateDict = Dict[str, Tensor]

#: Key-pattern groups every converter's rules end with: a layer's
#: parameters, and a norm's parameters and buffers.
WB = r'(weight|bias)'
BN = r'(weight|bias|running_mean|running_var|num_batches_tracked)'


class CheckpointMismatchError(RuntimeError):
    """A converted state dict does not match the model it is loaded into.

    Args:
        missing (Sequence[str]): Model keys absent from the state dict.
        unexpected (Sequence[str]): State-dict keys the model does not have.
        mismatched (Sequence[str]): ``key: checkpoint shape vs model shape``.
        context (str): What was being loaded, for the message.
        hint (str): What the user can do, put last. Defaults to ''.
    """

    def __init__(self, missing: Sequence[str], unexpected: Sequence[str],
                 mismatched: Sequence[str] = (), context: str = '',
                 hint: str = '') -> None:
        self.missing = list(missing)
        self.unexpected = list(unexpected)
        self.mismatched = list(mismatched)
        lines = [f'{context or "checkpoint"} does not match the model '
                 '(nothing was loaded):']
        for title, keys in (('missing keys', self.missing),
                            ('unexpected keys', self.unexpected),
                            ('shape mismatches', self.mismatched)):
            if keys:
                lines.append(f'  {len(keys)} {title}:')
                lines.extend(f'    {k}' for k in keys)
        if hint:
            lines.append(hint)
        super().__init__('\n'.join(lines))


@dataclass(frozen=True)
class Drop:
    """Marks a source key as deliberately not converted.

    Args:
        reason (str): Why the key has no counterpart (shown to the user).
    """
    reason: str


RuleTarget = Union[str, Drop, Callable[[re.Match], Union[str, Drop]]]


@dataclass
class Rule:
    """One renaming rule: a full-match regex and what the key becomes.

    Args:
        pattern (str): Regex that must match the whole source key.
        target (str | Drop | callable): A ``re.Match.expand`` template
            (``r'backbone.layers.\\1.norm1.\\2'``), a :class:`Drop`, or a
            function of the match returning either.
    """
    pattern: str
    target: RuleTarget
    regex: re.Pattern = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.regex = re.compile(self.pattern)

    def apply(self, key: str) -> Optional[Union[str, Drop]]:
        """Returns the new key or a :class:`Drop`, None if not matched."""
        match = self.regex.fullmatch(key)
        if match is None:
            return None
        if isinstance(self.target, (str, Drop)):
            return match.expand(self.target) if isinstance(
                self.target, str) else self.target
        return self.target(match)


@dataclass
class Conversion:
    """Result of a conversion: the new state dict and what was left out.

    Attributes:
        state_dict (dict[str, Tensor]): Converted weights.
        dropped (dict[str, str]): Source key → reason it was not converted.
        filled (dict[str, str]): Target key → why it was created without a
            source tensor (e.g. a missing BatchNorm batch counter).
        num_source (int): Number of source tensors.
    """
    state_dict: StateDict
    dropped: Dict[str, str] = field(default_factory=dict)
    filled: Dict[str, str] = field(default_factory=dict)
    num_source: int = 0

    def restore_or_fill(self, fills: Mapping[str, Tuple[Tensor, str]],
                        saved: Optional[Mapping[str, Tensor]] = None
                        ) -> None:
        """Add target tensors that have no source in the converted weights.

        Args:
            fills (Mapping[str, tuple[Tensor, str]]): Target key → filler
                and the reason it has no source.
            saved (Mapping[str, Tensor], optional): Tensors kept from an
                earlier conversion (e.g. a checkpoint's ``hf_unused``);
                a key found there is restored, not filled.
        """
        saved = saved or {}
        for key, (filler, why) in fills.items():
            if key in saved:
                self.state_dict[key] = saved[key]
            else:
                self.state_dict[key] = filler
                self.filled[key] = why

    def summary(self) -> str:
        """Human-readable report: counts, then each dropped key."""
        lines = [f'converted {self.num_source} source tensors into '
                 f'{len(self.state_dict)} tensors; dropped '
                 f'{len(self.dropped)}, filled {len(self.filled)}']
        for key, reason in self.dropped.items():
            lines.append(f'  dropped {key}: {reason}')
        for key, reason in self.filled.items():
            lines.append(f'  filled  {key}: {reason}')
        return '\n'.join(lines)


def apply_rules(state_dict: Mapping[str, Tensor], rules: Sequence[Rule],
                context: str) -> Conversion:
    """Rename every key by the first rule that matches it.

    Args:
        state_dict (Mapping[str, Tensor]): Source weights.
        rules (Sequence[Rule]): Tried in order.
        context (str): Source layout name for error messages.

    Returns:
        Conversion: Renamed tensors and dropped keys.

    Raises:
        KeyError: Some keys match no rule, or two keys map to one name.
    """
    out: StateDict = {}
    dropped: Dict[str, str] = {}
    unknown: List[str] = []
    sources: Dict[str, str] = {}
    for key, value in state_dict.items():
        result = None
        for rule in rules:
            result = rule.apply(key)
            if result is not None:
                break
        if result is None:
            unknown.append(key)
        elif isinstance(result, Drop):
            dropped[key] = result.reason
        else:
            if result in out:
                raise KeyError(f'{context}: both {sources[result]!r} and '
                               f'{key!r} map to {result!r}')
            out[result] = value
            sources[result] = key
    if unknown:
        raise KeyError(f'{context}: {len(unknown)} keys have no known '
                       'counterpart (wrong layout or unsupported variant):\n' +
                       '\n'.join(f'  {k}' for k in unknown))
    return Conversion(out, dropped, num_source=len(state_dict))


def unwrap_state_dict(checkpoint: Mapping[str, Any],
                      wrappers: Sequence[str] = ('state_dict', 'model')
                      ) -> Dict[str, Any]:
    """Return the flat tensor dict inside a checkpoint.

    Accepts a plain state dict, or a dict holding one under one of
    ``wrappers`` (mmengine ``state_dict``; the original DPT's training
    checkpoints keep it under ``model`` next to ``optimizer``).

    Args:
        checkpoint (Mapping): Loaded checkpoint.
        wrappers (Sequence[str]): Keys tried in order.

    Returns:
        dict: Key → tensor.
    """
    if not isinstance(checkpoint, Mapping):
        raise TypeError(f'expected a dict checkpoint, got '
                        f'{type(checkpoint).__name__}')
    for name in wrappers:
        # A flat state dict holds only tensors, so a dict value is a wrapper.
        if isinstance(checkpoint.get(name), Mapping):
            return dict(checkpoint[name])
    return dict(checkpoint)


def compare_state_dict(
        model: nn.Module, state_dict: Mapping[str, Tensor]
) -> Tuple[List[str], List[str], List[str]]:
    """What keeps ``state_dict`` from loading strictly into ``model``.

    Args:
        model (nn.Module): Target model.
        state_dict (Mapping[str, Tensor]): Flat key → tensor weights.

    Returns:
        tuple[list[str], list[str], list[str]]: Missing model keys,
        unexpected checkpoint keys, and ``key: checkpoint shape vs model
        shape`` for keys in both whose shapes differ; all sorted.
    """
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    mismatched = [
        f'{k}: checkpoint {tuple(state_dict[k].shape)} vs model '
        f'{tuple(expected[k].shape)}' for k in sorted(expected)
        if k in state_dict and tuple(state_dict[k].shape) != tuple(
            expected[k].shape)
    ]
    return missing, unexpected, mismatched


def load_converted(model: nn.Module,
                   state_dict: Mapping[str, Tensor],
                   context: str = 'converted checkpoint') -> None:
    """Load a converted state dict strictly, or raise before touching it.

    Keys and shapes are compared first, so a mismatch leaves the model
    exactly as it was (no half-loaded model).

    Args:
        model (nn.Module): Target model.
        state_dict (Mapping[str, Tensor]): Weights, or an mmengine
            checkpoint ``{'state_dict': ...}``.
        context (str): Named in the error message.

    Raises:
        CheckpointMismatchError: Lists missing, unexpected and
            shape-mismatched keys.
    """
    if 'state_dict' in state_dict and isinstance(state_dict['state_dict'],
                                                 Mapping):
        state_dict = state_dict['state_dict']
    missing, unexpected, mismatched = compare_state_dict(model, state_dict)
    if missing or unexpected or mismatched:
        raise CheckpointMismatchError(missing, unexpected, mismatched,
                                      context)
    model.load_state_dict(state_dict, strict=True)


def _format_value(value: Any, indent: int) -> str:
    pad = ' ' * (indent + 4)
    if isinstance(value, dict):
        if not value:
            return 'dict()'
        if all(isinstance(k, str) and k.isidentifier()
               and not keyword.iskeyword(k) for k in value):
            items = [f'{pad}{k}={_format_value(v, indent + 4)}'
                     for k, v in value.items()]
        else:
            items = [f'{pad}{k!r}: {_format_value(v, indent + 4)}'
                     for k, v in value.items()]
            return '{\n' + ',\n'.join(items) + '}'
        return 'dict(\n' + ',\n'.join(items) + ')'
    if isinstance(value, (list, tuple)):
        inner = [_format_value(v, indent + 4) for v in value]
        if isinstance(value, tuple) and len(value) == 1:
            inner[0] += ','
        text = ', '.join(inner)
        brackets = '()' if isinstance(value, tuple) else '[]'
        return brackets[0] + text + brackets[1]
    if isinstance(value, float):
        return repr(value)
    if value is None or isinstance(value, (bool, int, str)):
        return repr(value)
    raise TypeError(f'cannot write {type(value).__name__} into a config')


def format_py_config(variables: Sequence[Tuple[str, Any]],
                     header: str = '') -> str:
    """Render top-level config variables as an mmengine ``.py`` config.

    Args:
        variables (Sequence[tuple[str, Any]]): ``(name, value)`` pairs, in
            order; values are dicts, lists, tuples, str, numbers, None.
        header (str): Comment lines put first (without ``#``).

    Returns:
        str: Python source that ``mmengine.Config.fromfile`` reads back to
        the same values.
    """
    lines = [f'# {line}'.rstrip() for line in header.splitlines()]
    for name, value in variables:
        lines.append(f'{name} = {_format_value(value, 0)}')
    return '\n'.join(lines) + '\n'


def make_num_batches_tracked() -> Tensor:
    """The BatchNorm batch counter that old checkpoints may lack."""
    return torch.tensor(0, dtype=torch.long)

"""The interface between :mod:`.hf_export` and its backbone families.

:mod:`.hf_export` writes the DPT neck and heads; each backbone family
(``hf_export`` itself for ViT and the hybrid, :mod:`.hf_export_beit`,
:mod:`.hf_export_swinv2`, :mod:`.hf_export_dinov2`) gives an
:class:`HFFamily`: its encoder's ``DPTConfig`` fields and weight rules. A
module of its own so that the families and :mod:`.hf_export` import it
without importing each other.
"""
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Sequence, Tuple

from torch import Tensor

from .common import Rule

__all__ = [
    'HFFamily', 'cfg_get', 'hf_stages', 'plain', 'refuse', 'square_size',
    'token_neck_check', 'type_name'
]


def refuse(key: str, value: Any, why: str, model: str = 'DPT') -> ValueError:
    """The error for a setting Transformers cannot express.

    Args:
        key (str): The dpt_mm config key (``backbone.qkv_bias``).
        value: Its value.
        why (str): What Transformers has instead.
        model (str): The Transformers model named (``DPT``, ``DINOv2``,
            ``Depth Anything``).

    Returns:
        ValueError: To raise; the message names ``key``.
    """
    return ValueError(f'{key}={value!r} cannot be expressed in Transformers '
                      f'{model}: {why}')


def cfg_get(cfg: Mapping[str, Any], key: str, default: Any) -> Any:
    """``cfg[key]``, with ``default`` for a missing or None value."""
    value = cfg.get(key, default)
    return default if value is None else value


def type_name(cfg: Mapping[str, Any]) -> str:
    """A config's ``type`` as a string (a class given as type: its name)."""
    kind = cfg.get('type', '')
    return kind if isinstance(kind, str) else kind.__name__


def plain(value: Any) -> Any:
    """Mappings as dicts and sequences as lists, all the way down (for
    comparing configs)."""
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def square_size(value: Any, key: str,
                why: str = 'this backbone takes a square size only',
                model: str = 'DPT') -> int:
    """An int size from an int or a square pair; else refused naming
    ``key``."""
    if isinstance(value, (list, tuple)):
        if len(value) != 2 or value[0] != value[1]:
            raise refuse(key, tuple(value), why, model)
        return int(value[0])
    return int(value)


def hf_stages(
        out_indices: Sequence[int],
        num_stages: int,
        key: str = 'backbone.out_indices') -> Tuple[List[str], List[int]]:
    """``out_features`` and ``out_indices`` of a Transformers backbone.

    Transformers names the embedding output ``stem`` and the output of block
    (or stage) k, 0-based, ``stage{k + 1}``, and returns them in that
    order whatever the listed order.

    Args:
        out_indices (Sequence[int]): Our 0-based hooked blocks or stages.
        num_stages (int): Blocks or stages in all.
        key (str): Config key named in a refusal.

    Returns:
        tuple[list[str], list[int]]: ``out_features``, ``out_indices``.
    """
    indices = [int(i) % num_stages for i in out_indices]
    if indices != sorted(set(indices)):
        raise refuse(
            key, tuple(out_indices), 'its backbones return stages '
            'in increasing order, each once')
    return [f'stage{i + 1}' for i in indices], [i + 1 for i in indices]


def token_neck_check(
        name: str) -> Callable[[Mapping[str, Any], Mapping[str, Any]], None]:
    """The neck check of a token encoder with a class token (BEiT,
    DINOv2): every level goes through the reassemble stage, and a readout
    other than ``'ignore'`` needs the class token.

    Args:
        name (str): The encoder, for the messages.

    Returns:
        callable: ``(backbone_cfg, neck_cfg) -> None`` for
        :attr:`HFFamily.check_neck`.
    """

    def check(backbone: Mapping[str, Any], neck: Mapping[str, Any]) -> None:
        passthrough = tuple(cfg_get(neck, 'passthrough_indices', ()))
        if passthrough:
            raise refuse(
                'neck.passthrough_indices', passthrough,
                f'every {name} level goes through the reassemble '
                'stage')
        readout = cfg_get(neck, 'readout_type', 'project')
        if readout != 'ignore' and not cfg_get(backbone, 'output_cls_token',
                                               True):
            raise refuse('backbone.output_cls_token', False,
                         f'its {readout!r} readout reads the class token')

    return check


def _no_fills(backbone: Mapping[str, Any]) -> Dict[str, Tensor]:
    return {}


@dataclass
class HFFamily:
    """How one backbone family maps onto Transformers.

    Attributes:
        config (Callable): ``(backbone_cfg) -> dict`` of ``DPTConfig``
            fields for the encoder (a separate backbone's
            ``backbone_config`` included); raises ``ValueError`` for
            settings Transformers lacks.
        rules (Callable): ``(backbone_cfg) -> list[Rule]`` renaming the
            ``backbone.*`` keys (qkv already split into query/key/value
            under ``backbone.layers.N.attn.{query,key,value}``).
        check_neck (Callable): ``(backbone_cfg, neck_cfg) -> None``; raises
            ``ValueError`` for neck settings this family's Transformers
            model lacks (which levels pass through, readouts).
        fills (Callable): ``(backbone_cfg) -> dict`` of Transformers
            tensors dpt_mm does not keep (unused by the forward), used when
            the checkpoint does not carry hf2mm's copies.
        tasks (tuple[str]): ``'depth'`` and/or ``'seg'``: the Transformers
            classes that take this encoder.
        output_mode (str): What ``predicted_depth`` (the raw ReLU output)
            stands for in this family's Transformers models, as
            ``DPTDepthHead.output_mode``: relative inverse depth (MiDaS) or
            metric depth (DPT-DINOv2); config.json cannot say which.
    """
    config: Callable[[Mapping[str, Any]], Dict[str, Any]]
    rules: Callable[[Mapping[str, Any]], List[Rule]]
    check_neck: Callable[[Mapping[str, Any], Mapping[str, Any]], None]
    fills: Callable[[Mapping[str, Any]], Dict[str, Tensor]] = _no_fills
    tasks: Tuple[str, ...] = field(default=('depth', 'seg'))
    output_mode: str = 'inverse_depth'

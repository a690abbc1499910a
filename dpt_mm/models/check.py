"""Build-time checks of a model config: unknown keys, wrong types, channels.

:func:`check_model_config` reads a segmentor config and the constructor
signatures of the registered classes it names, and reports every problem
at once, before anything is built: keys a constructor does not take,
values contradicting simple annotations, and a ``DPTNeck`` whose levels or
channels do not fit its backbone or heads.
"""
import difflib
import inspect
from typing import Any, Dict, List, Mapping, Optional, Tuple

from ..utils.arg_types import type_problems as arg_type_problems
from ..utils.config import ConfigError

__all__ = ['ConfigError', 'MODEL_COMPONENTS', 'check_model_config']

# Component slots of a segmentor config that are checked.
MODEL_COMPONENTS = ('data_preprocessor', 'backbone', 'neck', 'decode_head',
                    'auxiliary_head', 'depth_head')
_HEAD_SLOTS = ('decode_head', 'auxiliary_head', 'depth_head')
# Packages whose constructors pass **kwargs on to their base class, so that
# the keys a class accepts can be read from the signatures along its MRO.
_KEY_CHECKED_PACKAGES = ('dpt_mm.', 'mmseg.')


def _lookup_model_class(type_name: Any) -> Optional[type]:
    if inspect.isclass(type_name):
        return type_name
    if not isinstance(type_name, str):
        return None
    from mmseg.registry import MODELS
    try:
        found = MODELS.get(type_name)
    except Exception:  # e.g. a scope prefix whose package is missing
        return None
    return found if inspect.isclass(found) else None


def _init_params(cls: type) -> Tuple[Dict[str, inspect.Parameter], bool]:
    """Keyword parameters ``cls(...)`` accepts, following ``**kwargs``.

    Returns:
        tuple: ``{name: parameter}`` (the subclass's default wins) and
        whether the chain stayed open (``**kwargs`` to an unknown end).
    """
    import torch.nn as nn
    params: Dict[str, inspect.Parameter] = {}
    for klass in cls.__mro__:
        if klass in (object, nn.Module):  # neither takes keyword arguments
            return params, False
        init = klass.__dict__.get('__init__')
        if init is None:
            continue
        try:
            signature = inspect.signature(init)
        except (TypeError, ValueError):
            return params, True
        passes_on = False
        for name, param in list(signature.parameters.items())[1:]:
            if param.kind is param.VAR_KEYWORD:
                passes_on = True
            elif param.kind is not param.VAR_POSITIONAL:
                params.setdefault(name, param)
        if not passes_on:
            return params, False
    return params, True


def _resolved_args(cls: type, cfg: Mapping[str, Any]) -> Dict[str, Any]:
    """The config's arguments completed with the constructor defaults."""
    args = {
        name: param.default
        for name, param in _init_params(cls)[0].items()
        if param.default is not param.empty
    }
    args.update({k: v for k, v in cfg.items() if k != 'type'})
    return args


def _component_problems(path: str, cfg: Mapping[str, Any]
                        ) -> Tuple[List[str], List[str]]:
    """Unknown keys and wrong types of one component config."""
    cls = _lookup_model_class(cfg.get('type'))
    if cls is None:
        return [], []
    owner = f'{path} ({cls.__name__})'
    problems, type_problems = [], []
    params, open_chain = _init_params(cls)
    keys = [k for k in cfg if k not in ('type', '_scope_')]
    if not open_chain and cls.__module__.startswith(_KEY_CHECKED_PACKAGES):
        for key in keys:
            if key not in params:
                close = difflib.get_close_matches(key, list(params), n=1)
                hint = f' (did you mean {close[0]}?)' if close else ''
                problems.append(f'{owner}: unknown key {key!r}{hint}')
    if cls.__module__.startswith('dpt_mm.'):
        # Annotations along the MRO: the first class naming a key owns it.
        seen = set()
        for klass in cls.__mro__:
            init = klass.__dict__.get('__init__')
            if init is None or not klass.__module__.startswith('dpt_mm.'):
                continue
            values = {k: cfg[k] for k in keys if k not in seen}
            type_problems += arg_type_problems(owner, init, values)
            seen.update(inspect.signature(init).parameters)
    return problems, type_problems


def _as_list(value: Any) -> List[Any]:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _backbone_outputs(cfg: Mapping[str, Any]) -> Optional[List[dict]]:
    """What each backbone output is: width, the key setting it, its kind."""
    cls = _lookup_model_class(cfg.get('type'))
    from .backbones import DPTViT, DPTViTHybrid
    if cls is None or not issubclass(cls, DPTViT):
        return None
    args = _resolved_args(cls, cfg)
    outs = []
    if issubclass(cls, DPTViTHybrid):
        widths = list(args['stem_widths'])
        for stage in args['stem_out_indices']:
            outs.append(dict(width=widths[stage],
                             key=f'backbone.stem_widths[{stage}]',
                             source=f'ResNet stage {stage}', kind='stem'))
    # One output per distinct block, in block order (DPTViT.forward).
    kind = 'tokens' if args['output_cls_token'] else 'map'
    for block in sorted(set(args['out_indices'])):
        outs.append(dict(width=args['embed_dims'], key='backbone.embed_dims',
                         source=f'transformer block {block}', kind=kind))
    return outs


def _describe_hooks(cfg: Mapping[str, Any], outs: List[dict]) -> str:
    cls = _lookup_model_class(cfg.get('type'))
    args = _resolved_args(cls, cfg)
    blocks = f'backbone.out_indices={tuple(args["out_indices"])}'
    stems = [o for o in outs if o['kind'] == 'stem']
    if not stems:
        return blocks
    return (f'ResNet stages backbone.stem_out_indices='
            f'{tuple(args["stem_out_indices"])}, then blocks {blocks}')


def _neck_problems(model_cfg: Mapping[str, Any],
                   neck: Mapping[str, Any]) -> List[str]:
    """DPTNeck against the backbone's outputs."""
    backbone = model_cfg.get('backbone')
    outs = _backbone_outputs(backbone) if isinstance(backbone,
                                                     Mapping) else None
    if outs is None:
        return []
    args = _resolved_args(_lookup_model_class(neck['type']), neck)
    levels = len(args['reassemble_channels'])
    in_channels = args['in_channels']
    if len(outs) != levels:
        return [f'neck ({neck["type"]}) has {levels} levels '
                f'(len(neck.reassemble_channels)={levels}) but backbone '
                f'({backbone["type"]}) returns {len(outs)} feature maps '
                f'({_describe_hooks(backbone, outs)})']
    per_level = _as_list(in_channels) if isinstance(
        in_channels, (list, tuple)) else [in_channels] * levels
    if len(per_level) != levels:
        return []  # DPTNeck's constructor reports the lengths
    problems = []
    passthrough = set(args['passthrough_indices'])
    readout = args['readout_type']
    per_level_key = isinstance(in_channels, (list, tuple))
    for level, (width, out) in enumerate(zip(per_level, outs)):
        if width != out['width']:
            # An int in_channels gives one line, not one per level.
            problems.append(
                f'neck.in_channels[{level}]={width} but {out["key"]}='
                f'{out["width"]} (neck level {level} reads the '
                f'{out["source"]} output)' if per_level_key else
                f'neck.in_channels={width} but {out["key"]}={out["width"]} '
                f'(an int neck.in_channels applies to every level)')
        if out['kind'] == 'stem' and level not in passthrough \
                and readout != 'ignore':
            problems.append(
                f'neck level {level} reads {out["source"]} (a feature map '
                f'without class token) but is not in '
                f'neck.passthrough_indices={tuple(sorted(passthrough))}, and '
                f'neck.readout_type={readout!r} needs a class token')
        if out['kind'] != 'stem' and level in passthrough:
            problems.append(
                f'neck.passthrough_indices contains {level}, but neck level '
                f'{level} reads {out["source"]} (1/16 tokens that must be '
                'reassembled); only ResNet stages pass through')
        if out['kind'] == 'map' and level not in passthrough \
                and readout != 'ignore':
            problems.append(
                f'neck.readout_type={readout!r} needs the class token but '
                'backbone.output_cls_token=False')
    # One line per distinct problem (an int in_channels repeats per level).
    return list(dict.fromkeys(problems))


def _head_problems(slot: str, head: Mapping[str, Any], neck_type: str,
                   levels: int, channels: int) -> List[str]:
    """A head reading DPTNeck's fused maps, all ``neck.channels`` wide."""
    from mmseg.models.decode_heads.decode_head import BaseDecodeHead
    cls = _lookup_model_class(head.get('type'))
    if cls is None or not issubclass(cls, BaseDecodeHead):
        return []
    args = _resolved_args(cls, head)
    multi = isinstance(args.get('in_channels'), (list, tuple))
    indices = _as_list(args.get('in_index', -1))
    widths = _as_list(args.get('in_channels'))
    problems = []
    for pos, index in enumerate(indices):
        in_key = f'{slot}.in_index[{pos}]' if multi else f'{slot}.in_index'
        if not -levels <= index < levels:
            problems.append(
                f'{in_key}={index} but neck ({neck_type}) has {levels} '
                f'outputs, indices 0..{levels - 1} ({cls.__name__} reads '
                'one of them)')
    for pos, width in enumerate(widths):
        key = f'{slot}.in_channels[{pos}]' if multi else f'{slot}.in_channels'
        if width != channels:
            problems.append(
                f'{key}={width} but neck.channels={channels} ({cls.__name__} '
                f'reads the fused maps of {neck_type})')
    return problems


def _channel_problems(model_cfg: Mapping[str, Any]) -> List[str]:
    from .necks import DPTNeck
    neck = model_cfg.get('neck')
    if not isinstance(neck, Mapping):
        return []
    neck_cls = _lookup_model_class(neck.get('type'))
    if neck_cls is None or not issubclass(neck_cls, DPTNeck):
        return []
    problems = _neck_problems(model_cfg, neck)
    args = _resolved_args(neck_cls, neck)
    levels, channels = len(args['reassemble_channels']), args['channels']
    for slot in _HEAD_SLOTS:
        for i, head in enumerate(_as_list(model_cfg.get(slot))):
            if isinstance(head, Mapping):
                name = f'{slot}[{i}]' if isinstance(model_cfg.get(slot),
                                                    (list, tuple)) else slot
                problems += _head_problems(name, head, neck['type'], levels,
                                           channels)
    return problems


def check_model_config(model_cfg: Any) -> None:
    """Check a model config before building it; raise naming what is wrong.

    Checked without building anything (so it costs microseconds):

    * every component (``backbone``, ``neck``, heads, their
      ``loss_decode``, ``data_preprocessor``, the segmentor itself): keys
      its constructor does not take (for dpt_mm and mmseg classes, whose
      ``**kwargs`` go to the base class), and for dpt_mm classes values
      whose type contradicts a simple annotation (``embed_dims='768'``);
    * a ``DPTNeck`` against a ``DPTViT`` / ``DPTViTHybrid`` backbone: the
      number of levels against the number of hooks, each level's
      ``in_channels`` against ``embed_dims`` or the ResNet stage width, and
      which levels pass through (ResNet stages) or need a class token;
    * every head (``BaseDecodeHead``) on a ``DPTNeck``: ``in_channels``
      against ``neck.channels`` and ``in_index`` against the levels.

    Components it does not know (unregistered types, other necks) are
    skipped: their own constructor or the registry reports them. A TTA
    wrapper's ``module`` is checked.

    Called by ``DPTDepthEstimator`` / ``DepthSegEstimator`` before they
    build anything (every build path), and for mmseg's ``EncoderDecoder``
    configs by ``tools/train.py``, ``tools/test.py`` and
    :func:`dpt_mm.apis.init_model`.

    Args:
        model_cfg (dict): ``cfg.model``.

    Raises:
        ConfigError: Every problem found, each naming the component and
            key, e.g. ``decode_head.in_channels=128 but neck.channels=256``.
    """
    if not isinstance(model_cfg, Mapping):
        return
    if isinstance(model_cfg.get('module'), Mapping):  # SegTTAModel
        check_model_config(model_cfg['module'])
    components = [('model', model_cfg)]
    for slot in MODEL_COMPONENTS:
        value = model_cfg.get(slot)
        for i, sub in enumerate(_as_list(value)):
            if not isinstance(sub, Mapping):
                continue
            path = f'{slot}[{i}]' if isinstance(value, (list, tuple)) \
                else slot
            components.append((path, sub))
            losses = sub.get('loss_decode')
            for j, loss in enumerate(_as_list(losses)):
                if isinstance(loss, Mapping):
                    index = f'[{j}]' if isinstance(losses, (list, tuple)) \
                        else ''
                    components.append((f'{path}.loss_decode{index}', loss))
    problems, type_problems = [], []
    for path, cfg in components:
        keys, types = _component_problems(path, cfg)
        problems += keys
        type_problems += types
    problems += type_problems
    if not type_problems:
        # Channel checks compare values, so they need the right types.
        try:
            problems += _channel_problems(model_cfg)
        except (TypeError, ValueError, KeyError, IndexError):
            pass  # malformed values: the constructors say more
    if problems:
        raise ConfigError(problems)



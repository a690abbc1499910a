"""Config loading and registry errors that say what is wrong and where.

Also build-time validation of model configs (:func:`check_model_config`)
and of data folders (:func:`check_data_paths`).
"""
import collections.abc
import difflib
import inspect
import numbers
import os.path as osp
import re
import types
import typing
from contextlib import contextmanager
from typing import (Any, Callable, Dict, Iterator, List, Mapping, Optional,
                    Sequence, Tuple, Union)

from mmengine.config import Config

__all__ = [
    'load_config', 'explain_registry_errors', 'close_registry_names',
    'setup_cli_config', 'ConfigError', 'MODEL_COMPONENTS', 'check_arg_types',
    'check_data_paths', 'check_model_config'
]

_NOT_IN_REGISTRY = re.compile(
    r"(?P<name>[\w.]+) is not in the (?:(?P<scope>[\w]+)::)?(?P<registry>\w+)"
    r' registry')


def load_config(config: Union[str, Config],
                cfg_options: Optional[dict] = None) -> Config:
    """Load an mmengine config file and apply ``--cfg-options`` overrides.

    Args:
        config (str | Config): Path of a ``.py`` config or a loaded Config.
        cfg_options (dict, optional): Overrides, ``{'a.b': value}``.

    Returns:
        Config: The merged config.

    Raises:
        FileNotFoundError: If the path does not exist; the message lists the
            configs of the same name under ``configs/`` when there are any.
    """
    if isinstance(config, Config):
        cfg = config
    else:
        if not osp.isfile(config):
            raise FileNotFoundError(_missing_config_message(str(config)))
        cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg


# The repository's configs/ (present in a source checkout, not in a wheel).
REPO_CONFIGS = osp.join(
    osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'configs')


def repo_config_files() -> List[str]:
    """Experiment configs under the repository's ``configs/``, sorted.

    Returns:
        list[str]: Paths, ``_base_`` files excluded; empty outside a
        checkout.
    """
    import glob
    return sorted(p for p in glob.glob(
        osp.join(REPO_CONFIGS, '**', '*.py'), recursive=True)
                  if '_base_' not in p)


def _missing_config_message(path: str) -> str:
    message = f'config file not found: {path}'
    names = [osp.relpath(p, osp.dirname(REPO_CONFIGS))
             for p in repo_config_files()]
    close = difflib.get_close_matches(
        osp.basename(path), [osp.basename(n) for n in names], n=3)
    if close:
        matches = [n for n in names if osp.basename(n) in close]
        message += '; did you mean: ' + ', '.join(matches)
    return message


def close_registry_names(name: str, registry_name: str,
                         n: int = 5) -> List[str]:
    """Registered names of mmseg's ``registry_name`` registry close to name.

    Args:
        name (str): The unknown type name.
        registry_name (str): e.g. ``'model'``, ``'dataset'``, ``'transform'``.
        n (int): Maximum number of suggestions.

    Returns:
        list[str]: Closest registered names, best first.
    """
    from mmseg import registry as mmseg_registry
    candidates = set()
    for value in vars(mmseg_registry).values():
        if getattr(value, 'name', None) == registry_name and hasattr(
                value, 'module_dict'):
            reg = value
            while reg is not None:
                candidates.update(reg.module_dict)
                reg = reg.parent
    lowered = {c.lower(): c for c in candidates}
    close = difflib.get_close_matches(name.lower(), list(lowered), n=n,
                                      cutoff=0.5)
    return [lowered[c] for c in close]


@contextmanager
def explain_registry_errors() -> Iterator[None]:
    """Turn mmengine's "X is not in the registry" into an actionable error.

    Re-raises the KeyError with the registry named and the closest
    registered names, e.g. ``unknown model type 'DPTNek': did you mean
    DPTNeck?``. Other errors pass through unchanged.
    """
    try:
        yield
    except KeyError as err:
        match = _NOT_IN_REGISTRY.search(str(err))
        if match is None:
            raise
        name, registry = match.group('name'), match.group('registry')
        close = close_registry_names(name, registry)
        hint = f'did you mean {", ".join(close)}?' if close else \
            'no similar name is registered'
        extra = '' if name.count('.') else (
            " If it comes from another package, add custom_imports="
            "dict(imports=['that_package']) to the config.")
        raise KeyError(f'unknown {registry} type {name!r} in the '
                       f'{match.group("scope") or "mmseg"}::{registry} '
                       f'registry: {hint}{extra}') from None


def setup_cli_config(cfg: Config, config_path: str, work_dir: Optional[str],
                     launcher: str) -> Config:
    """Settings shared by ``tools/train.py`` and ``tools/test.py``.

    The work dir is taken from the CLI, then the config, then
    ``./work_dirs/<config name>``. Distributed runs without CUDA use the
    gloo backend (NCCL needs GPUs), so ``dist_train.sh`` works on CPU.

    Args:
        cfg (Config): Loaded config, modified in place.
        config_path (str): Path the config was loaded from.
        work_dir (str, optional): ``--work-dir``.
        launcher (str): ``--launcher``.

    Returns:
        Config: ``cfg``.
    """
    cfg.launcher = launcher
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(config_path))[0])
    if launcher != 'none':
        import torch
        if not torch.cuda.is_available():
            env_cfg = cfg.setdefault('env_cfg', {})
            dist_cfg = env_cfg.setdefault('dist_cfg', {})
            dist_cfg['backend'] = 'gloo'
            _cpu_model_wrapper(cfg)
            if launcher == 'pytorch':
                _init_cpu_process_group(dist_cfg)
    return cfg


def _cpu_model_wrapper(cfg: Config) -> None:
    """DDP without ``device_ids``, which must be None for CPU modules.

    mmengine's Runner (0.10.7) passes ``device_ids=[LOCAL_RANK]`` unless the
    ``model_wrapper_cfg`` sets them.
    """
    wrapper = cfg.get('model_wrapper_cfg', None)
    if wrapper is None:
        cfg.model_wrapper_cfg = dict(
            type='MMDistributedDataParallel',
            device_ids=None,
            broadcast_buffers=False,  # mmengine's defaults otherwise
            find_unused_parameters=cfg.get('find_unused_parameters', False))
    elif wrapper.get('type', 'MMDistributedDataParallel') in (
            'MMDistributedDataParallel', 'DistributedDataParallel'):
        wrapper.setdefault('device_ids', None)


def _init_cpu_process_group(dist_cfg: dict) -> None:
    """Join the torchrun process group with gloo, without CUDA.

    mmengine's ``init_dist`` (0.10.7) calls ``torch.cuda.set_device`` before
    ``init_process_group`` whatever the backend, which fails on a machine
    (or a torch build) without CUDA. The Runner skips ``init_dist`` when a
    process group exists, so it is created here first.
    """
    import datetime

    import torch.distributed as torch_dist
    if torch_dist.is_initialized():
        return
    kwargs = {
        k: v
        for k, v in dist_cfg.items() if k not in ('backend', 'init_backend')
    }
    if kwargs.get('timeout') is not None:  # seconds, as mmengine takes it
        kwargs['timeout'] = datetime.timedelta(seconds=kwargs['timeout'])
    torch_dist.init_process_group(backend='gloo', **kwargs)
    global _OWN_CPU_GROUP
    _OWN_CPU_GROUP = True


_OWN_CPU_GROUP = False


def finish_cpu_distributed() -> None:
    """Tear down the gloo group of :func:`setup_cli_config`, after success.

    Left to interpreter exit, a CPU DistributedDataParallel run sometimes
    aborts a rank after it has finished ("terminate called without an
    active exception", exit code -6, so torchrun reports a failure): seen
    with torch 2.13 in about 1 run out of 5, with plain torch DDP too.
    Freeing the DDP model first, then a barrier, then destroying the group
    made 32 runs out of 32 exit cleanly. Call it once the runner is no
    longer referenced, on the success path only (a failed rank must not
    wait in the barrier). Does nothing for groups it did not create.
    """
    global _OWN_CPU_GROUP
    if not _OWN_CPU_GROUP:
        return
    import gc

    import torch.distributed as torch_dist
    _OWN_CPU_GROUP = False
    gc.collect()  # the DDP wrapper (its reducer) must go before the group
    if torch_dist.is_initialized():
        torch_dist.barrier()
        torch_dist.destroy_process_group()


# --------------------------------------------------------------------------
# Build-time validation: unknown keys, wrong types, channels that don't fit
# --------------------------------------------------------------------------
# Component slots of a segmentor config that are checked.
MODEL_COMPONENTS = ('data_preprocessor', 'backbone', 'neck', 'decode_head',
                    'auxiliary_head', 'depth_head')
_HEAD_SLOTS = ('decode_head', 'auxiliary_head', 'depth_head')
# Packages whose constructors pass **kwargs on to their base class, so that
# the keys a class accepts can be read from the signatures along its MRO.
_KEY_CHECKED_PACKAGES = ('dpt_mm.', 'mmseg.')


class ConfigError(TypeError, ValueError):
    """A model config that cannot build, found before anything is built.

    A TypeError and a ValueError, so code that catches what the constructor
    would have raised still catches it.

    Args:
        problems (Sequence[str]): One line per problem, each naming the
            component and the key.
    """

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__(
            f'model config: {len(self.problems)} problem(s) found before '
            'building:\n' + '\n'.join(f'  - {p}' for p in self.problems))


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


_SIMPLE_TYPES = (bool, int, float, str)
# typing.Union, and ``int | None`` on Python >= 3.10.
_UNION_TYPES = (Union, getattr(types, 'UnionType', Union))


def _type_matches(value: Any, annotation: Any) -> Optional[bool]:
    """Whether value fits a simple annotation; None when it can't tell.

    Only int, float, bool, str, None and unions / sequences / tuples of
    them are judged: config dicts and anything richer are left to the
    constructor.
    """
    if annotation is type(None):
        return value is None
    if annotation in _SIMPLE_TYPES:
        if annotation is float:
            return isinstance(value, numbers.Real)
        if annotation is int:
            return isinstance(value, numbers.Integral)
        if annotation is bool:  # 0/1 work wherever a flag is tested
            return isinstance(value, (bool, numbers.Integral))
        return isinstance(value, str)
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in _UNION_TYPES:
        verdicts = [_type_matches(value, arm) for arm in args]
        if any(v is True for v in verdicts):
            return True
        return None if None in verdicts else False
    if origin in (tuple, list, collections.abc.Sequence) and args:
        # Configs give lists where code says tuple (--cfg-options, dumps).
        if not isinstance(value, (list, tuple)):
            return False
        if origin is tuple and args[-1] is not Ellipsis:
            if len(value) != len(args):
                return False
            verdicts = [_type_matches(v, a) for v, a in zip(value, args)]
        else:
            verdicts = [_type_matches(v, args[0]) for v in value]
        if any(v is False for v in verdicts):
            return False
        return None if None in verdicts else True
    return None


def _describe_type(annotation: Any) -> str:
    if annotation is type(None):
        return 'None'
    if annotation in _SIMPLE_TYPES:
        return annotation.__name__
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in _UNION_TYPES:
        return ' or '.join(_describe_type(a) for a in args)
    if origin is tuple and args and args[-1] is not Ellipsis:
        inner = {_describe_type(a) for a in args}
        if len(inner) == 1:
            return f'a sequence of {len(args)} {inner.pop()}'
    if origin in (tuple, list, collections.abc.Sequence) and args:
        return f'a sequence of {_describe_type(args[0])}'
    return getattr(annotation, '__name__', str(annotation))


def _type_problems(owner: str, func: Callable,
                   values: Mapping[str, Any]) -> List[str]:
    try:
        hints = typing.get_type_hints(func)
    except Exception:  # unresolvable annotations: nothing to check
        return []
    problems = []
    for name, value in values.items():
        if name in hints and _type_matches(value, hints[name]) is False:
            problems.append(
                f'{owner}: {name} must be {_describe_type(hints[name])}, '
                f'got {type(value).__name__} {value!r}')
    return problems


def check_arg_types(owner: Any, func: Callable,
                    values: Mapping[str, Any]) -> None:
    """Check constructor arguments against their simple type annotations.

    Meant as the first line of a constructor,
    ``check_arg_types(self, DPTNeck.__init__, locals())``, so that
    ``DPTNeck(reassemble_channels=256)`` fails with the class and the key
    named instead of deep inside torch. Only int / float / bool / str and
    sequences, tuples and unions of them are judged; other annotations and
    names not in the signature are ignored.

    Args:
        owner (str | object): The component (an instance names its class).
        func (Callable): The annotated function, e.g. ``DPTNeck.__init__``.
        values (Mapping[str, Any]): Argument name → value (``locals()``).

    Raises:
        TypeError: Lists each argument of the wrong type.
    """
    name = owner if isinstance(owner, str) else type(owner).__name__
    problems = _type_problems(name, func, values)
    if problems:
        raise TypeError('\n'.join(problems))


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
            type_problems += _type_problems(owner, init, values)
            seen.update(inspect.signature(init).parameters)
    return problems, type_problems


def _as_list(value: Any) -> List[Any]:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _backbone_outputs(cfg: Mapping[str, Any]) -> Optional[List[dict]]:
    """What each backbone output is: width, the key setting it, its kind."""
    cls = _lookup_model_class(cfg.get('type'))
    from ..models.backbones import DPTViT, DPTViTHybrid
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
    from ..models.necks import DPTNeck
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


def check_data_paths(cfg: Config, mode: str = 'train') -> None:
    """Fail before training or testing on a data folder that is not there.

    mmseg's data sets (``NYUDataset``, ``ADE20KDataset``...) only fail when
    the dataloader is built, after the model, with a bare ``os.scandir``
    error. This checks ``data_root``, each ``data_prefix`` folder and
    ``ann_file`` of the dataloaders ``mode`` uses (train: train, and val
    when ``val_cfg`` is set; test: test), through wrappers such as
    ``ConcatDataset``. Remote paths (``s3://``...) are not checked.

    Args:
        cfg (Config): Full config.
        mode (str): ``'train'`` or ``'test'``.

    Raises:
        FileNotFoundError: Names the dataloader, the key and the path.
        ValueError: An image folder or split file lists no sample.
    """
    # Reuses the data-set checker of tools/misc/check_dataset.py.
    from ..datasets.check import (_check_paths_exist, _leaf_dataset_cfgs,
                                  check_not_empty)
    if mode not in ('train', 'test'):
        raise ValueError(f"mode must be 'train' or 'test', got {mode!r}")
    loaders = ['test_dataloader'] if mode == 'test' else ['train_dataloader']
    if mode == 'train' and cfg.get('val_cfg'):
        loaders.append('val_dataloader')
    for loader in loaders:
        dataset = (cfg.get(loader) or {}).get('dataset')
        if not isinstance(dataset, Mapping):
            continue
        for leaf in _leaf_dataset_cfgs(dict(dataset)):
            try:
                _check_paths_exist(leaf)
                check_not_empty(leaf)
            except FileNotFoundError as err:
                raise FileNotFoundError(f'{loader}.dataset: {err}') from None
            except ValueError as err:
                raise ValueError(f'{loader}.dataset: {err}') from None

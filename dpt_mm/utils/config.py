"""Config lookup and registry errors that say what is wrong and where.

The checks of a config's contents live next to what they check: model
topology in :mod:`dpt_mm.models.check`, data folders in
:mod:`dpt_mm.datasets.check`, argument types in
:mod:`dpt_mm.utils.arg_types`.
"""
import difflib
import os.path as osp
import re
from contextlib import contextmanager
from typing import (Any, Iterator, List, Mapping, Optional, Sequence, Tuple,
                    Union)

from mmengine.config import Config
from mmengine.logging import print_log

# Re-exported: components written before the split import it from here.
from .arg_types import check_arg_types  # noqa: F401
from .errors import UserError

__all__ = [
    'load_config', 'explain_registry_errors', 'close_registry_names',
    'setup_cli_config', 'ConfigError', 'RegistryNameError', 'REPO_CONFIGS',
    'repo_config_files', 'tie_schedulers_to_length'
]

# mmengine's KeyError for a type name no registry holds.
NOT_IN_REGISTRY = re.compile(
    r"(?P<name>[\w.]+) is not in the (?:(?P<scope>[\w]+)::)?(?P<registry>\w+)"
    r' registry')


def load_config(config: Union[str, Config],
                cfg_options: Optional[dict] = None) -> Config:
    """Load an mmengine config file and apply ``--cfg-options`` overrides.

    Args:
        config (str | Config): Path of a ``.py`` config or a loaded Config.
        cfg_options (dict, optional): Overrides, ``{'a.b': value}``.

    Returns:
        Config: The merged config. Schedulers that ended with the training
        loop still do when the overrides change its length
        (:func:`tie_schedulers_to_length`).

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
        length = _schedule_length(cfg)
        cfg.merge_from_dict(cfg_options)
        for note in tie_schedulers_to_length(cfg, length):
            print_log(note, logger='current')
    return cfg


def _schedule_length(cfg: Config) -> Optional[Tuple[str, Any]]:
    """``('max_iters', n)`` or ``('max_epochs', n)`` of ``train_cfg``."""
    train_cfg = cfg.get('train_cfg') or {}
    for key in ('max_iters', 'max_epochs'):
        if train_cfg.get(key) is not None:
            return key, train_cfg[key]
    return None


def tie_schedulers_to_length(cfg: Config,
                             before: Optional[Tuple[str, Any]]) -> List[str]:
    """Shorten (or lengthen) the schedulers with the training loop.

    A scheduler that ended where the loop ended (``end == max_iters`` for
    iteration-based schedulers, ``end == max_epochs`` for epoch-based ones)
    is made to end at the new length, so ``--cfg-options
    train_cfg.max_iters=20`` decays PolyLR to its end within the 20
    iterations instead of stopping it at 1/75 of its course. Schedulers
    that end elsewhere (a warm-up) are left alone.

    Args:
        cfg (Config): The config after the overrides, modified in place.
        before (tuple, optional): ``(key, length)`` of ``train_cfg`` before
            the overrides, from ``_schedule_length``.

    Returns:
        list[str]: One line per scheduler changed, for the console.
    """
    after = _schedule_length(cfg)
    if before is None or after is None or before == after \
            or before[0] != after[0]:
        return []
    key, (old, new) = after[0], (before[1], after[1])
    by_epoch = key == 'max_epochs'
    schedulers = cfg.get('param_scheduler') or []
    if isinstance(schedulers, Mapping):
        schedulers = [schedulers]
    notes = []
    for i, scheduler in enumerate(schedulers):
        if not isinstance(scheduler, Mapping) or \
                bool(scheduler.get('by_epoch', True)) != by_epoch:
            continue
        if scheduler.get('end') == old:
            scheduler['end'] = new
            notes.append(f'param_scheduler[{i}] ({scheduler.get("type")}): '
                         f'end {old} -> {new}, with train_cfg.{key}')
    return notes


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

    Re-raises the KeyError as a :class:`RegistryNameError` with the
    registry named and the closest registered names, e.g. ``unknown model
    type 'DPTNek': did you mean DPTNeck?``. Other errors pass through
    unchanged.
    """
    try:
        yield
    except KeyError as err:
        match = NOT_IN_REGISTRY.search(str(err))
        if match is None:
            raise
        name, registry = match.group('name'), match.group('registry')
        close = close_registry_names(name, registry)
        hint = f'did you mean {", ".join(close)}?' if close else \
            'no similar name is registered'
        extra = '' if name.count('.') else (
            " If it comes from another package, add custom_imports="
            "dict(imports=['that_package']) to the config.")
        raise RegistryNameError(f'unknown {registry} type {name!r} in the '
                                f'{match.group("scope") or "mmseg"}::'
                                f'{registry} registry: {hint}{extra}'
                                ) from None


class ConfigError(UserError, TypeError, ValueError):
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


class RegistryNameError(UserError, KeyError):
    """A config names a type that no registry holds.

    A KeyError, as mmengine's own error is. ``str()`` gives the message
    without the quotes KeyError adds.
    """

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ''


def setup_cli_config(cfg: Config, config_path: str, work_dir: Optional[str],
                     launcher: str) -> Config:
    """Settings shared by ``tools/train.py`` and ``tools/test.py``.

    The work dir is taken from the CLI, then the config, then
    ``./work_dirs/<config name>``. Distributed runs on CPU are set up by
    ``tools/cpu_dist.py``.

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
    return cfg

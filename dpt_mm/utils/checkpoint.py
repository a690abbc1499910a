"""Checkpoint loading that never runs code from an untrusted file.

torch >= 2.6 loads with ``weights_only=True`` by default, which refuses the
few Python objects mmengine pickles into its own checkpoints (the message
hub's ``HistoryBuffer`` and numpy arrays/scalars), so ``runner.resume`` fails.
The common fix, ``weights_only=False``, lets a checkpoint run arbitrary code.
Instead we keep the restricted unpickler and allow exactly the extra globals
that checkpoints written by our stack (mmengine 0.10 Runner +
``CheckpointHook``) contain, found by saving a real Runner's checkpoints and
listing what ``weights_only`` refuses:

* ``mmengine.logging.history_buffer.HistoryBuffer``: message hub scalars;
* ``builtins.getattr``: how ``HistoryBuffer`` pickles its statistics methods
  (``getattr(HistoryBuffer, 'mean')``). A raw ``getattr`` would let a crafted
  file walk to any object (``getattr(getattr, '__self__')`` is ``builtins``),
  so a stand-in that only resolves those methods is registered instead;
* ``numpy.ndarray``, ``numpy.dtype``, ``numpy._core.multiarray._reconstruct``
  and ``numpy._core.multiarray.scalar``: arrays inside ``HistoryBuffer`` and
  numpy scalars in the runtime info (``eta``, ``best_score``). numpy 1.x
  spells the module ``numpy.core.multiarray``; both spellings name the same
  object and are accepted;
* the dtype classes of bool, integer and float dtypes
  (``numpy.dtypes.Float64DType``...): never named in the pickle, but the
  restricted unpickler only restores state (BUILD) into allowlisted types,
  and a dtype instance's type is its dtype class. Metrics may hand float32
  or int64 scalars to the message hub, so the whole numeric family is in.

Anything else is refused with :class:`UnsafeCheckpointError`, naming the
file and the type; a raw ``pickle.dump`` file (not written by
``torch.save``) is refused the same way, its types found by reading the
pickle's opcodes without executing them. A trusted file holding other
objects loads with ``trust=True`` or the environment variable
``DPT_MM_TRUST_CHECKPOINTS=1``. PyTorch's advice to retry with
``weights_only=False`` is not passed on. A truncated or corrupt file is a
:class:`CorruptCheckpointError` naming the file and its size.

:func:`register_safe_checkpoint_loader` (called by ``import dpt_mm``) puts
this loader behind mmengine's ``CheckpointLoader`` for local paths and
``http(s)://`` URLs, so ``runner.resume``, ``load_from``,
``mmengine.runner.load_checkpoint`` and ``init_cfg=dict(type='Pretrained')``
all use it.
"""
import json
import os
import os.path as osp
import pickle
import pickletools
import re
import struct
import zipfile
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

import torch

__all__ = [
    'TRUST_ENV_VAR', 'CorruptCheckpointError', 'UnsafeCheckpointError',
    'allowed_checkpoint_globals', 'load_checkpoint_file',
    'register_safe_checkpoint_loader', 'save_checkpoint_file',
    'save_safetensors'
]

TRUST_ENV_VAR = 'DPT_MM_TRUST_CHECKPOINTS'

MapLocation = Union[str, torch.device, Dict[str, str], Callable, None]

# The statistics methods HistoryBuffer registers by default (and pickles).
_HISTORY_BUFFER_METHODS = ('min', 'max', 'current', 'mean')
_GLOBAL_PATTERN = re.compile(r'GLOBAL (\S+)')


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint holds a Python object outside the safe-load allowlist."""


class CorruptCheckpointError(RuntimeError):
    """A checkpoint file is truncated or otherwise unreadable."""


# What torch raises on a file cut short or damaged (zip or legacy format):
# its unpickler reads past the end (IndexError, struct.error), meets a
# broken memo (KeyError) or bytes that do not decode (ValueError).
_CORRUPT_ERRORS = (RuntimeError, EOFError, OSError, zipfile.BadZipFile,
                   pickle.UnpicklingError, IndexError, KeyError, ValueError,
                   struct.error)
# Opcodes that push a string (the module and name of a STACK_GLOBAL).
_STRING_OPCODES = {'SHORT_BINUNICODE', 'BINUNICODE', 'BINUNICODE8',
                   'UNICODE', 'SHORT_BINSTRING', 'BINSTRING', 'STRING'}


_LEGACY_TORCH_MAGIC = 0x1950a86a20f9469cfc6c  # first pickle of old torch.save


def _first_pickle_ops(path: str) -> List[Tuple[str, Any]]:
    """``(opcode name, argument)`` of the first pickle in a file.

    Read with :mod:`pickletools`, which decodes opcodes without executing
    anything; stops at the first error (a truncated or non-pickle file).
    """
    ops: List[Tuple[str, Any]] = []
    try:
        with open(path, 'rb') as file:
            for opcode, arg, _ in pickletools.genops(file):
                ops.append((opcode.name, arg))
    except Exception:  # not (or not all) a pickle: keep what was read
        pass
    return ops


def _pickle_globals(path: str) -> List[str]:
    """Globals a raw pickle file names, read from its opcodes only.

    The strings of a protocol-4 ``STACK_GLOBAL`` are tracked through the
    memo.

    Args:
        path (str): A file written by ``pickle.dump``.

    Returns:
        list[str]: ``module.name`` of each global, in order, without
        repeats; empty for a file that is not a readable pickle.
    """
    found: List[str] = []
    memo: Dict[int, Any] = {}
    pushed: List[Any] = []
    for name, arg in _first_pickle_ops(path):
        if name in ('GLOBAL', 'INST'):
            found.append(str(arg).replace(' ', '.'))
        elif name == 'STACK_GLOBAL' and len(pushed) >= 2:
            found.append(f'{pushed[-2]}.{pushed[-1]}')
        if name in _STRING_OPCODES:
            pushed.append(arg)
        elif name == 'MEMOIZE':
            memo[len(memo)] = pushed[-1] if pushed else None
        elif name in ('PUT', 'BINPUT', 'LONG_BINPUT'):
            memo[int(arg)] = pushed[-1] if pushed else None
        elif name in ('GET', 'BINGET', 'LONG_BINGET'):
            pushed.append(memo.get(int(arg)))
        elif name != 'FRAME':
            pushed.append(None)
    return list(dict.fromkeys(g for g in found if 'None' not in g))


def _is_raw_pickle(source: str) -> bool:
    """Whether ``source`` is a complete ``pickle.dump`` file.

    ``torch.save`` writes a zip, or (legacy format) a first pickle holding
    only its magic number.
    """
    if not osp.isfile(source) or zipfile.is_zipfile(source):
        return False
    ops = _first_pickle_ops(source)
    return bool(ops) and ops[-1][0] == 'STOP' and (
        _LEGACY_TORCH_MAGIC not in [arg for _, arg in ops])


def _short_reason(error: BaseException) -> str:
    """The first line of torch's error, never its weights_only advice."""
    lines = [line.strip() for line in str(error).splitlines()
             if line.strip() and 'weights_only' not in line
             and 'Weights only load failed' not in line]
    return f'{type(error).__name__}: {lines[0] if lines else "no details"}'


def _history_buffer_getattr(obj: Any, name: str) -> Any:
    """``getattr`` restricted to what a pickled ``HistoryBuffer`` needs."""
    from mmengine.logging import HistoryBuffer
    if obj is HistoryBuffer and name in _HISTORY_BUFFER_METHODS:
        return getattr(obj, name)
    target = 'getattr' if obj is _history_buffer_getattr else getattr(
        obj, '__qualname__', type(obj).__qualname__)
    # Same wording as torch's refusal (and no spaces in the name) so one
    # pattern extracts the name.
    raise pickle.UnpicklingError(
        f'Unsupported global: GLOBAL builtins.getattr({target},{name!r}) '
        'was not an allowed global by default.')


def allowed_checkpoint_globals() -> List[Tuple[Any, str]]:
    """The globals, beyond torch's defaults, that safe loading accepts.

    Returns:
        list[tuple[object, str]]: ``(object, name in the pickle)`` pairs for
        ``torch.serialization.safe_globals``.
    """
    import numpy as np
    from mmengine.logging import HistoryBuffer
    try:
        from numpy._core import multiarray
    except ImportError:  # numpy < 1.26 has no ``numpy._core``
        from numpy.core import multiarray
    allowed = [
        (HistoryBuffer, 'mmengine.logging.history_buffer.HistoryBuffer'),
        (_history_buffer_getattr, 'builtins.getattr'),
        (np.ndarray, 'numpy.ndarray'),
        (np.dtype, 'numpy.dtype'),
    ]
    for module in ('numpy._core.multiarray', 'numpy.core.multiarray'):
        allowed.append((multiarray._reconstruct, f'{module}._reconstruct'))
        allowed.append((multiarray.scalar, f'{module}.scalar'))
    # Not object, string or structured dtypes: checkpoints never hold them.
    numeric = np.typecodes['AllInteger'] + np.typecodes['Float'] + '?'
    for dtype_class in {type(np.dtype(code)) for code in numeric}:
        allowed.append((dtype_class, f'numpy.dtypes.{dtype_class.__name__}'))
    return allowed


def _trust_requested(trust: bool) -> bool:
    return trust or os.environ.get(TRUST_ENV_VAR) == '1'


def _guarded_load(load: Callable[[bool], Any], source: str,
                  trust: bool) -> Any:
    """Run ``load(weights_only)`` safely unless the caller trusts ``source``.

    Args:
        load (Callable[[bool], Any]): Calls ``torch.load`` (or a wrapper of
            it) with the given ``weights_only``.
        source (str): File or URL, for the error message.
        trust (bool): Unpickle without restriction.

    Returns:
        Any: The loaded object.
    """
    if _trust_requested(trust):
        return _named_corruption(lambda: load(False), source)
    # A context, not add_safe_globals: the allowlist must not leak into
    # other torch.load calls of the process.
    with torch.serialization.safe_globals(allowed_checkpoint_globals()):
        try:
            return _named_corruption(lambda: load(True), source)
        except pickle.UnpicklingError as error:
            found = _GLOBAL_PATTERN.search(str(error))
            if found:
                name = found.group(1)
                if '.' not in name.split('(')[0]:
                    name = f'builtins.{name}'  # torch drops the prefix
                what = (f'it contains the global "{name}", which is not on '
                        "dpt_mm's allowlist of types that mmengine "
                        'checkpoints hold, and unpickling it')
            elif _is_raw_pickle(source):
                names = _pickle_globals(source)
                shown = ', '.join(f'"{n}"' for n in names[:8]) + (
                    ', ...' if len(names) > 8 else '')
                what = ('it is a raw pickle (written by pickle.dump, not '
                        'torch.save) ' +
                        (f'holding {shown}' if names else
                         'holding no named types') +
                        ', which torch\'s restricted unpickler does not '
                        'read; re-save it with torch.save, since unpickling '
                        'it without restriction')
            else:
                what = (f'torch\'s restricted unpickler refused it '
                        f'({_short_reason(error)}), and unpickling it '
                        'without restriction')
            # Not "from error": torch's message advises weights_only=False.
            raise UnsafeCheckpointError(
                f'Refusing to load checkpoint "{source}": {what} '
                'could run arbitrary code. If you trust this file, load it '
                'with dpt_mm.utils.load_checkpoint_file(path, trust=True) or '
                f'set the environment variable {TRUST_ENV_VAR}=1.') from None


def _named_corruption(load: Callable[[], Any], source: str) -> Any:
    """Run ``load``; a truncated or damaged file raises naming ``source``.

    Refusals of unsafe content (an ``UnpicklingError`` naming a global, or
    any error of a raw pickle) pass through for :func:`_guarded_load`.
    """
    try:
        return load()
    except (PermissionError, IsADirectoryError, FileNotFoundError):
        raise
    except _CORRUPT_ERRORS as error:
        if isinstance(error, pickle.UnpicklingError) and (
                _GLOBAL_PATTERN.search(str(error)) or _is_raw_pickle(source)):
            raise
        size = (f'{osp.getsize(source)} bytes' if osp.isfile(source) else
                'size unknown')
        raise CorruptCheckpointError(
            f'cannot read checkpoint "{source}" ({size}): it is truncated or '
            'corrupt, e.g. a copy or download that did not finish or a save '
            f'that was interrupted ({_short_reason(error)}).') from None


def load_checkpoint_file(path: str,
                         map_location: MapLocation = 'cpu',
                         trust: bool = False) -> Any:
    """Load a local checkpoint without letting it run code.

    The file is read with ``torch.load(weights_only=True)`` plus the globals
    from :func:`allowed_checkpoint_globals` (what mmengine's own checkpoints
    contain). The allowlist is active only during this call.

    Trusting a file (full pickle, which can execute code from the file) is
    opt-in, in one of two ways:

    * ``trust=True`` for this call;
    * the environment variable ``DPT_MM_TRUST_CHECKPOINTS=1``, which also
      covers loads that go through mmengine (``resume``, ``load_from``,
      ``init_cfg=dict(type='Pretrained', ...)``), where no argument can be
      passed.

    A safetensors file (recognised by its content, whatever its name) holds
    no code and is read as such; see :func:`save_checkpoint_file`.

    Args:
        path (str): Checkpoint path; ``~`` is expanded.
        map_location (str | torch.device | dict | Callable | None): As in
            :func:`torch.load`. Defaults to ``'cpu'``.
        trust (bool): Unpickle without restriction. Only for files from a
            source you trust. Defaults to False.

    Returns:
        Any: The checkpoint, usually a dict with ``state_dict``.

    Raises:
        FileNotFoundError: ``path`` is not a file.
        UnsafeCheckpointError: The file holds a global outside the allowlist
            and is not trusted; the message names the file and the global.
        CorruptCheckpointError: The file is truncated or damaged; the
            message names it and its size.
    """
    path = osp.expanduser(path)
    if not osp.isfile(path):
        raise FileNotFoundError(f'{path} can not be found.')
    if _is_safetensors(path):
        return _load_safetensors_checkpoint(path, map_location)
    return _guarded_load(
        lambda weights_only: torch.load(
            path, map_location=map_location, weights_only=weights_only),
        path, trust)


def load_from_safe_local(filename: str,
                         map_location: MapLocation = None) -> Any:
    """mmengine ``CheckpointLoader`` scheme for local paths.

    The name follows mmengine's ``load_from_<backend>`` convention, which its
    log message slices.

    Args:
        filename (str): Local checkpoint path.
        map_location (str | torch.device | dict | Callable | None): As in
            :func:`torch.load`.

    Returns:
        Any: The loaded checkpoint.
    """
    return load_checkpoint_file(filename, map_location=map_location)


def load_from_safe_http(filename: str,
                        map_location: MapLocation = None,
                        model_dir: Optional[str] = None) -> Any:
    """mmengine ``CheckpointLoader`` scheme for ``http(s)://`` URLs.

    mmengine's own HTTP loader calls ``torch.hub.load_state_dict_from_url``,
    whose default is ``weights_only=False``: a downloaded file could run
    code. This one downloads the same way (rank 0 first, into the torch hub
    cache) and unpickles with the allowlist.

    Args:
        filename (str): URL of the checkpoint.
        map_location (str | torch.device | dict | Callable | None): As in
            :func:`torch.load`.
        model_dir (str, optional): Download directory. Defaults to the torch
            hub cache.

    Returns:
        Any: The loaded checkpoint.
    """
    from mmengine.dist import barrier, get_dist_info

    def load(weights_only: bool) -> Any:
        return torch.hub.load_state_dict_from_url(
            filename,
            model_dir=model_dir,
            map_location=map_location,
            progress=False,
            weights_only=weights_only)

    rank, world_size = get_dist_info()
    # Rank 0 downloads, the others then read its cached copy.
    if rank == 0:
        checkpoint = _guarded_load(load, filename, trust=False)
    if world_size > 1:
        barrier()
        if rank > 0:
            checkpoint = _guarded_load(load, filename, trust=False)
    return checkpoint


def register_safe_checkpoint_loader() -> None:
    """Route mmengine's local and HTTP checkpoint loading through this module.

    Overrides mmengine's ``''`` (any local path) and ``http://`` /
    ``https://`` schemes of ``CheckpointLoader``. Other schemes
    (``open-mmlab://``, ``s3://``...) keep mmengine's loaders, which call
    ``torch.load`` with torch's own ``weights_only=True`` default. Safe to
    call more than once.
    """
    # Import first: mmengine registers its default schemes at import time
    # and would refuse them (KeyError) if ours were already in place.
    from mmengine.runner.checkpoint import CheckpointLoader
    CheckpointLoader.register_scheme(
        prefixes='', loader=load_from_safe_local, force=True)
    CheckpointLoader.register_scheme(
        prefixes=('http://', 'https://'),
        loader=load_from_safe_http,
        force=True)


# --------------------------------------------------------------------------
# safetensors: tensors only, plus a JSON string per metadata entry. An
# mmengine-style checkpoint {'state_dict', 'meta', <other tensor dicts>} is
# stored as the state dict's tensors under their own names, the other
# tensor dicts as '<group>::<key>', and meta as JSON.
_META_KEY = 'dpt_mm_meta'
_GROUP_SEP = '::'


def _is_safetensors(path: str) -> bool:
    """A safetensors file: 8-byte little-endian header length, then JSON."""
    with open(path, 'rb') as f:
        head = f.read(9)
    if len(head) < 9:
        return False
    size = int.from_bytes(head[:8], 'little')
    return head[8:9] == b'{' and 8 + size <= osp.getsize(path)


def _load_safetensors_checkpoint(path: str, map_location: MapLocation) -> Any:
    from safetensors import safe_open
    from safetensors.torch import load_file
    device = map_location if isinstance(map_location,
                                        (str, torch.device)) else 'cpu'
    tensors = load_file(path, device=str(device))
    with safe_open(path, framework='pt') as f:
        metadata = f.metadata() or {}
    if _META_KEY not in metadata and not any(_GROUP_SEP in k
                                             for k in tensors):
        return tensors  # a plain state dict (e.g. from another tool)
    checkpoint: Dict[str, Any] = dict(state_dict={})
    for key, value in tensors.items():
        group, sep, name = key.partition(_GROUP_SEP)
        if sep:
            checkpoint.setdefault(group, {})[name] = value
        else:
            checkpoint['state_dict'][key] = value
    if _META_KEY in metadata:
        checkpoint['meta'] = json.loads(metadata[_META_KEY])
    return checkpoint


def save_safetensors(tensors: Dict[str, torch.Tensor], path: str,
                     metadata: Optional[Dict[str, str]] = None) -> None:
    """Write tensors to a safetensors file (shared storage is copied).

    Args:
        tensors (dict[str, Tensor]): Name → tensor.
        path (str): Output file.
        metadata (dict[str, str], optional): String metadata.
    """
    from safetensors.torch import save_file
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    save_file({k: v.detach().cpu().contiguous().clone()
               for k, v in tensors.items()}, path, metadata=metadata)


def save_checkpoint_file(checkpoint: Dict[str, Any], path: str) -> None:
    """Save a checkpoint as safetensors (``.safetensors``) or with torch.

    For safetensors, ``checkpoint`` may hold ``state_dict``, ``meta``
    (JSON-serialisable) and other dicts of tensors; nothing else.

    Args:
        checkpoint (dict): ``{'state_dict': ..., 'meta': ...}``.
        path (str): Output file; its extension picks the format.

    Raises:
        ValueError: A safetensors checkpoint with a value it cannot hold;
            the message names the key.
    """
    if not path.endswith('.safetensors'):
        os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
        torch.save(checkpoint, path)
        return
    tensors: Dict[str, torch.Tensor] = {}
    for group, value in checkpoint.items():
        if group == 'meta':
            continue
        if not isinstance(value, dict) or not all(
                isinstance(v, torch.Tensor) for v in value.values()):
            raise ValueError(f'checkpoint[{group!r}] is not a dict of '
                             f'tensors: it cannot be saved to {path}')
        for key, tensor in value.items():
            name = key if group == 'state_dict' else \
                f'{group}{_GROUP_SEP}{key}'
            tensors[name] = tensor
    metadata = {'format': 'pt'}
    if checkpoint.get('meta') is not None:
        metadata[_META_KEY] = json.dumps(checkpoint['meta'], default=str)
    save_safetensors(tensors, path, metadata)

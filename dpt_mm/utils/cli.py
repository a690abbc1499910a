"""How every tool in ``tools/`` fails: a message and a hint, no traceback.

A user's mistake (a config typo, a missing file, a checkpoint for another
model) ends a tool with::

    error: config file not found: configs/dpt_vitl_ade2k.py; did you mean ...
    hint: check the path; configs/ lists the configs that exist
    (run with --debug to see the traceback)

on stderr and exit code 2. Anything else is a bug and keeps its traceback
(exit code 1), as does every error under ``--debug``. Each tool parses its
arguments before importing anything slow (``--help`` is instant) and ends
with::

    if __name__ == '__main__':
        try:
            sys.exit(main())
        except Exception as error:
            from dpt_mm.utils.cli import exit_if_user_error
            exit_if_user_error(error)
            raise

This module is imported only after a failure, so it costs nothing before.
"""
import errno
import importlib
import sys
from typing import List, Optional, Sequence, Tuple

from .config import NOT_IN_REGISTRY
from .errors import UserError

__all__ = ['EXIT_USER_ERROR', 'describe_user_error', 'exit_if_user_error']

EXIT_USER_ERROR = 2

# User errors defined outside utils (or before UserError existed), by
# module and class name: looked up only after a failure, so importing this
# module stays cheap and pulls no upper layer in.
_KNOWN_USER_ERRORS: Tuple[Tuple[str, str, str], ...] = (
    ('dpt_mm.compat.mmcv', 'MissingCompiledOpError',
     'install the full mmcv build, or use a config without that op'),
    ('dpt_mm.utils.checkpoint', 'UnsafeCheckpointError',
     'if you trust the file, set DPT_MM_TRUST_CHECKPOINTS=1'),
    ('dpt_mm.utils.checkpoint', 'CorruptCheckpointError',
     'the file is cut short or not a checkpoint: write or download it again'),
    ('dpt_mm.converters.common', 'CheckpointMismatchError',
     'the checkpoint was made for another model: use its config, or '
     'convert it with tools/model_converters/'),
    ('dpt_mm.datasets.transforms.loading', 'DataFileError',
     'python tools/misc/check_dataset.py CONFIG lists every bad file'),
    ('dpt_mm.engine.runner', 'ResumeError',
     'resume from another checkpoint, or start without --resume'),
    ('dpt_mm.engine.work_dir_lock', 'WorkDirLockedError',
     'wait for the other run, or give this one another --work-dir'),
)
_OS_ERRORS = (FileNotFoundError, IsADirectoryError, NotADirectoryError,
              PermissionError)
_HINTS = {
    'ConfigError': 'fix these keys in the config or with --cfg-options',
    'RegistryNameError': 'fix the type name in the config',
    'KeyError': 'fix the type name in the config, or add the package that '
    "registers it to custom_imports=dict(imports=[...])",
    'FileNotFoundError': 'check the path',
    'IsADirectoryError': 'give a file, not a folder',
    'NotADirectoryError': 'give a folder, not a file',
    'PermissionError': 'check the permissions of the path',
}


def _loaded_class(module: str, name: str) -> Optional[type]:
    # Only modules already imported: an error of a class never loaded
    # cannot have been raised.
    if module not in sys.modules:
        return None
    return getattr(importlib.import_module(module), name, None)


def describe_user_error(err: BaseException) -> Optional[List[str]]:
    """The message and hint of an error the user can fix, else None.

    User errors are :class:`~dpt_mm.utils.errors.UserError` subclasses,
    dpt_mm's other input errors (``CheckpointMismatchError``,
    ``UnsafeCheckpointError``, ``MissingCompiledOpError``,
    ``DataFileError``...), missing files and folders, a full disk, and
    mmengine's "X is not in the registry" KeyError.

    Args:
        err (BaseException): The error a tool's ``main`` raised.

    Returns:
        list[str] | None: ``[message, hint]`` (the hint may be empty), or
        None for an error that is a bug and keeps its traceback.
    """
    if isinstance(err, UserError):
        hint = err.hint
    elif isinstance(err, OSError) and err.errno == errno.ENOSPC:
        hint = 'free some disk space, or use another --work-dir'
    elif isinstance(err, _OS_ERRORS) or (
            isinstance(err, KeyError) and NOT_IN_REGISTRY.search(str(err))):
        hint = None
    else:
        known = [hint for module, name, hint in _KNOWN_USER_ERRORS
                 if isinstance(err, _loaded_class(module, name) or ())]
        if not known:
            return None
        hint = known[0]
    if hint is None:
        hint = next((_HINTS[k.__name__] for k in type(err).__mro__
                     if k.__name__ in _HINTS), '')
    message = str(err.args[0]) if isinstance(err, KeyError) and \
        not isinstance(err, UserError) and err.args else str(err)
    return [message, hint]


def exit_if_user_error(error: BaseException,
                       argv: Optional[Sequence[str]] = None) -> None:
    """End the process with a short message if error is the user's.

    Called from a tool's ``except`` clause, which re-raises when this
    returns (a bug, or ``--debug`` on the command line), so the traceback
    is Python's own.

    Args:
        error (BaseException): What the tool's ``main`` raised.
        argv (Sequence[str], optional): The command line, to look for
            ``--debug``; ``sys.argv`` when None.

    Raises:
        SystemExit: Code 2 after printing ``error:`` and ``hint:`` lines
            on stderr, for a user error without ``--debug``.
    """
    if '--debug' in (sys.argv if argv is None else argv):
        return
    described = describe_user_error(error)
    if described is None:
        return
    message, hint = described
    print(f'error: {message}', file=sys.stderr)
    if hint:
        print(f'hint: {hint}', file=sys.stderr)
    print('(run with --debug to see the traceback)', file=sys.stderr)
    sys.exit(EXIT_USER_ERROR)

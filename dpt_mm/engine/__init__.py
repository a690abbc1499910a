from . import hooks, optimizers  # noqa: F401
from .runner import DPTRunner, ResumeError, load_state_dict_partially
from .work_dir_lock import LOCK_FILENAME, WorkDirLock, WorkDirLockedError

__all__ = [
    'DPTRunner', 'LOCK_FILENAME', 'ResumeError', 'WorkDirLock',
    'WorkDirLockedError', 'hooks', 'load_state_dict_partially', 'optimizers'
]

from .arg_types import check_arg_types
from .checkpoint import (TRUST_ENV_VAR, UnsafeCheckpointError,
                         allowed_checkpoint_globals, load_checkpoint_file,
                         register_safe_checkpoint_loader,
                         save_checkpoint_file, save_safetensors)
from .config import (ConfigError, RegistryNameError, close_registry_names,
                     explain_registry_errors, load_config, setup_cli_config)
from .device import bf16_supported  # noqa: F401
from .errors import InputError, UserError

# `import dpt_mm` imports this package first, so every mmengine checkpoint
# load of the process (resume, load_from, Pretrained init) is safe from then.
register_safe_checkpoint_loader()

__all__ = [
    'TRUST_ENV_VAR', 'UnsafeCheckpointError', 'allowed_checkpoint_globals',
    'load_checkpoint_file', 'register_safe_checkpoint_loader',
    'save_checkpoint_file', 'save_safetensors', 'close_registry_names',
    'explain_registry_errors', 'load_config', 'setup_cli_config',
    'ConfigError', 'InputError', 'RegistryNameError', 'UserError',
    'check_arg_types'
]

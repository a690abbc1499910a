from . import backbones, decode_heads, losses, necks, segmentors  # noqa: F401
from .check import MODEL_COMPONENTS, ConfigError, check_model_config

__all__ = [
    'MODEL_COMPONENTS', 'ConfigError', 'backbones', 'check_model_config',
    'decode_heads', 'losses', 'necks', 'segmentors'
]

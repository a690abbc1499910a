from . import backbones, decode_heads, losses, necks, segmentors  # noqa: F401

__all__ = ['backbones', 'decode_heads', 'losses', 'necks', 'segmentors']

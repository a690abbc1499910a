"""Compatibility with what is installed: mmcv-lite without compiled ops.

The bottom layer of the package: imports nothing from dpt_mm, and
``import dpt_mm`` applies it before anything imports ``mmseg.models``.
"""
from .mmcv import MissingCompiledOpError, apply_mmcv_compat, has_compiled_ops

__all__ = ['MissingCompiledOpError', 'apply_mmcv_compat', 'has_compiled_ops']

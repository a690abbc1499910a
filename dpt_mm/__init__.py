"""dpt_mm: Dense Prediction Transformers as an OpenMMLab (mmseg 1.x) plugin.

``import dpt_mm`` registers every component into mmseg's registries, so a
config only needs ``custom_imports = dict(imports=['dpt_mm'])``.
"""
# The compat shim must run before anything imports mmseg.models.
from .compat import apply_mmcv_compat

apply_mmcv_compat()

from . import datasets, engine, evaluation, models, visualization  # noqa: E402,F401,I001
from .version import __version__  # noqa: E402

__all__ = ['__version__', 'datasets', 'engine', 'evaluation', 'models',
           'visualization']

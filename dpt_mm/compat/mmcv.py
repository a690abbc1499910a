"""Make mmseg importable on ``mmcv-lite`` (no compiled ``mmcv._ext``).

``import mmseg.models`` imports ``mmcv.ops`` at module level (for
``point_sample``, ``sigmoid_focal_loss``...), and ``mmcv.ops`` loads the
compiled extension on import. DPT needs none of those ops, so on a build
without ``mmcv._ext`` we register a stand-in ``mmcv.ops`` package before the
first mmseg import:

* pure-PyTorch ops (``point_sample`` and friends) are the real mmcv code,
  loaded from ``mmcv/ops/point_sample.py`` which has no compiled dependency;
* every other name resolves to a placeholder that raises
  :class:`MissingCompiledOpError` naming the op when it is called or
  instantiated, so a user sees what to install instead of a deep traceback.

With a full mmcv build (``mmcv._ext`` importable) nothing is touched.
"""
import importlib.util
import os.path as osp
import sys
import types
from typing import Any

__all__ = ['MissingCompiledOpError', 'apply_mmcv_compat', 'has_compiled_ops']

_PURE_PYTHON_OP_FILES = ('point_sample', )
_SHIM_MARKER = '__dpt_mm_shim__'


class MissingCompiledOpError(RuntimeError):
    """Raised when an op that needs the compiled mmcv build is used."""


def has_compiled_ops() -> bool:
    """Whether the installed mmcv ships its compiled extension."""
    return importlib.util.find_spec('mmcv._ext') is not None


def _missing_op(name: str) -> Any:
    message = (f'mmcv.ops.{name} needs the compiled mmcv build, but only '
               'mmcv-lite is installed (no mmcv._ext). DPT does not use it; '
               'if your config does, install the full "mmcv>=2.0.0,<2.2.0" '
               'package built for your torch version.')

    class _Missing:

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            raise MissingCompiledOpError(message)

        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            raise MissingCompiledOpError(message)

        @classmethod
        def apply(cls, *args: Any, **kwargs: Any) -> Any:
            raise MissingCompiledOpError(message)

    _Missing.__name__ = _Missing.__qualname__ = name
    return _Missing


class _OpsShim(types.ModuleType):
    """Stand-in for ``mmcv.ops`` whose unknown attributes are placeholders."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith('__'):
            raise AttributeError(name)
        placeholder = _missing_op(name)
        setattr(self, name, placeholder)
        return placeholder


def _load_pure_python_ops(shim: types.ModuleType, mmcv_dir: str) -> None:
    for stem in _PURE_PYTHON_OP_FILES:
        path = osp.join(mmcv_dir, 'ops', f'{stem}.py')
        if not osp.isfile(path):
            continue
        spec = importlib.util.spec_from_file_location(f'mmcv.ops.{stem}',
                                                      path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        setattr(shim, stem, module)
        for key, value in vars(module).items():
            if not key.startswith('_') and callable(value):
                setattr(shim, key, value)


def apply_mmcv_compat() -> bool:
    """Install the ``mmcv.ops`` stand-in when the compiled ops are missing.

    Safe to call many times; a no-op with a full mmcv build.

    Returns:
        bool: True if the stand-in is (now) in place, False if the real
        compiled ``mmcv.ops`` is used.
    """
    existing = sys.modules.get('mmcv.ops')
    if existing is not None:
        return bool(getattr(existing, _SHIM_MARKER, False))
    if has_compiled_ops():
        return False
    import mmcv

    shim = _OpsShim('mmcv.ops')
    setattr(shim, _SHIM_MARKER, True)
    shim.__path__ = []  # a package, so `import mmcv.ops.x` goes through us
    shim.__file__ = __file__
    sys.modules['mmcv.ops'] = shim
    mmcv.ops = shim
    _load_pure_python_ops(shim, osp.dirname(mmcv.__file__))
    # Submodules imported by path (`from mmcv.ops.multi_scale_deform_attn
    # import X`) resolve to placeholder modules too.
    sys.meta_path.insert(0, _SubmoduleFinder())
    return True


class _SubmoduleFinder:
    """Meta-path finder: ``mmcv.ops.<anything>`` becomes a placeholder."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None):
        if not fullname.startswith('mmcv.ops.') or fullname in sys.modules:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec: Any) -> types.ModuleType:
        return _OpsShim(spec.name)

    def exec_module(self, module: types.ModuleType) -> None:
        pass

"""Whether dpt_mm's CPU kernels may run: plain eager execution."""
import torch

__all__ = ['is_eager']


def is_eager() -> bool:
    """False while tracing, scripting, exporting to ONNX or compiling.

    The custom CPU paths (:class:`~dpt_mm.models.layers.Linear`,
    :class:`~dpt_mm.models.layers.Conv2d`'s banded weight gradient,
    :class:`~dpt_mm.models.layers.Dropout`'s mask) are autograd Functions
    or NumPy calls that exporters and compilers cannot follow; there they
    fall back to the plain op.

    Returns:
        bool: True in eager mode.
    """
    return not (torch.jit.is_tracing() or torch.jit.is_scripting()
                or torch.onnx.is_in_onnx_export()
                or torch.compiler.is_compiling())

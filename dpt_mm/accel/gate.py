"""When an accelerator kernel may run instead of the plain op."""
import torch
from torch import Tensor

__all__ = ['is_eager', 'cpu_float32']


def is_eager() -> bool:
    """False while compiling, exporting, tracing or scripting.

    ``torch.compiler.is_compiling()`` comes first: dynamo (``torch.compile``
    and ``torch.export``) folds it to a constant, so nothing after it is
    traced and the accelerated module compiles like its plain base class,
    without a graph break.

    Returns:
        bool: True in plain eager execution.
    """
    if torch.compiler.is_compiling():
        return False
    return not (torch.jit.is_tracing() or torch.jit.is_scripting()
                or torch.onnx.is_in_onnx_export())


def cpu_float32(*tensors: Tensor) -> bool:
    """Whether every tensor is a CPU float32 one and CPU autocast is off.

    Args:
        *tensors (Tensor): The op's inputs (None entries are skipped).

    Returns:
        bool: True where the CPU float32 kernels apply.
    """
    return (not torch.is_autocast_enabled('cpu') and all(
        t.device.type == 'cpu' and t.dtype == torch.float32
        for t in tensors if t is not None))

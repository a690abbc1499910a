"""What the compute device supports."""
import torch

__all__ = ['bf16_supported']


def bf16_supported(device_type: str = 'cpu') -> bool:
    """Whether bf16 matmuls/convolutions are native on this device.

    On CPU that needs AVX512-BF16 or AMX (oneDNN reports it); elsewhere
    bf16 is emulated and slower than float32.

    Args:
        device_type (str): ``'cpu'``, ``'cuda'``...

    Returns:
        bool: True if bf16 runs natively.
    """
    if device_type == 'cuda':
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device_type != 'cpu':
        return False
    return bool(torch.backends.mkldnn.is_available()
                and torch.ops.mkldnn._is_mkldnn_bf16_supported())

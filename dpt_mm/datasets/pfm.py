"""Reader and writer for PFM (Portable Float Map) files.

PFM is the float image format of Middlebury, Sintel, BlendedMVS and MiDaS
outputs. A file is a text header followed by raw float32 samples::

    Pf            <- 'Pf' one channel, 'PF' three channels
    W H           <- width and height
    -1.0          <- scale; its sign is the byte order: < 0 little-endian
    <W*H*C float32 samples, rows from the BOTTOM of the image to the top>

The absolute value of the scale is an arbitrary factor that some writers use
for units; it is returned but never applied to the samples.
"""
import re
from typing import Tuple

import numpy as np

__all__ = ['decode_pfm', 'encode_pfm', 'read_pfm', 'write_pfm']

# Magic, width, height, scale, then exactly one whitespace byte (the spec's
# separator) before the samples begin.
_HEADER = re.compile(
    rb'\A(PF|Pf)\s+(\d+)\s+(\d+)\s+([-+]?[0-9.]+(?:[eE][-+]?\d+)?)\s')


def decode_pfm(data: bytes) -> Tuple[np.ndarray, float]:
    """Decode the bytes of a PFM file.

    Args:
        data (bytes): The whole file.

    Returns:
        tuple[np.ndarray, float]: The samples as a native-endian float32
        array, H×W for ``Pf`` or H×W×3 for ``PF``, with row 0 at the top of
        the image; and the absolute value of the header's scale.

    Raises:
        ValueError: The header is malformed or the file is shorter or longer
            than the header says.
    """
    match = _HEADER.match(data[:256])
    if match is None:
        raise ValueError('not a PFM file (expected a "PF"/"Pf" header)')
    channels = 3 if match.group(1) == b'PF' else 1
    width, height = int(match.group(2)), int(match.group(3))
    scale = float(match.group(4))
    if scale == 0:
        raise ValueError('PFM scale is 0, so the byte order is undefined')
    offset = match.end()
    expected = width * height * channels * 4
    # Some writers end the header with "\r\n"; skip the extra byte.
    if len(data) - offset == expected + 1 and data[offset:offset + 1] in (
            b'\n', b'\r'):
        offset += 1
    if len(data) - offset != expected:
        raise ValueError(f'PFM size mismatch: the header says {width}x'
                         f'{height}x{channels} ({expected} bytes of samples),'
                         f' the file holds {len(data) - offset}')
    dtype = '<f4' if scale < 0 else '>f4'
    samples = np.frombuffer(data, dtype=dtype, count=width * height *
                            channels, offset=offset)
    shape = (height, width, 3) if channels == 3 else (height, width)
    # Stored bottom row first.
    image = np.flipud(samples.reshape(shape)).astype(np.float32)
    return np.ascontiguousarray(image), abs(scale)


def encode_pfm(image: np.ndarray,
               scale: float = 1.0,
               little_endian: bool = True) -> bytes:
    """Encode an array as PFM bytes.

    Args:
        image (np.ndarray): H×W or H×W×3 (or H×W×1) array, row 0 at the top.
            Converted to float32.
        scale (float): Absolute value written in the header. Defaults to 1.
        little_endian (bool): Byte order; written as the sign of the scale
            (negative for little-endian). Defaults to True.

    Returns:
        bytes: The file contents.
    """
    if scale <= 0:
        raise ValueError(f'scale must be positive, got {scale}')
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.ndim == 2:
        magic = b'Pf'
    elif image.ndim == 3 and image.shape[2] == 3:
        magic = b'PF'
    else:
        raise ValueError(f'PFM holds H×W or H×W×3 arrays, got {image.shape}')
    height, width = image.shape[:2]
    signed_scale = -scale if little_endian else scale
    header = b'%s\n%d %d\n%s\n' % (magic, width, height,
                                   repr(float(signed_scale)).encode())
    samples = np.flipud(image).astype('<f4' if little_endian else '>f4')
    return header + samples.tobytes()


def read_pfm(path: str) -> Tuple[np.ndarray, float]:
    """Read a PFM file; see :func:`decode_pfm`.

    Args:
        path (str): File path.

    Returns:
        tuple[np.ndarray, float]: Samples (row 0 at the top) and the scale.
    """
    with open(path, 'rb') as f:
        data = f.read()
    try:
        return decode_pfm(data)
    except ValueError as e:
        raise ValueError(f'{path}: {e}') from None


def write_pfm(path: str,
              image: np.ndarray,
              scale: float = 1.0,
              little_endian: bool = True) -> None:
    """Write an array as a PFM file; see :func:`encode_pfm`.

    Args:
        path (str): Output path.
        image (np.ndarray): H×W or H×W×3 array, row 0 at the top.
        scale (float): Absolute header scale. Defaults to 1.
        little_endian (bool): Byte order. Defaults to True.
    """
    data = encode_pfm(image, scale=scale, little_endian=little_endian)
    with open(path, 'wb') as f:
        f.write(data)

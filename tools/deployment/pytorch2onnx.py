"""Export a DPT model to ONNX with dynamic batch, height and width.

Usage::

    python tools/deployment/pytorch2onnx.py CONFIG CHECKPOINT OUT.onnx
        [--shape H W] [--opset 17] [--no-verify]

The graph is ``model(x, mode='tensor')``:

* input ``input``: B×3×H×W float32, RGB normalised as the model's data
  preprocessor does (``(pixel - 127.5) / 127.5`` for the DPT configs), H
  and W multiples of 32 (use ``DPTResize`` / ``get_dpt_resize_shape``);
* output ``output``: the raw head output at the input resolution, B×1×H×W
  depth or B×C×H×W segmentation logits (resize and argmax afterwards).

The normalisation, channel order, size multiple and task are stored in the
ONNX metadata (``metadata_props``). The legacy TorchScript exporter
(``dynamo=False``) with ``dynamic_axes`` is used: it keeps the position
embedding resize, the ×2 upsamplings (``align_corners=True``) and
``scaled_dot_product_attention`` shape-generic. After export the file is
checked with onnxruntime (if installed) at ``--shape`` and at a second size
against PyTorch: max |diff| / max |output| ≤ ``--rtol`` (1e-4); a file that
fails the check is removed.
"""
import argparse
import os
import os.path as osp
import sys
import warnings
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn

HERE = osp.dirname(osp.abspath(__file__))
ROOT = osp.dirname(osp.dirname(HERE))
if ROOT not in sys.path:  # run from a checkout
    sys.path.insert(0, ROOT)


__all__ = ['TensorOutputWrapper', 'export_onnx', 'verify_onnx', 'main']

MULTIPLE = 32
DEFAULT_RTOL = 1e-4


class TensorOutputWrapper(nn.Module):
    """``model(x, mode='tensor')`` as a one-input module for the exporter.

    Args:
        model (nn.Module): An mmseg segmentor / depth estimator.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args:
            x (Tensor): B×3×H×W normalised RGB.

        Returns:
            Tensor: Raw head output at the input resolution.
        """
        return self.model(x, mode='tensor')


def _size_multiple(model: nn.Module) -> int:
    """What input sides must divide by: the model's test-time padding
    (32 for DPT-ViT, 14 for the DINOv2 family)."""
    test_cfg = getattr(model.data_preprocessor, 'test_cfg', None) or {}
    return int(test_cfg.get('size_divisor') or MULTIPLE)


def _native_grid(model: nn.Module) -> Optional[Tuple[int, int]]:
    backbone = getattr(model, 'backbone', None)
    grid = getattr(backbone, 'pos_grid', None)
    return tuple(grid) if grid is not None else None


def _trace_shape(model: nn.Module, shape: Tuple[int, int]) -> Tuple[int,
                                                                    int]:
    """A trace size whose patch grid differs from the native one.

    ``resize_pos_embed`` returns the embedding unchanged at the native grid
    (a Python branch). Traced there, the graph would hold the fixed-size
    embedding and fail at any other size, so trace one multiple larger.
    """
    grid = _native_grid(model)
    patch = getattr(getattr(model, 'backbone', None), 'patch_size', 16)
    if grid is not None and (shape[0] // patch, shape[1] // patch) == grid:
        step = _size_multiple(model)
        return shape[0] + step, shape[1] + step
    return shape


def _metadata(model: nn.Module) -> Dict[str, str]:
    from dpt_mm.apis import is_depth_model
    prep = model.data_preprocessor
    mean = getattr(prep, 'mean', None)
    std = getattr(prep, 'std', None)
    meta = dict(
        producer='dpt_mm tools/deployment/pytorch2onnx.py',
        task='depth' if is_depth_model(model) else 'seg',
        input='B×3×H×W float32, RGB, (pixel - mean) / std, H and W '
        f'multiples of {_size_multiple(model)}',
        mean=str(mean.flatten().tolist()) if mean is not None else 'none',
        std=str(std.flatten().tolist()) if std is not None else 'none',
        # The data preprocessor's BGR → RGB swap is not in the graph.
        channel_order='RGB' if getattr(prep, 'channel_conversion',
                                       False) else 'as loaded',
        size_multiple=str(_size_multiple(model)),
    )
    head = model.decode_head
    if is_depth_model(model):
        meta['output'] = 'B×1×H×W depth, raw head output'
        meta['output_mode'] = str(getattr(head, 'output_mode', ''))
    else:
        meta['output'] = (f'B×{head.num_classes}×H×W logits; resize '
                          '(bilinear) then argmax over dim 1')
    return meta


def export_onnx(model: nn.Module,
                out_file: str,
                shape: Tuple[int, int] = (384, 384),
                opset: int = 17,
                dynamic: bool = True) -> str:
    """Export ``model(x, mode='tensor')`` to ONNX.

    Args:
        model (nn.Module): From :func:`dpt_mm.apis.init_model` (eval mode).
        out_file (str): Output ``.onnx`` path.
        shape (tuple[int, int]): Example input ``(H, W)``, multiples of 32.
        opset (int): ONNX opset (≥ 14 for scaled dot-product attention).
        dynamic (bool): Dynamic batch, height and width.

    Returns:
        str: ``out_file``.

    Examples:
        >>> from dpt_mm.apis import init_model
        >>> model = init_model('configs/dpt_hybrid_midas.py', 'dpt.pth')
        >>> export_onnx(model, 'dpt_hybrid_midas.onnx', shape=(384, 384))
        'dpt_hybrid_midas.onnx'
    """
    multiple = _size_multiple(model)
    if any(s % multiple for s in shape):
        from dpt_mm.utils import InputError
        raise InputError(f'--shape {shape} must be multiples of {multiple}')
    wrapper = TensorOutputWrapper(model).eval()
    trace_shape = _trace_shape(model, tuple(shape)) if dynamic else shape
    param = next(model.parameters())
    dummy = torch.randn(1, 3, *trace_shape, dtype=param.dtype,
                        device=param.device)
    dynamic_axes = {
        'input': {0: 'batch', 2: 'height', 3: 'width'},
        'output': {0: 'batch', 2: 'height', 3: 'width'},
    } if dynamic else None
    parent = osp.dirname(osp.abspath(out_file))
    os.makedirs(parent, exist_ok=True)
    with torch.no_grad(), warnings.catch_warnings():
        # Tracer warnings about Python-side shape checks are expected.
        warnings.simplefilter('ignore', torch.jit.TracerWarning)
        torch.onnx.export(
            wrapper, (dummy, ),
            out_file,
            input_names=['input'],
            output_names=['output'],
            opset_version=opset,
            dynamic_axes=dynamic_axes,
            do_constant_folding=True,
            dynamo=False)
    import onnx
    onnx_model = onnx.load(out_file)
    for key, value in _metadata(model).items():
        entry = onnx_model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(onnx_model)
    onnx.save(onnx_model, out_file)
    return out_file


def verify_onnx(model: nn.Module,
                onnx_file: str,
                shapes: Sequence[Tuple[int, int]],
                batch: int = 1,
                rtol: float = DEFAULT_RTOL,
                seed: int = 0) -> List[float]:
    """Compare onnxruntime with PyTorch at several input sizes.

    Args:
        model (nn.Module): The exported model.
        onnx_file (str): The ``.onnx`` file.
        shapes (Sequence[tuple[int, int]]): Input ``(H, W)`` sizes.
        batch (int): Batch size of the test inputs.
        rtol (float): Allowed max |ort - torch| / max |torch|.
        seed (int): Random input seed.

    Returns:
        list[float]: The relative error per size.

    Raises:
        AssertionError: An error is above ``rtol`` or shapes differ.
    """
    import onnxruntime as ort
    session = ort.InferenceSession(onnx_file,
                                   providers=['CPUExecutionProvider'])
    wrapper = TensorOutputWrapper(model).eval()
    generator = torch.Generator().manual_seed(seed)
    errors = []
    for height, width in shapes:
        x = torch.randn(batch, 3, height, width, generator=generator)
        param = next(model.parameters())
        with torch.no_grad():
            expected = wrapper(x.to(param)).float().cpu().numpy()
        actual = session.run(['output'], {'input': x.numpy()})[0]
        if actual.shape != expected.shape:
            raise AssertionError(
                f'{onnx_file}: onnxruntime output {actual.shape} vs PyTorch '
                f'{expected.shape} at input {height}×{width}')
        scale = max(float(np.abs(expected).max()), 1e-12)
        error = float(np.abs(actual - expected).max()) / scale
        errors.append(error)
        if not error <= rtol:
            raise AssertionError(
                f'{onnx_file}: onnxruntime differs from PyTorch at '
                f'{height}×{width}: max |diff| / max |out| = {error:.3g} > '
                f'{rtol:g}')
    return errors


def _remove(path: str) -> None:
    if osp.isfile(path):
        os.remove(path)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Export a DPT model (raw head output) to ONNX')
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('out', help='output .onnx file')
    parser.add_argument('--shape', type=int, nargs=2, default=[384, 384],
                        metavar=('H', 'W'),
                        help='example input size (multiples of 32)')
    parser.add_argument('--opset', type=int, default=17)
    parser.add_argument('--static', action='store_true',
                        help='fixed input size (no dynamic axes)')
    parser.add_argument('--no-verify', action='store_true',
                        help='skip the onnxruntime check')
    parser.add_argument('--rtol', type=float, default=DEFAULT_RTOL,
                        help='allowed max |onnxruntime - PyTorch| / max '
                        '|PyTorch|; a file that fails is removed')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--debug', action='store_true',
                        help='show the Python traceback of an error')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the CLI.

    Args:
        argv (Sequence[str], optional): Arguments; default ``sys.argv``.

    Returns:
        int: 0 on success, 1 if verification failed.
    """
    args = parse_args(argv)
    import dpt_mm  # noqa: F401  (registers the components)
    from dpt_mm.apis import init_model
    model = init_model(args.config, args.checkpoint, device=args.device)
    shape = tuple(args.shape)
    try:
        export_onnx(model, args.out, shape, args.opset,
                    dynamic=not args.static)
    except BaseException:
        _remove(args.out)  # no half-written file that looks like a model
        raise
    print(f'exported {args.out} (opset {args.opset}, '
          f'{"static" if args.static else "dynamic"} B×3×H×W input)')
    if args.no_verify:
        return 0
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        print('onnxruntime is not installed: skipping verification')
        return 0
    step = _size_multiple(model)
    shapes = [shape] if args.static else [
        shape, (shape[0] + 2 * step, shape[1] + step)]
    try:
        errors = verify_onnx(model.cpu(), args.out, shapes, rtol=args.rtol)
    except AssertionError as error:
        _remove(args.out)  # a wrong model must not be deployed by mistake
        print(f'verification FAILED: {error}; removed {args.out}',
              file=sys.stderr)
        return 1
    for (height, width), error in zip(shapes, errors):
        print(f'onnxruntime vs PyTorch at {height}×{width}: max |diff| / '
              f'max |out| = {error:.2e}')
    return 0


if __name__ == '__main__':
    try:
        sys.exit(main())
    except Exception as error:  # a user's mistake: message and hint only
        from dpt_mm.utils.cli import exit_if_user_error
        exit_if_user_error(error)
        raise

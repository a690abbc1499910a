"""Gradient checkpointing for the ``with_cp`` options of dpt_mm's modules.
"""
from typing import Any, Callable, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.utils.checkpoint as cp
from torch import Tensor

__all__ = ['checkpoint_if', 'checkpoint_rows']


def checkpoint_if(enabled: bool, fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)``, recomputed in backward when ``enabled`` and autograd
    is recording (non-reentrant ``torch.utils.checkpoint``).

    Args:
        enabled (bool): The caller's condition, e.g.
            ``self.with_cp and self.training``.
        fn (callable): The segment.
        *args: Its inputs.

    Returns:
        Any: ``fn(*args)``.
    """
    if enabled and torch.is_grad_enabled():
        return cp.checkpoint(fn, *args, use_reentrant=False)
    return fn(*args)

# Default band: about this many bytes of input rows.
BAND_BYTES = 16 * 2**20


class _RowCheckpoint(torch.autograd.Function):

    @staticmethod
    def forward(ctx, fn: Callable[[Tensor], Tensor], rows: int, x: Tensor,
                *params: Tensor) -> Tensor:
        ctx.fn, ctx.rows = fn, rows
        # The RNG state before the first band: backward replays the bands
        # in the same order, so each band draws the same dropout mask.
        ctx.cpu_rng = torch.get_rng_state()
        ctx.cuda_rng = torch.cuda.get_rng_state(x.device) \
            if x.is_cuda else None
        ctx.save_for_backward(x, *params)
        with torch.no_grad():
            return torch.cat([fn(x[:, :, a:a + rows])
                              for a in range(0, x.shape[2], rows)], dim=2)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tuple[Optional[Tensor], ...]:
        x, *params = ctx.saved_tensors
        need = [ctx.needs_input_grad[2], *ctx.needs_input_grad[3:]]
        grads = [torch.zeros_like(x) if need[0] else None] + [
            torch.zeros_like(p) if n else None
            for p, n in zip(params, need[1:])]
        devices = [x.device] if x.is_cuda else []
        with torch.random.fork_rng(devices=devices):
            torch.set_rng_state(ctx.cpu_rng)
            if ctx.cuda_rng is not None:
                torch.cuda.set_rng_state(ctx.cuda_rng, x.device)
            for a in range(0, x.shape[2], ctx.rows):
                band = x[:, :, a:a + ctx.rows].detach().requires_grad_(
                    need[0])
                with torch.enable_grad():
                    out = ctx.fn(band)
                wrt = [t for t, n in zip([band, *params], need) if n]
                if not wrt:
                    continue
                parts = iter(torch.autograd.grad(
                    out, wrt, grad[:, :, a:a + ctx.rows],
                    allow_unused=True))
                for i, n in enumerate(need):
                    part = next(parts) if n else None
                    if part is None:
                        continue
                    if i == 0:
                        grads[0][:, :, a:a + ctx.rows] = part
                    else:
                        grads[i] += part
        return (None, None, *grads)


def checkpoint_rows(fn: Callable[[Tensor], Tensor], x: Tensor,
                    module: Optional[nn.Module] = None,
                    rows: Optional[int] = None) -> Tensor:
    """``fn(x)`` with its activations recomputed in backward, band by band.

    For a segment that treats every pixel on its own (dropout, 1×1
    convolutions, point-wise activations; **not** 3×3 convolutions or
    training-mode BatchNorm, which mix rows): ``fn(x)`` equals ``fn`` of
    each band of rows concatenated. Forward keeps only ``x``; backward
    recomputes and back-propagates one band at a time, so at most one band
    of the segment's activations and gradients is alive, where
    ``torch.utils.checkpoint`` holds all of them at once. Random ops replay:
    the RNG state is restored before the first band and the bands run in
    forward's order, then the outer RNG stream resumes as if nothing had
    been recomputed. (Forward draws per band, so a dropout mask differs
    from an unchunked call with the same seed; it is equally random.)

    Args:
        fn (callable): B×C×H×W → B×C'×H×W, per pixel.
        x (Tensor): Input, B×C×H×W.
        module (nn.Module, optional): Owner of the parameters ``fn`` uses;
            they receive gradients.
        rows (int, optional): Rows per band; default about 16 MiB of input.

    Returns:
        Tensor: ``fn(x)``.
    """
    if x.dim() != 4:
        raise ValueError('checkpoint_rows expects a B×C×H×W input, got '
                         f'shape {tuple(x.shape)}')
    if rows is None:
        row_bytes = x.shape[0] * x.shape[1] * x.shape[3] * x.element_size()
        rows = max(1, BAND_BYTES // max(row_bytes, 1))
    params: Sequence[Tensor] = [] if module is None else [
        p for p in module.parameters() if p.requires_grad]
    return _RowCheckpoint.apply(fn, rows, x, *params)

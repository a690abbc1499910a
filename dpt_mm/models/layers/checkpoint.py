"""Gradient checkpointing for the ``with_cp`` options of dpt_mm's modules.
"""
from contextlib import contextmanager, nullcontext
from typing import Any, Callable, Iterator, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from torch import Tensor

from .conv import CONV2D_TYPES, band_rows, conv_input_rows
from .dropout import Dropout
from .dropout import dropout as elementwise_dropout

__all__ = [
    'checkpoint_conv_classifier', 'checkpoint_if', 'conv_classifier',
    'frozen_norm_stats', 'fusable_conv_classifier'
]


@contextmanager
def frozen_norm_stats(module: nn.Module) -> Iterator[None]:
    """Restore the running statistics of ``module``'s BatchNorm layers on
    exit.

    A checkpointed segment runs its forward twice (three times when
    nested); training-mode BatchNorm normalises with the batch's
    statistics either way, but would move its running statistics and
    ``num_batches_tracked`` on every run. Recomputation under this context
    leaves them as the first run set them: once per step, as without
    checkpointing.

    Args:
        module (nn.Module): Its ``_BatchNorm`` submodules (itself included)
            that track running statistics are restored.
    """
    saved = [(buf, buf.clone()) for m in module.modules()
             if isinstance(m, nn.modules.batchnorm._BatchNorm)
             and m.track_running_stats
             for buf in (m.running_mean, m.running_var, m.num_batches_tracked)
             if buf is not None]
    try:
        yield
    finally:
        with torch.no_grad():
            for buf, value in saved:
                buf.copy_(value)


def checkpoint_if(enabled: bool, fn: Callable[..., Any], *args: Any,
                  norms: Optional[nn.Module] = None) -> Any:
    """``fn(*args)``, recomputed in backward when ``enabled`` and autograd
    is recording (non-reentrant ``torch.utils.checkpoint``).

    Args:
        enabled (bool): The caller's condition, e.g.
            ``self.with_cp and self.training``.
        fn (callable): The segment.
        *args: Its inputs.
        norms (nn.Module, optional): A module holding the segment's
            BatchNorm layers; the recomputation leaves their running
            statistics alone (:func:`frozen_norm_stats`).

    Returns:
        Any: ``fn(*args)``.
    """
    if enabled and torch.is_grad_enabled():
        if norms is None:
            return cp.checkpoint(fn, *args, use_reentrant=False)
        return cp.checkpoint(
            fn, *args, use_reentrant=False,
            context_fn=lambda: (nullcontext(), frozen_norm_stats(norms)))
    return fn(*args)


def _channel(v: Tensor) -> Tensor:
    return v.view(1, -1, 1, 1)


class _Head:
    """The modules of a fusable head, band-wise conv and dropout masks."""

    def __init__(self, conv: nn.Conv2d, bn: nn.BatchNorm2d,
                 dropout: Optional[nn.Module], classifier: nn.Module) -> None:
        self.conv, self.bn, self.classifier = conv, bn, classifier
        self.p = 0.0 if dropout is None or not dropout.training \
            else dropout.p
        # Dropout2d zeroes whole channels: one mask per (sample, channel),
        # drawn once for every band; Dropout draws per element, per band.
        self.per_channel = isinstance(dropout, nn.Dropout2d)

    def channel_mask(self, z: Tensor) -> Tensor:
        if not (self.per_channel and self.p > 0):
            return z.new_empty(0)
        if self.p == 1:
            return z.new_zeros(z.shape[0], z.shape[1], 1, 1)
        return z.new_empty(z.shape[0], z.shape[1], 1, 1).bernoulli_(
            1 - self.p).div_(1 - self.p)

    def drop(self, z: Tensor, mask: Tensor) -> Tensor:
        if self.p == 0:
            return z
        if self.per_channel:
            return z * mask
        return elementwise_dropout(z, self.p)

    def input_rows(self, x: Tensor, a: int, b: int) -> Tuple[Tensor, int, int]:
        """:func:`~dpt_mm.models.layers.conv_input_rows` of the conv."""
        conv = self.conv
        return conv_input_rows(x, a, b, conv.kernel_size[0],
                               conv.padding[0], conv.dilation[0])

    def conv_rows(self, rows: Tensor) -> Tensor:
        """The conv over rows from :meth:`input_rows` (no height padding).
        """
        conv = self.conv
        return F.conv2d(rows, conv.weight, conv.bias, 1,
                        (0, conv.padding[1]), conv.dilation, conv.groups)


class _ConvClassifierCheckpoint(torch.autograd.Function):
    """conv → BN (batch statistics) → ReLU → dropout → 1×1 classifier that
    keeps only its input for backward (see
    :func:`checkpoint_conv_classifier`)."""

    @staticmethod
    def forward(ctx, head: _Head, rows: int, x: Tensor, *params: Tensor
                ) -> Tensor:
        conv, bn, cls = head.conv, head.bn, head.classifier
        with torch.no_grad():
            y = conv(x)
            var, mean = torch.var_mean(y, dim=(0, 2, 3), unbiased=False)
            count = y.numel() // y.shape[1]
            # The running statistics move once per step, as without
            # checkpointing (torch.utils.checkpoint would move them twice).
            bn.num_batches_tracked.add_(1)
            m = bn.momentum
            bn.running_mean.mul_(1 - m).add_(mean, alpha=m)
            bn.running_var.mul_(1 - m).add_(
                var * (count / max(count - 1, 1)), alpha=m)
            invstd = torch.rsqrt(var + bn.eps)
            # z = ReLU(BN(y)), in y's memory.
            y.sub_(_channel(mean)).mul_(_channel(invstd * bn.weight))
            y.add_(_channel(bn.bias)).relu_()
            ctx.cpu_rng = torch.get_rng_state()
            ctx.cuda_rng = torch.cuda.get_rng_state(x.device) \
                if x.is_cuda else None
            mask = head.channel_mask(y)
            out = None
            for a in range(0, y.shape[2], rows):
                band = cls(head.drop(y[:, :, a:a + rows], mask))
                if out is None:
                    out = torch.empty(
                        (*band.shape[:2], y.shape[2], band.shape[3]),
                        dtype=band.dtype, device=band.device,
                        memory_format=_format(band))
                out[:, :, a:a + rows] = band
        ctx.head, ctx.rows = head, rows
        ctx.save_for_backward(x, mean, invstd, mask, *params)
        return out

    @staticmethod
    def _band(ctx, x: Tensor, grad: Tensor, a: int, b: int, mask: Tensor,
              mean: Tensor, invstd: Tensor, cls_params: Sequence[Tensor],
              second: bool, count: int, sums: Tuple[Tensor, Tensor],
              cls_grads: Sequence[Tensor],
              conv_grads: Sequence[Optional[Tensor]],
              grad_x: Optional[Tensor]) -> None:
        """One band of output rows ``[a, b)`` of one backward pass; adds
        into the accumulators. (A function of its own, so that no band's
        tensors outlive it.)"""
        head = ctx.head
        conv, bn = head.conv, head.bn
        sum_g, sum_gx = sums
        with torch.no_grad():
            x_rows, first, pad = head.input_rows(x, a, b)
            xhat = head.conv_rows(x_rows).sub_(_channel(mean)).mul_(
                _channel(invstd))
            z = (xhat * _channel(bn.weight)).add_(_channel(bn.bias)).relu_()
        z.requires_grad_()
        wrt = [z] if second else [z, *cls_params]
        with torch.enable_grad():
            out = head.classifier(head.drop(z, mask))
        gz, *parts = torch.autograd.grad(out, wrt, grad[:, :, a:b])
        del out
        with torch.no_grad():
            gz.mul_(z > 0)  # ReLU'
            del z
            if not second:
                sum_g += gz.sum((0, 2, 3))
                sum_gx += (gz * xhat).sum((0, 2, 3))
                for acc, part in zip(cls_grads, parts):
                    acc += part
                return
            # BatchNorm backward (batch statistics):
            # dy = γ·invstd·(g − mean(g) − x̂·mean(g·x̂)).
            xhat.mul_(_channel(sum_gx / count)).add_(_channel(sum_g / count))
            dy = gz.sub_(xhat).mul_(_channel(bn.weight * invstd))
            del xhat
            gx, gw, gb = torch.ops.aten.convolution_backward(
                dy, x_rows, conv.weight,
                None if conv.bias is None else [conv.out_channels],
                [1, 1], [0, conv.padding[1]], conv.dilation, False, [0, 0],
                conv.groups, [grad_x is not None, conv_grads[0] is not None,
                              conv_grads[1] is not None])
            if grad_x is not None:
                n = min(x.shape[2] - first, gx.shape[2] - pad)
                grad_x[:, :, first:first + n] += gx[:, :, pad:pad + n]
            for acc, part in zip(conv_grads, (gw, gb)):
                if acc is not None:
                    acc += part

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tuple[Optional[Tensor], ...]:
        # Two passes over bands of output rows, each recomputing the
        # band's conv (from its input rows plus the kernel's halo), ReLU,
        # dropout (the forward's masks, replayed) and classifier: the first
        # sums what BatchNorm's backward needs over the whole batch, the
        # second back-propagates through BN and the conv. Nothing of the
        # conv output's size is held, only bands.
        head, rows = ctx.head, ctx.rows
        x, mean, invstd, mask, *params = ctx.saved_tensors
        conv, bn = head.conv, head.bn
        cls_params = [p for p in head.classifier.parameters()
                      if p.requires_grad]
        need_x = ctx.needs_input_grad[2]
        channels = conv.out_channels
        count = grad.shape[0] * grad.shape[2] * grad.shape[3]
        sum_g, sum_gx = x.new_zeros(channels), x.new_zeros(channels)
        cls_grads = [torch.zeros_like(p) for p in cls_params]
        conv_params = [conv.weight, conv.bias]
        # Frozen conv parameters get no gradient, and none is computed.
        conv_grads = [None if p is None or not p.requires_grad
                      else torch.zeros_like(p) for p in conv_params]
        grad_x = torch.zeros_like(x) if need_x else None
        devices = [x.device] if x.is_cuda else []
        with torch.random.fork_rng(devices=devices):
            for second in (False, True):
                torch.set_rng_state(ctx.cpu_rng)
                if ctx.cuda_rng is not None:
                    torch.cuda.set_rng_state(ctx.cuda_rng, x.device)
                for a in range(0, grad.shape[2], rows):
                    _ConvClassifierCheckpoint._band(
                        ctx, x, grad, a, min(a + rows, grad.shape[2]),
                        mask, mean, invstd, cls_params, second, count,
                        sums=(sum_g, sum_gx), cls_grads=cls_grads,
                        conv_grads=conv_grads, grad_x=grad_x)
        by_param = {id(bn.weight): sum_gx, id(bn.bias): sum_g}
        by_param.update({id(p): gp for p, gp in zip(conv_params, conv_grads)
                         if gp is not None})
        by_param.update({id(p): gp for p, gp in zip(cls_params, cls_grads)})
        return (None, None, grad_x,
                *(by_param.get(id(p)) for p in params))


# Dropout modules whose masks _Head replays (element-wise or per channel).
_DROPOUTS = (nn.Dropout, Dropout, nn.Dropout2d)


def _format(t: Tensor) -> torch.memory_format:
    if t.dim() == 4 and not t.is_contiguous() and t.is_contiguous(
            memory_format=torch.channels_last):
        return torch.channels_last
    return torch.contiguous_format


def fusable_conv_classifier(conv_module: nn.Module,
                            dropout: Optional[nn.Module]) -> bool:
    """Whether :func:`checkpoint_conv_classifier` takes these modules.

    Args:
        conv_module (nn.Module): mmcv ``ConvModule``.
        dropout (nn.Module, optional): The dropout before the classifier.

    Returns:
        bool: a stride-1, zero-padded ``nn.Conv2d`` (or dpt_mm's
        :class:`~dpt_mm.models.layers.Conv2d`) → training-mode
        ``nn.BatchNorm2d`` (affine, running statistics with a momentum) →
        ReLU, and no dropout, ``nn.Dropout``, dpt_mm's
        :class:`~dpt_mm.models.layers.Dropout` or ``nn.Dropout2d``.
    """
    bn = getattr(conv_module, 'norm', None) if getattr(
        conv_module, 'with_norm', False) else None
    return (tuple(getattr(conv_module, 'order', ())) == ('conv', 'norm', 'act')
            and type(getattr(conv_module, 'conv', None)) in CONV2D_TYPES
            and conv_module.conv.padding_mode == 'zeros'
            and tuple(conv_module.conv.stride) == (1, 1)
            and not isinstance(conv_module.conv.padding, str)
            and not getattr(conv_module, 'with_explicit_padding', True)
            and type(bn) is nn.BatchNorm2d and bn.training and bn.affine
            and bn.track_running_stats and bn.momentum is not None
            and getattr(conv_module, 'with_activation', False)
            and type(conv_module.activate) is nn.ReLU
            and (dropout is None or type(dropout) in _DROPOUTS))


def checkpoint_conv_classifier(conv_module: nn.Module,
                               dropout: Optional[nn.Module],
                               classifier: nn.Module, x: Tensor,
                               rows: Optional[int] = None) -> Tensor:
    """``classifier(dropout(conv_module(x)))`` keeping only ``x`` for backward.

    The segmentation heads' conv3×3 → BN → ReLU → dropout → 1×1 classifier
    at 1/2 or 1/4 resolution holds the largest activations of a
    checkpointed DPT step. ``torch.utils.checkpoint`` keeps the conv
    output between forward and backward and, in backward, the recomputed
    conv output, the ReLU gradient and BatchNorm's two full-size buffers
    at once. Here backward makes two passes over bands of rows, each
    recomputing the band's conv from its input rows (plus the kernel's
    halo), ReLU, dropout and classifier: the first sums what BatchNorm's
    backward needs over the batch, the second back-propagates through BN
    and the conv. Besides ``x``, the incoming gradient and the input
    gradient, only bands are alive; the conv runs twice more than without
    checkpointing (once more than ``torch.utils.checkpoint``). BatchNorm
    running statistics move once per step (plain checkpointing moves them
    twice). Dropout masks are replayed from the saved RNG state
    (element-wise dropout draws per band, so its mask differs from an
    unchunked call with the same seed; ``nn.Dropout2d`` draws one mask per
    sample and channel).

    Use :func:`fusable_conv_classifier` to check that the modules qualify.

    Args:
        conv_module (nn.Module): mmcv ``ConvModule`` (conv, BN, ReLU).
        dropout (nn.Module, optional): ``nn.Dropout``, dpt_mm's
            ``Dropout``, ``nn.Dropout2d`` or None.
        classifier (nn.Module): Per-pixel classifier (1×1 conv).
        x (Tensor): Input, B×C×H×W.
        rows (int, optional): Rows per band; default about
            :data:`~dpt_mm.models.layers.conv.BAND_BYTES` (4 MiB) of
            the conv output.

    Returns:
        Tensor: Logits, B×K×H'×W'.
    """
    if not fusable_conv_classifier(conv_module, dropout):
        raise ValueError(
            'checkpoint_conv_classifier needs conv → training-mode '
            'BatchNorm2d → ReLU and nn.Dropout/Dropout/nn.Dropout2d/None; '
            'got '
            f'{type(conv_module).__name__} with '
            f'{type(getattr(conv_module, "norm", None)).__name__} and '
            f'{type(dropout).__name__} (check fusable_conv_classifier first)')
    if x.dim() != 4:
        raise ValueError('checkpoint_conv_classifier expects a B×C×H×W '
                         f'input, got shape {tuple(x.shape)}')
    head = _Head(conv_module.conv, conv_module.norm, dropout, classifier)
    rows = band_rows(x.shape[0] * conv_module.conv.out_channels *
                      x.shape[3] * x.element_size(), rows)
    params = [p for m in (conv_module, classifier) for p in m.parameters()
              if p.requires_grad]
    return _ConvClassifierCheckpoint.apply(head, rows, x, *params)


def conv_classifier(conv_module: nn.Module, dropout: Optional[nn.Module],
                    classifier: nn.Module, x: Tensor,
                    with_cp: bool = False) -> Tensor:
    """``classifier(dropout(conv_module(x)))``, checkpointed if asked.

    The shared forward of the segmentation heads' last layers. With
    ``with_cp`` and autograd recording it goes through
    :func:`checkpoint_conv_classifier` when the modules qualify, the input
    is float32 or float64 and autocast is off (its BatchNorm statistics
    are computed in the input's dtype), else through
    ``torch.utils.checkpoint``.

    Args:
        conv_module (nn.Module): The conv → norm → activation block.
        dropout (nn.Module, optional): Dropout before the classifier.
        classifier (nn.Module): The 1×1 classifier.
        x (Tensor): Input, B×C×H×W.
        with_cp (bool): The caller's condition, e.g.
            ``self.with_cp and self.training``.

    Returns:
        Tensor: Logits.
    """
    if with_cp and torch.is_grad_enabled():
        if (fusable_conv_classifier(conv_module, dropout)
                and x.dtype in (torch.float32, torch.float64)
                and not torch.is_autocast_enabled(x.device.type)):
            return checkpoint_conv_classifier(conv_module, dropout,
                                              classifier, x)
        return checkpoint_if(True, conv_classifier, conv_module, dropout,
                             classifier, x, norms=conv_module)
    x = conv_module(x)
    if dropout is not None:
        x = dropout(x)
    return classifier(x)

"""Opt-in fast inference path for DPT models (any mmseg segmentor).

:func:`optimize_for_inference` prepares a built model for inference only:
eval mode, no parameter gradients, BatchNorm folded into the convolution
before it, the hybrid stem's weight standardisation computed once,
channels-last convolutions, the accelerator kernels this machine measured
faster (:func:`~dpt_mm.accel.accelerate`), and optionally bf16 autocast and
``torch.compile`` of the backbone, neck and decode head. The model keeps
its type, state-dict keys and methods (``predict``, ``test_step``,
``mode='tensor'``), so mmseg's tools run it unchanged.

Numerics: the float32 options keep outputs within 1e-4 relative of the
eager model (about 1e-6 in practice; tested in ``tests/test_tools/test_benchmark.py``
and checked by ``tools/analysis_tools/benchmark.py`` on the full models).
``dtype=torch.bfloat16`` does not (about 1e-2 relative on random DPT
weights); it is a separate, lossy option. Measured gains are in
``docs/benchmark.md``.
"""
import types
from typing import Any, Dict, Optional, Sequence, Union

import torch
import torch.nn as nn
from torch import Tensor

from dpt_mm.models.layers.bit_resnet import StdConv2dSame
from dpt_mm.models.layers.fusion import ResidualConvUnit
from .conv import BandedConv2d
from .switch import accelerate

__all__ = ['optimize_for_inference', 'fold_conv_bn', 'fuse_conv_norms',
           'freeze_weight_standardization']

# Submodules whose forward runs the network; the segmentor's own forward is
# Python bookkeeping (data samples, resizing) that gains nothing.
DEFAULT_PARTS = ('backbone', 'neck', 'decode_head')


@torch.no_grad()
def fold_conv_bn(conv: nn.Conv2d, norm: nn.modules.batchnorm._BatchNorm
                 ) -> None:
    """Fold an eval-mode BatchNorm into the convolution that precedes it.

    ``norm(conv(x)) == conv'(x)`` with ``w' = w·γ/σ`` per output channel and
    ``b' = (b − μ)·γ/σ + β``; a bias is added to ``conv`` if it had none.
    The caller removes ``norm`` from the data path afterwards.

    Args:
        conv (nn.Conv2d): Convolution (not transposed, groups allowed).
        norm (_BatchNorm): Its BatchNorm, with running statistics.
    """
    if norm.running_var is None or norm.running_mean is None:
        raise ValueError('fold_conv_bn needs BatchNorm running statistics '
                         '(track_running_stats=True)')
    scale = torch.rsqrt(norm.running_var + norm.eps)
    if norm.weight is not None:
        scale = scale * norm.weight
    bias = conv.bias if conv.bias is not None else torch.zeros_like(
        norm.running_mean)
    new_bias = (bias - norm.running_mean) * scale
    if norm.bias is not None:
        new_bias = new_bias + norm.bias
    conv.weight.mul_(scale.reshape(-1, *([1] * (conv.weight.ndim - 1))))
    if conv.bias is None:
        conv.bias = nn.Parameter(new_bias.to(conv.weight.dtype),
                                 requires_grad=False)
    else:
        conv.bias.copy_(new_bias)


def _is_batch_norm(module: Optional[nn.Module]) -> bool:
    return isinstance(module, nn.modules.batchnorm._BatchNorm)


def fuse_conv_norms(model: nn.Module) -> int:
    """Fold every conv → BatchNorm pair of DPT's modules, in place.

    Handles dpt_mm's ``ResidualConvUnit`` (``conv1 → norm1``,
    ``conv2 → norm2``) and mmcv's ``ConvModule`` with ``order`` conv before
    norm (the segmentation heads and mmseg's own heads). Other layouts are
    left alone: pairs are matched by name, never guessed from child order.

    Args:
        model (nn.Module): Model in eval mode.

    Returns:
        int: Number of BatchNorms folded.
    """
    from mmcv.cnn import ConvModule

    if model.training:
        raise RuntimeError('fuse_conv_norms needs eval mode: BatchNorm '
                           'uses batch statistics in training')
    folded = 0
    for module in model.modules():
        if isinstance(module, ResidualConvUnit):
            for conv_name, norm_name in (('conv1', 'norm1'),
                                         ('conv2', 'norm2')):
                norm = getattr(module, norm_name)
                if _is_batch_norm(norm):
                    fold_conv_bn(getattr(module, conv_name), norm)
                    setattr(module, norm_name, None)
                    folded += 1
        elif isinstance(module, ConvModule) and module.with_norm:
            order = list(module.order)
            if order.index('conv') + 1 != order.index('norm'):
                continue
            # A plain or accelerated conv (the same function), not a
            # subclass with a forward of its own.
            if not (_is_batch_norm(module.norm)
                    and type(module.conv) in (nn.Conv2d, BandedConv2d)):
                continue
            fold_conv_bn(module.conv, module.norm)
            module.add_module(module.norm_name, nn.Identity())
            folded += 1
    return folded


def _frozen_standardized_weight(self: nn.Module) -> Tensor:
    return self.frozen_weight


def freeze_weight_standardization(model: nn.Module) -> int:
    """Standardise the hybrid stem's conv weights once instead of per call.

    ``StdConv2dSame`` (DPT-Hybrid's BiT ResNet) recomputes
    ``(w − mean) / sqrt(var + eps)`` over its weights on every forward;
    for fixed weights the result is a constant. It is stored as a
    non-persistent buffer (so ``.to()`` and channels-last move it, and the
    state dict is unchanged) and returned by ``standardized_weight``. The
    numbers are exactly those of the per-call computation.

    Args:
        model (nn.Module): Model whose weights will not change any more.

    Returns:
        int: Number of convolutions frozen.
    """
    frozen = 0
    for module in model.modules():
        if isinstance(module, StdConv2dSame):
            with torch.no_grad():
                weight = module.standardized_weight().detach().clone()
            module.register_buffer('frozen_weight', weight, persistent=False)
            module.standardized_weight = types.MethodType(
                _frozen_standardized_weight, module)
            frozen += 1
    return frozen


def _map_tensors(value: Any, fn) -> Any:
    if isinstance(value, Tensor):
        return fn(value)
    if isinstance(value, (list, tuple)):
        return type(value)(_map_tensors(v, fn) for v in value)
    if isinstance(value, dict):
        return {k: _map_tensors(v, fn) for k, v in value.items()}
    return value


def _to_channels_last(x: Tensor) -> Tensor:
    return x.contiguous(memory_format=torch.channels_last) \
        if x.ndim == 4 else x


def _to_float32(x: Tensor) -> Tensor:
    return x.float() if x.is_floating_point() else x


def _fast_forward(self: nn.Module, *args, **kwargs) -> Any:
    """Forward of a fast-path part: its class's forward inside the options.
    """
    opts = self._fast_path_options
    if opts['channels_last_input']:
        args = _map_tensors(args, _to_channels_last)
    forward = type(self).forward
    if opts['dtype'] is None:
        return forward(self, *args, **kwargs)
    with torch.autocast(device_type=opts['device_type'],
                        dtype=opts['dtype']):
        out = forward(self, *args, **kwargs)
    return _map_tensors(out, _to_float32) if opts['cast_output'] else out


def optimize_for_inference(model: nn.Module,
                           channels_last: bool = True,
                           fuse_norm: bool = True,
                           accel: str = 'auto',
                           dtype: Optional[torch.dtype] = None,
                           compile: Union[bool, Dict[str, Any]] = False,
                           parts: Sequence[str] = DEFAULT_PARTS
                           ) -> nn.Module:
    """Prepare a DPT model for fast inference, in place; returns it.

    Steps, each measured in ``docs/benchmark.md``:

    * eval mode and ``requires_grad=False`` on every parameter, so no
      autograd graph is recorded even outside ``torch.no_grad``;
    * ``fuse_norm``: BatchNorm folded into the preceding conv (segmentation
      models; depth models have none), and the hybrid stem's weight
      standardisation computed once (:func:`freeze_weight_standardization`);
    * ``channels_last``: conv weights and the image in NHWC, oneDNN's
      native layout, so convolutions skip layout reorders;
    * ``accel``: the CPU kernels of :mod:`dpt_mm.accel` (see
      :func:`~dpt_mm.accel.accelerate`; ``'auto'`` uses those measured
      faster on this machine);
    * ``dtype``: autocast of the parts to e.g. ``torch.bfloat16`` (lossy:
      about 1e-2 relative; only worth it with AVX512-BF16/AMX, see
      :func:`dpt_mm.utils.bf16_supported`); the decode head's output is
      cast back to float32;
    * ``compile``: ``nn.Module.compile`` of each part (``True`` or a dict
      of ``torch.compile`` arguments). The first call of each new input
      shape compiles (tens of seconds on CPU).

    The model must not be trained afterwards (BatchNorm is gone).

    Args:
        model (nn.Module): A built mmseg segmentor (``EncoderDecoder``,
            ``DepthEstimator``...) or any module with the named ``parts``.
        channels_last (bool): NHWC weights and input.
        fuse_norm (bool): Fold conv → BatchNorm pairs and freeze weight
            standardisation: constant work moved out of every forward.
        accel (str): One of :data:`~dpt_mm.accel.ACCEL_MODES`.
        dtype (torch.dtype, optional): Autocast dtype; None keeps float32.
        compile (bool | dict): ``torch.compile`` the parts.
        parts (Sequence[str]): Submodules whose forward is wrapped; those
            missing on the model are skipped. An empty sequence wraps the
            model's own forward.

    Returns:
        nn.Module: ``model`` itself.
    """
    model.eval()
    for param in model.parameters():
        param.requires_grad_(False)
    if fuse_norm:
        fuse_conv_norms(model)
        freeze_weight_standardization(model)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    device_type = next(model.parameters()).device.type \
        if any(True for _ in model.parameters()) else 'cpu'
    accelerated = accelerate(model, accel)
    modules = [getattr(model, name) for name in parts
               if getattr(model, name, None) is not None] or [model]
    for index, module in enumerate(modules):
        module._fast_path_options = dict(
            channels_last_input=channels_last and index == 0,
            dtype=dtype,
            device_type=device_type,
            cast_output=index == len(modules) - 1)
        if dtype is not None or (channels_last and index == 0):
            module.forward = types.MethodType(_fast_forward, module)
        if compile:
            module.compile(**(compile if isinstance(compile, dict) else {}))
    model._fast_path = dict(channels_last=channels_last, fuse_norm=fuse_norm,
                            accel=accel, accelerated=accelerated,
                            dtype=dtype,
                            compile=bool(compile))
    return model

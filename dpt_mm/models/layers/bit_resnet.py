"""BiT ResNet-50 stem of DPT-Hybrid: weight-standardised convs + GroupNorm.

Layout and key names follow timm's ``ResNetV2`` as used by the original
DPT-Hybrid (``stem.conv``, ``stem.norm``, ``stages.S.blocks.B.conv1`` ...),
post-norm bottlenecks (``preact=False``) with "same" padding.
"""
from typing import List, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

__all__ = ['StdConv2dSame', 'BiTBottleneck', 'BiTResNet', 'pad_same']


def _same_pad_amount(size: Union[int, Tensor], kernel: int, stride: int,
                     dilation: int) -> Union[int, Tensor]:
    # (ceil(size / stride) - 1) * stride + (kernel - 1) * dilation + 1 - size
    # with (-size) % stride for ceil(size / stride) * stride - size: the same
    # integer, but without math.ceil, which turns the traced size of an ONNX
    # export into a constant (the padded size was then fixed at the traced
    # one, and so was the hybrid's output).
    pad = (-size) % stride + (kernel - 1) * dilation + 1 - stride
    return pad.clamp(min=0) if isinstance(pad, Tensor) else max(pad, 0)


def pad_same(x: Tensor, kernel: int, stride: int, dilation: int = 1,
             value: float = 0.0) -> Tensor:
    """TensorFlow-style "same" padding (extra pixel at bottom/right).

    Shape-dynamic under tracing (ONNX export): the amounts are computed
    from the traced sizes.

    Args:
        x (Tensor): B×C×H×W input.
        kernel (int): Kernel size.
        stride (int): Stride.
        dilation (int): Dilation.
        value (float): Fill value.

    Returns:
        Tensor: Padded input.
    """
    pad_h = _same_pad_amount(x.shape[-2], kernel, stride, dilation)
    pad_w = _same_pad_amount(x.shape[-1], kernel, stride, dilation)
    # Traced amounts cannot be tested for zero; padding by 0 is a no-op.
    if torch.jit.is_tracing() or pad_h or pad_w:
        x = F.pad(x, [pad_w // 2, pad_w - pad_w // 2,
                      pad_h // 2, pad_h - pad_h // 2], value=value)
    return x


class StdConv2dSame(nn.Conv2d):
    """Conv2d with weight standardisation and "same" padding.

    Two published formulas exist (see dpt-architecture.md §2):
    ``ws_mode='var'``: (w − mean) / sqrt(var + eps) (timm ≥ 0.4.12 and
    Transformers' BiT, eps 1e-8); ``ws_mode='std'``: (w − mean) / (std + eps)
    (timm 0.4.5 pinned by the original DPT, eps 1e-5).

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        kernel_size (int): Square kernel size.
        stride (int): Stride.
        bias (bool): Whether to add a bias.
        eps (float): Standardisation eps.
        ws_mode (str): ``'var'`` or ``'std'``.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 kernel_size: int,
                 stride: int = 1,
                 bias: bool = False,
                 eps: float = 1e-8,
                 ws_mode: str = 'var') -> None:
        if ws_mode not in ('var', 'std'):
            raise ValueError(f"ws_mode must be 'var' or 'std', got {ws_mode!r}")
        # Static symmetric padding where "same" allows it, else dynamic.
        self.dynamic_pad = not (stride == 1 and (kernel_size - 1) % 2 == 0)
        padding = 0 if self.dynamic_pad else (kernel_size - 1) // 2
        super().__init__(in_channels, out_channels, kernel_size, stride,
                         padding=padding, bias=bias)
        self.eps = eps
        self.ws_mode = ws_mode

    def standardized_weight(self) -> Tensor:
        """Returns: Tensor: the weight standardised per output channel."""
        w = self.weight
        if self.ws_mode == 'var':
            # (w - mean) / sqrt(var + eps) in one batch_norm call, as timm
            # and Transformers compute it: about 3× faster on CPU than
            # var_mean plus element-wise ops (docs/benchmark.md).
            return F.batch_norm(
                w.reshape(1, self.out_channels, -1), None, None,
                training=True, momentum=0., eps=self.eps).reshape_as(w)
        var, mean = torch.var_mean(w, dim=(1, 2, 3), keepdim=True,
                                   unbiased=False)
        return (w - mean) / (torch.sqrt(var) + self.eps)

    def forward(self, x: Tensor) -> Tensor:
        if self.dynamic_pad:
            x = pad_same(x, self.kernel_size[0], self.stride[0])
        return F.conv2d(x, self.standardized_weight(), self.bias,
                        self.stride, self.padding)

    def extra_repr(self) -> str:
        return super().extra_repr() + f', ws_mode={self.ws_mode}, ' \
            f'eps={self.eps}'


class _GroupNormAct(nn.GroupNorm):
    """GroupNorm optionally followed by ReLU (timm's ``GroupNormAct``)."""

    def __init__(self, channels: int, groups: int = 32, eps: float = 1e-5,
                 act: bool = True) -> None:
        super().__init__(groups, channels, eps=eps)
        self.act = act

    def forward(self, x: Tensor) -> Tensor:
        x = super().forward(x)
        return F.relu(x) if self.act else x


class _Downsample(nn.Module):

    def __init__(self, in_channels: int, out_channels: int, stride: int,
                 groups: int, **conv_kwargs) -> None:
        super().__init__()
        self.conv = StdConv2dSame(in_channels, out_channels, 1, stride,
                                  **conv_kwargs)
        self.norm = _GroupNormAct(out_channels, groups, act=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(self.conv(x))


class BiTBottleneck(nn.Module):
    """Post-norm bottleneck: 1×1 → 3×3 (stride) → 1×1, GroupNorm after each.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels (4× the bottleneck width).
        stride (int): Stride of the 3×3 conv and of the shortcut.
        downsample (bool): Whether the shortcut is a projection.
        ws_eps (float): Weight-standardisation eps.
        ws_mode (str): Weight-standardisation formula, see StdConv2dSame.
        norm_groups (int): GroupNorm groups (32).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1,
                 downsample: bool = False, ws_eps: float = 1e-8,
                 ws_mode: str = 'var', norm_groups: int = 32) -> None:
        super().__init__()
        mid = out_channels // 4
        kw = dict(eps=ws_eps, ws_mode=ws_mode)
        self.downsample = _Downsample(in_channels, out_channels, stride,
                                      norm_groups, **kw) if downsample \
            else None
        self.conv1 = StdConv2dSame(in_channels, mid, 1, **kw)
        self.norm1 = _GroupNormAct(mid, norm_groups)
        self.conv2 = StdConv2dSame(mid, mid, 3, stride, **kw)
        self.norm2 = _GroupNormAct(mid, norm_groups)
        self.conv3 = StdConv2dSame(mid, out_channels, 1, **kw)
        self.norm3 = _GroupNormAct(out_channels, norm_groups, act=False)

    def forward(self, x: Tensor) -> Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        x = self.norm1(self.conv1(x))
        x = self.norm2(self.conv2(x))
        x = self.norm3(self.conv3(x))
        return F.relu(x + shortcut)


class _Stem(nn.Module):

    def __init__(self, in_channels: int, channels: int, groups: int,
                 **conv_kwargs) -> None:
        super().__init__()
        self.conv = StdConv2dSame(in_channels, channels, 7, 2, **conv_kwargs)
        self.norm = _GroupNormAct(channels, groups)

    def forward(self, x: Tensor) -> Tensor:
        x = self.norm(self.conv(x))
        # Zero padding equals timm's -inf padding here: inputs are post-ReLU.
        return F.max_pool2d(pad_same(x, 3, 2), 3, 2)


class _Stage(nn.Module):

    def __init__(self, blocks: List[nn.Module]) -> None:
        super().__init__()
        self.blocks = nn.Sequential(*blocks)

    def forward(self, x: Tensor) -> Tensor:
        return self.blocks(x)


class BiTResNet(nn.Module):
    """ResNet-50-style BiT trunk with stride 16 after the last stage.

    Args:
        in_channels (int): Image channels.
        stem_channels (int): Stem width (64).
        depths (Sequence[int]): Blocks per stage; DPT-Hybrid uses (3, 4, 9).
        widths (Sequence[int]): Output channels per stage (256, 512, 1024).
        ws_eps (float): Weight-standardisation eps.
        ws_mode (str): Weight-standardisation formula.
        norm_groups (int): GroupNorm groups (32).
    """

    def __init__(self,
                 in_channels: int = 3,
                 stem_channels: int = 64,
                 depths: Sequence[int] = (3, 4, 9),
                 widths: Sequence[int] = (256, 512, 1024),
                 ws_eps: float = 1e-8,
                 ws_mode: str = 'var',
                 norm_groups: int = 32) -> None:
        super().__init__()
        if len(depths) != len(widths):
            raise ValueError(f'depths {tuple(depths)} and widths '
                             f'{tuple(widths)} must have the same length')
        self.stem = _Stem(in_channels, stem_channels, norm_groups,
                          eps=ws_eps, ws_mode=ws_mode)
        stages, prev = [], stem_channels
        for idx, (depth, width) in enumerate(zip(depths, widths)):
            stride = 1 if idx == 0 else 2
            blocks = [
                BiTBottleneck(prev if b == 0 else width, width,
                              stride if b == 0 else 1, downsample=b == 0,
                              ws_eps=ws_eps, ws_mode=ws_mode,
                              norm_groups=norm_groups)
                for b in range(depth)
            ]
            stages.append(_Stage(blocks))
            prev = width
        self.stages = nn.ModuleList(stages)
        self.out_channels: Tuple[int, ...] = tuple(widths)

    def forward(self, x: Tensor) -> List[Tensor]:
        """Args: x (Tensor): B×3×H×W.

        Returns:
            list[Tensor]: Each stage's output, at 1/4, 1/8, 1/16 ...
        """
        x = self.stem(x)
        outs = []
        for stage in self.stages:
            x = stage(x)
            outs.append(x)
        return outs

"""DPT reassemble: readout handling, then tokens → image-like feature map."""
from typing import Sequence, Tuple, Union

import torch
import torch.nn as nn
from torch import Tensor

__all__ = ['Readout', 'ReassembleBlock', 'READOUT_TYPES']

READOUT_TYPES = ('ignore', 'add', 'project')
TokenMap = Union[Tensor, Sequence[Tensor]]


class Readout(nn.Module):
    """Merge the class (readout) token into the patch-token map.

    ``ignore`` drops it, ``add`` adds it to every patch token, ``project``
    concatenates it to every patch token (patch first, then class token) and
    applies Linear(2D → D) + GELU.

    Args:
        embed_dims (int): Token width D.
        readout_type (str): One of ``ignore``, ``add``, ``project``.
    """

    def __init__(self, embed_dims: int, readout_type: str = 'project'):
        super().__init__()
        if readout_type not in READOUT_TYPES:
            raise ValueError(f'readout_type must be one of {READOUT_TYPES}, '
                             f'got {readout_type!r}')
        self.readout_type = readout_type
        self.project = nn.Sequential(
            nn.Linear(2 * embed_dims, embed_dims),
            nn.GELU()) if readout_type == 'project' else None

    def forward(self, feat: Tensor, cls_token: Tensor) -> Tensor:
        """Args:
            feat (Tensor): B×D×h×w patch-token map.
            cls_token (Tensor): B×D class token.

        Returns:
            Tensor: B×D×h×w.
        """
        if self.readout_type == 'ignore':
            return feat
        if self.readout_type == 'add':
            return feat + cls_token[:, :, None, None]
        batch, dim, height, width = feat.shape
        # B×N×D tokens: a view of the channels-last map the backbone gives.
        tokens = feat.permute(0, 2, 3, 1).flatten(1, 2)
        readout = cls_token[:, None].expand_as(tokens)
        tokens = self.project(torch.cat([tokens, readout], dim=-1))
        return tokens.transpose(1, 2).reshape(batch, dim, height, width)


def _resample(channels: int, factor: float) -> nn.Module:
    if factor > 1:
        if factor != int(factor):
            raise ValueError(f'upsampling factor must be an integer, '
                             f'got {factor}')
        k = int(factor)
        return nn.ConvTranspose2d(channels, channels, k, stride=k)
    if factor == 1:
        return nn.Identity()
    stride = round(1 / factor)
    if stride * factor != 1:
        raise ValueError(f'downsampling factor must be 1/n, got {factor}')
    return nn.Conv2d(channels, channels, 3, stride=stride, padding=1)


class ReassembleBlock(nn.Module):
    """Readout → 1×1 projection D → C → resample by ``factor``.

    Args:
        in_channels (int): Token width D of the hooked layer.
        out_channels (int): Channels C after the 1×1 projection.
        factor (float): 4 and 2 upsample with a transposed conv (kernel =
            stride = factor), 1 keeps the size, 0.5 downsamples with a 3×3
            stride-2 conv.
        readout_type (str): See :class:`Readout`.
    """

    def __init__(self, in_channels: int, out_channels: int, factor: float,
                 readout_type: str = 'project') -> None:
        super().__init__()
        self.readout = Readout(in_channels, readout_type)
        self.projection = nn.Conv2d(in_channels, out_channels, 1)
        self.resample = _resample(out_channels, factor)

    def forward(self, x: TokenMap) -> Tensor:
        """Args:
            x: Either a ``(B×D×h×w map, B×D class token)`` pair or a plain
                B×D×h×w map (no class token: only ``ignore`` applies).

        Returns:
            Tensor: B×C×h'×w' with h' = h·factor.
        """
        feat, cls_token = _split_token_map(x)
        if cls_token is None:
            if self.readout.readout_type != 'ignore':
                raise ValueError(
                    f'readout_type={self.readout.readout_type!r} needs the '
                    'class token: give the backbone output_cls_token=True '
                    "or use readout_type='ignore'")
        else:
            feat = self.readout(feat, cls_token)
        return self.resample(self.projection(feat))


def _split_token_map(x: TokenMap) -> Tuple[Tensor, Union[Tensor, None]]:
    if isinstance(x, Tensor):
        return x, None
    if len(x) != 2:
        raise ValueError('a hooked output must be a tensor or a '
                         f'(feature map, class token) pair, got {len(x)} items')
    return x[0], x[1]

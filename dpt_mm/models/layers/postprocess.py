"""Test-time post-processing of the DPT segmentors (pure functions, used by
``DPTDepthEstimator`` and ``DPTEncoderDecoder``).

Network output → prediction at each image's original size: crop the
bottom/right padding (to ``img_shape``), undo a flip, resize to
``ori_shape`` (``align_corners=False``), as Transformers'
``post_process_depth_estimation`` / ``post_process_semantic_segmentation``.
"""
import warnings
from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F
from mmengine.structures import PixelData
from torch import Tensor

from mmseg.structures import SegDataSample
from mmseg.utils import OptSampleList, SampleList

__all__ = [
    'NETWORK_MULTIPLE', 'RESIZE_MODES', 'SEG_LOGITS_BYTES_LIMIT',
    'pad_to_multiple', 'postprocess_depth', 'postprocess_seg',
    'resize_argmax'
]

RESIZE_MODES = ('bicubic', 'bilinear')
# The patch grid and the fusion's ×2 steps need sides that are multiples of
# the network's total stride.
NETWORK_MULTIPLE = 32
# Full-resolution segmentation logits larger than this are not kept.
SEG_LOGITS_BYTES_LIMIT = 2 * 1024**3
# Working memory for the class-chunked argmax of huge label maps.
ARGMAX_CHUNK_BYTES = 256 * 1024**2


def pad_to_multiple(inputs: Tensor, metas: List[dict],
                    multiple: int = NETWORK_MULTIPLE
                    ) -> Tuple[Tensor, List[dict]]:
    """Pad a batch bottom/right to multiples of ``multiple``.

    Args:
        inputs (Tensor): B×C×H×W.
        metas (list[dict]): Image metas; ``pad_shape`` is updated.
        multiple (int): Side multiple.

    Returns:
        tuple[Tensor, list[dict]]: Padded batch and metas.
    """
    height, width = inputs.shape[-2:]
    pad_h, pad_w = -height % multiple, -width % multiple
    if not (pad_h or pad_w):
        return inputs, metas
    inputs = F.pad(inputs, (0, pad_w, 0, pad_h), value=0)
    return inputs, [dict(m, pad_shape=tuple(inputs.shape[-2:]))
                    for m in metas]


def _crop_unflip(output: Tensor, meta: dict) -> Tensor:
    height, width = meta.get('img_shape', output.shape[-2:])[:2]
    output = output[..., :height, :width]
    if meta.get('flip', False):
        dims = (3, ) if meta.get('flip_direction') == 'horizontal' else (2, )
        output = output.flip(dims=dims)
    return output


def _check_mode(resize_mode: str) -> None:
    if resize_mode not in RESIZE_MODES:
        raise ValueError(f'resize_mode must be one of {RESIZE_MODES}, got '
                         f'{resize_mode!r}')


def postprocess_depth(depth: Tensor,
                      data_samples: OptSampleList,
                      resize_mode: str = 'bicubic',
                      min_depth: Optional[float] = None,
                      max_depth: Optional[float] = None,
                      depth_type: str = 'inverse_depth') -> SampleList:
    """Network depth → ``pred_depth_map`` at each image's original size.

    Per image: crop to ``img_shape`` (drops the bottom/right padding added
    for the batch or the network multiple), undo a flip, resize to
    ``ori_shape`` (``align_corners=False``; bicubic as Transformers'
    ``post_process_depth_estimation``, which may dip slightly below 0 at
    sharp edges), then clamp to the head's ``min_depth``/``max_depth``.

    Args:
        depth (Tensor): B×1×H×W network output.
        data_samples (list[SegDataSample], optional): With ``img_shape``
            and ``ori_shape``; None keeps the network size.
        resize_mode (str): ``'bicubic'`` or ``'bilinear'``.
        min_depth (float, optional): Lower clamp.
        max_depth (float, optional): Upper clamp.
        depth_type (str): Recorded in the map's metainfo.

    Returns:
        list[SegDataSample]: ``pred_depth_map`` (1×H×W) set.
    """
    _check_mode(resize_mode)
    if data_samples is None:
        shape = tuple(depth.shape[-2:])
        data_samples = [SegDataSample(metainfo=dict(img_shape=shape,
                                                    ori_shape=shape))
                        for _ in range(depth.shape[0])]
    for i, sample in enumerate(data_samples):
        meta = sample.metainfo
        out = _crop_unflip(depth[i:i + 1], meta)
        size = tuple(int(s) for s in meta.get('ori_shape',
                                              out.shape[-2:])[:2])
        if tuple(out.shape[-2:]) != size:
            out = F.interpolate(out, size=size, mode=resize_mode,
                                align_corners=False)
        if min_depth is not None or max_depth is not None:
            out = out.clamp(min=min_depth, max=max_depth)
        sample.pred_depth_map = PixelData(
            data=out[0], metainfo=dict(depth_type=depth_type))
    return data_samples


def resize_argmax(logits: Tensor, size: Tuple[int, int],
                  resize_mode: str = 'bilinear') -> Tensor:
    """argmax over classes of resized logits, class-chunked.

    Resizing is per channel, so resizing a few classes at a time and keeping
    a running maximum gives exactly the argmax of the fully resized logits
    (first index on ties) without holding C×H×W floats.

    Args:
        logits (Tensor): 1×C×h×w.
        size (tuple[int, int]): Output ``(H, W)``.
        resize_mode (str): ``'bilinear'`` or ``'bicubic'``.

    Returns:
        Tensor: 1×H×W int64 labels.
    """
    num_classes = logits.shape[1]
    chunk = max(1, ARGMAX_CHUNK_BYTES // (4 * size[0] * size[1]))
    best_val = best_idx = None
    for start in range(0, num_classes, chunk):
        part = F.interpolate(logits[:, start:start + chunk], size=size,
                             mode=resize_mode, align_corners=False)[0]
        val, idx = part.max(dim=0)
        idx = idx + start
        if best_val is None:
            best_val, best_idx = val, idx
        else:
            better = val > best_val
            best_val = torch.where(better, val, best_val)
            best_idx = torch.where(better, idx, best_idx)
    return best_idx[None]


def postprocess_seg(seg_logits: Tensor,
                    data_samples: OptSampleList,
                    resize_mode: str = 'bilinear',
                    threshold: float = 0.5,
                    max_logits_bytes: Optional[int] = None) -> SampleList:
    """Network logits → ``seg_logits`` and ``pred_sem_seg`` at original size.

    ``seg_logits`` (C×H×W float) is kept unless the sample's metainfo says
    ``keep_seg_logits=False`` or it would exceed ``max_logits_bytes``; then
    only the labels are computed, class-chunked (same labels).

    Args:
        seg_logits (Tensor): B×C×h×w network output.
        data_samples (list[SegDataSample], optional): Image metas.
        resize_mode (str): ``'bilinear'`` (Transformers) or ``'bicubic'``.
        threshold (float): For one class: sigmoid(logit) > threshold.
        max_logits_bytes (int, optional): Default
            :data:`SEG_LOGITS_BYTES_LIMIT`.

    Returns:
        list[SegDataSample]: With ``pred_sem_seg`` (1×H×W int64) and
        ``seg_logits``.
    """
    _check_mode(resize_mode)
    limit = SEG_LOGITS_BYTES_LIMIT if max_logits_bytes is None \
        else max_logits_bytes
    if data_samples is None:
        shape = tuple(seg_logits.shape[-2:])
        data_samples = [SegDataSample(metainfo=dict(img_shape=shape,
                                                    ori_shape=shape))
                        for _ in range(seg_logits.shape[0])]
    for i, sample in enumerate(data_samples):
        meta = sample.metainfo
        out = _crop_unflip(seg_logits[i:i + 1], meta)
        size = tuple(int(s) for s in meta.get('ori_shape',
                                              out.shape[-2:])[:2])
        num_classes = out.shape[1]
        wanted = meta.get('keep_seg_logits', True)
        keep = wanted and 4 * num_classes * size[0] * size[1] <= limit
        if wanted and not keep:
            warnings.warn(f'seg_logits at {size} would take more than '
                          f'{limit / 1024**3:.3g} GiB; only pred_sem_seg is '
                          'returned')
        if keep or num_classes == 1:
            logits = out if tuple(out.shape[-2:]) == size else \
                F.interpolate(out, size=size, mode=resize_mode,
                              align_corners=False)
            logits = logits[0]
            labels = (logits.sigmoid() > threshold).to(torch.int64) \
                if num_classes == 1 else logits.argmax(dim=0, keepdim=True)
            if keep:
                sample.seg_logits = PixelData(data=logits)
        else:
            labels = resize_argmax(out, size, resize_mode)
        sample.pred_sem_seg = PixelData(data=labels)
    return data_samples

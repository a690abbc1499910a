"""Cross-entropy of bilinearly upsampled logits, one band of rows at a time.

mmseg resizes a head's low-resolution logits to the label size and then
applies ``CrossEntropyLoss`` and ``accuracy``; the full-resolution logits,
``log_softmax``'s saved output and their gradients dominate the training
peak of a segmentation model (B·C·H·W floats each: 315 MB for ADE20K at
batch 2, 512², 150 classes). :func:`resize_cross_entropy` computes the same
loss, accuracy and gradient while holding only a band of output rows at a
time: the forward pass keeps nothing but its inputs, the backward pass
recomputes each band and sends its gradient back through the band's resize.
"""
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable

__all__ = ['resize_cross_entropy']

# Default band: about this many bytes of float32 B×C×rows×W logits. The
# transients of one band (resized logits, log-softmax or softmax, the
# gradient) are a few times this.
CHUNK_BYTES = 16 * 2**20
# mmseg's weight_reduce_loss and accuracy add this to their denominators.
_EPS = torch.finfo(torch.float32).eps

ClassWeight = Optional[Union[Sequence[float], Tensor]]


@dataclass(frozen=True)
class _SourceRows:
    """Bilinear taps of each output row: ``out = λ0·in[i0] + λ1·in[i1]``.

    Attributes:
        index0 (Tensor): H long, first input row of each output row.
        index1 (Tensor): H long, second input row (``i0`` or ``i0 + 1``).
        lambda0 (Tensor): H, weight of ``index0``.
        lambda1 (Tensor): H, weight of ``index1``.
        first (List[int]): ``index0`` as Python ints (band bounds).
        last (List[int]): ``index1`` as Python ints.
    """

    index0: Tensor
    index1: Tensor
    lambda0: Tensor
    lambda1: Tensor
    first: List[int]
    last: List[int]

    def band_matrix(self, r0: int, r1: int) -> Tensor:
        """The taps of output rows ``[r0, r1)`` as a (r1−r0)×n matrix.

        Its columns are the input rows :meth:`_Plan.source_span` names.
        Each row holds λ0 and λ1 (summed when both taps are the last
        row) and zeros, so a matmul with it gives λ0·in[i0] + λ1·in[i1]
        exactly: one GEMM instead of two row gathers, two products and a
        sum over B·C·rows·W elements, about 5× faster on CPU.
        """
        a = self.first[r0]
        n = self.last[r1 - 1] + 1 - a
        rows = torch.arange(r1 - r0, device=self.index0.device)
        matrix = self.lambda0.new_zeros(r1 - r0, n)
        matrix.index_put_((rows, self.index0[r0:r1] - a),
                          self.lambda0[r0:r1], accumulate=True)
        matrix.index_put_((rows, self.index1[r0:r1] - a),
                          self.lambda1[r0:r1], accumulate=True)
        return matrix


def _source_rows(in_size: int, out_size: int, align_corners: bool,
                 dtype: torch.dtype, device: torch.device) -> _SourceRows:
    """Row taps as ATen's bilinear kernel computes them for a given size.

    Mirrors ``area_pixel_compute_scale`` / ``area_pixel_compute_source_index``
    (no ``scale_factor``: mmseg passes the label size; with
    ``align_corners=True`` a scale factor is ignored anyway) and
    ``guard_index_and_lambda``, in the kernel's arithmetic type. An index
    off by one ulp would only move a tap with a weight of almost 0 or 1:
    the resize stays continuous in it.

    Args:
        in_size (int): Input height h.
        out_size (int): Output height H.
        align_corners (bool): As in ``F.interpolate``.
        dtype (torch.dtype): Arithmetic type (float32, or float64 for
            double inputs).
        device (torch.device): Where the index and weight tensors go.

    Returns:
        _SourceRows: The taps of the H output rows.
    """
    dst = torch.arange(out_size, dtype=dtype)
    n_in = torch.tensor(in_size, dtype=dtype)
    if align_corners:
        scale = ((n_in - 1) / (out_size - 1) if out_size > 1
                 else torch.zeros((), dtype=dtype))
        src = scale * dst
    else:
        scale = n_in / out_size
        # ``scale * (dst + 0.5) - 0.5`` as the compiled kernels evaluate it
        # (one fused multiply-add on AVX2 CPUs and CUDA): the float32
        # product is exact in float64, so only the final rounding remains.
        src = (scale.double() * (dst + 0.5).double() - 0.5).to(dtype)
        src = src.clamp_min(0)
    index0 = src.floor().long().clamp_max(in_size - 1)
    lambda1 = (src - index0).clamp(0, 1)
    index1 = index0 + (index0 < in_size - 1).long()
    lambda0 = 1 - lambda1
    return _SourceRows(
        index0.to(device), index1.to(device), lambda0.to(device),
        lambda1.to(device), index0.tolist(), index1.tolist())


@dataclass(frozen=True)
class _Plan:
    """What the forward and backward passes share.

    Attributes:
        size (Tuple[int, int]): Label size (H, W).
        align_corners (bool): Resize mode.
        rows (_SourceRows, optional): Row taps; None if h == H (no resize
            in height: ATen's is then the identity).
        bands (List[Tuple[int, int]]): Output row ranges ``[r0, r1)``.
        ignore_index (int): Label value without loss.
        loss_weight (float): Factor on the loss.
        denominator (Tensor): 0-dim float64, mmseg's ``avg_factor``
            (without its eps).
    """

    size: Tuple[int, int]
    align_corners: bool
    rows: Optional[_SourceRows]
    bands: List[Tuple[int, int]]
    ignore_index: int
    loss_weight: float
    denominator: Tensor

    def source_span(self, r0: int, r1: int) -> Tuple[int, int]:
        """Input rows ``[a, b)`` that output rows ``[r0, r1)`` read."""
        if self.rows is None:
            return r0, r1
        return self.rows.first[r0], self.rows.last[r1 - 1] + 1

    def resize_band(self, source: Tensor, r0: int, r1: int) -> Tensor:
        """Output rows ``[r0, r1)`` of the bilinear resize.

        Args:
            source (Tensor): B×C×n×w, the input rows
                :meth:`source_span` names, in the taps' dtype.
            r0 (int): First output row.
            r1 (int): One past the last output row.

        Returns:
            Tensor: B×C×(r1−r0)×W, equal to those rows of
            ``F.interpolate(logits, size, mode='bilinear')``.
        """
        width = self.size[1]
        # NCHW for the row GEMM; made so here, on the low-resolution rows,
        # not after the width resize (channels-last logits of a conv).
        source = source.contiguous()
        if source.shape[-1] != width:
            # Height unchanged: ATen's height taps are then (row, λ=0), an
            # exact identity, and the width taps are the full resize's.
            source = F.interpolate(source, size=(source.shape[2], width),
                                   mode='bilinear',
                                   align_corners=self.align_corners)
        if self.rows is None:
            return source
        return torch.matmul(self.rows.band_matrix(r0, r1), source)


def _op_dtype(dtype: torch.dtype) -> torch.dtype:
    # Half and bfloat16 logits: computed in float32, rounded where mmseg's
    # path under autocast rounds (see _rounded).
    return torch.float64 if dtype == torch.float64 else torch.float32


def _rounded(x: Tensor, dtype: torch.dtype) -> Tensor:
    """x rounded to dtype, kept in its own dtype.

    Under autocast the unfused path resizes half/bfloat16 logits in their
    dtype (the kernel computes in float32 and rounds its output) and the
    cross-entropy in float32, whose gradient is rounded back on its way
    into the resize.
    """
    return x if x.dtype == dtype else x.to(dtype).to(x.dtype)


def _band_labels(label: Tensor, r0: int, r1: int,
                 ignore_index: int) -> Tuple[Tensor, Tensor]:
    """B×1×n×W labels with ignored pixels set to 0, and the B×1×n×W mask."""
    band = label[:, r0:r1].unsqueeze(1)
    valid = band != ignore_index
    return band.masked_fill(~valid, 0), valid


class _ResizeCrossEntropy(torch.autograd.Function):
    """Band-wise resize + cross-entropy; see :func:`resize_cross_entropy`."""

    @staticmethod
    def forward(ctx, logits: Tensor, label: Tensor,
                class_weight: Optional[Tensor],
                plan: _Plan) -> Tuple[Tensor, Tensor]:
        op_dtype = _op_dtype(logits.dtype)
        loss_sum = torch.zeros((), dtype=torch.float64, device=logits.device)
        correct = torch.zeros((), dtype=torch.long, device=logits.device)
        with torch.autocast(logits.device.type, enabled=False):
            for r0, r1 in plan.bands:
                a, b = plan.source_span(r0, r1)
                x = _rounded(
                    plan.resize_band(logits[:, :, a:b].to(op_dtype), r0, r1),
                    logits.dtype)
                target, valid = _band_labels(label, r0, r1,
                                             plan.ignore_index)
                nll = -torch.log_softmax(x, 1).gather(1, target)
                if class_weight is not None:
                    nll = nll * class_weight[target]
                loss_sum += nll.masked_fill(~valid, 0).sum(
                    dtype=torch.float64)
                # Correct where the label's logit is the maximum: amax is
                # a vectorised reduction, argmax over C is not (20× slower).
                top1 = x.gather(1, target) >= x.amax(1, keepdim=True)
                correct += (top1 & valid).sum()
        ctx.save_for_backward(logits, label, class_weight)
        ctx.plan = plan
        loss = plan.loss_weight * loss_sum / (plan.denominator + _EPS)
        # mmseg's accuracy: (correct + eps) · 100 / (valid + eps), shape (1,).
        total = (label != plan.ignore_index).sum()
        acc = (correct + _EPS) * (100.0 / (total + _EPS))
        ctx.mark_non_differentiable(acc)
        loss = loss.to(torch.float64 if op_dtype == torch.float64
                       else torch.float32)
        return loss, acc.float().view(1)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_loss: Tensor,
                 grad_acc: Tensor) -> Tuple[Optional[Tensor], None, None,
                                            None]:
        if not ctx.needs_input_grad[0]:
            return None, None, None, None
        logits, label, class_weight = ctx.saved_tensors
        plan: _Plan = ctx.plan
        op_dtype = _op_dtype(logits.dtype)
        # d loss / d x = (softmax − onehot) · w[y] · scale at valid pixels.
        scale = (plan.loss_weight * grad_loss.double() /
                 (plan.denominator + _EPS)).to(op_dtype)
        # In the logits' own memory format (channels-last after a oneDNN
        # conv): a plain contiguous gradient would be copied into that
        # layout by the convolution's backward.
        grad = torch.zeros_like(logits, dtype=op_dtype)
        identity = plan.rows is None and logits.shape[-1] == plan.size[1]
        with torch.autocast(logits.device.type, enabled=False):
            for r0, r1 in plan.bands:
                a, b = plan.source_span(r0, r1)
                source = logits[:, :, a:b].detach().to(op_dtype)
                with torch.enable_grad():
                    source.requires_grad_(not identity)
                    x = plan.resize_band(source, r0, r1)
                target, valid = _band_labels(label, r0, r1,
                                             plan.ignore_index)
                coef = valid.to(op_dtype) * scale
                if class_weight is not None:
                    coef = coef * class_weight[target]
                g = torch.softmax(_rounded(x.detach(), logits.dtype), 1)
                g.scatter_add_(1, target, g.new_full(target.shape, -1.0))
                g = _rounded(g * coef, logits.dtype)
                if identity:
                    grad[:, :, a:b] = g
                else:
                    # Neighbouring bands share input rows: their parts add.
                    grad[:, :, a:b] += torch.autograd.grad(x, source, g)[0]
        return grad.to(logits.dtype), None, None, None


def _check_inputs(logits: Tensor, label: Tensor, ignore_index: int,
                  class_weight: Optional[Tensor],
                  chunk_rows: Optional[int]) -> None:
    if logits.dim() != 4 or label.dim() != 3 or \
            label.shape[0] != logits.shape[0]:
        raise ValueError(
            'resize_cross_entropy expects B×C×h×w logits and B×H×W labels, '
            f'got logits {tuple(logits.shape)} and label '
            f'{tuple(label.shape)}')
    if not logits.is_floating_point():
        raise TypeError(f'logits must be floating point, got {logits.dtype}')
    if label.dtype != torch.long:
        raise TypeError('label must be torch.long (class indices), got '
                        f'{label.dtype}')
    if label.device != logits.device:
        raise ValueError(f'logits on {logits.device} but label on '
                         f'{label.device}')
    num_classes = logits.shape[1]
    if class_weight is not None and class_weight.shape != (num_classes, ):
        raise ValueError(
            f'class_weight has shape {tuple(class_weight.shape)}, expected '
            f'({num_classes},) for {num_classes}-class logits')
    if chunk_rows is not None and (isinstance(chunk_rows, bool) or
                                   not isinstance(chunk_rows, int) or
                                   chunk_rows < 1):
        raise ValueError(
            f'chunk_rows must be a positive int or None, got {chunk_rows!r}')
    # F.cross_entropy would fail on these (a device assert on CUDA).
    bad = ((label < 0) | (label >= num_classes)) & (label != ignore_index)
    if bad.any():
        values = torch.unique(label[bad]).tolist()
        raise ValueError(
            f'label values {values[:10]} are outside [0, {num_classes}) and '
            f'not the ignore index {ignore_index}')


def _denominator(label: Tensor, class_weight: Optional[Tensor],
                 ignore_index: int, avg_non_ignore: bool) -> Tensor:
    """mmseg's ``avg_factor`` for ``reduction='mean'``, 0-dim float64."""
    valid = label != ignore_index
    if class_weight is None:
        count = valid.sum() if avg_non_ignore else label.numel()
        return torch.as_tensor(count, dtype=torch.float64,
                               device=label.device)
    # mmseg: sum of class_weight[label] over all pixels (ignored ones too,
    # then zeroed if avg_non_ignore), so class weights divide as well.
    num_classes = class_weight.shape[0]
    if not 0 <= ignore_index < num_classes and not bool(valid.all()):
        raise ValueError(
            'mmseg 1.x CrossEntropyLoss with class_weight indexes '
            'class_weight by every label, ignored ones included: ignore '
            f'index {ignore_index} is not a class of {num_classes}, so it '
            'raises IndexError on these labels and defines no loss. Drop '
            'class_weight or the ignored pixels.')
    weights = class_weight[label.clamp(0, num_classes - 1)].double()
    if avg_non_ignore:
        weights = weights * valid
    return weights.sum()


def resize_cross_entropy(
        logits: Tensor,
        label: Tensor,
        *,
        align_corners: bool,
        class_weight: ClassWeight = None,
        ignore_index: int = 255,
        avg_non_ignore: bool = False,
        loss_weight: float = 1.0,
        chunk_rows: Optional[int] = None) -> Tuple[Tensor, Tensor]:
    """mmseg's resize → ``CrossEntropyLoss`` → ``accuracy``, band by band.

    Equal (up to float rounding of the sums) to::

        x = F.interpolate(logits, size=label.shape[1:], mode='bilinear',
                          align_corners=align_corners)
        loss = CrossEntropyLoss(loss_weight=loss_weight,
                                class_weight=class_weight,
                                avg_non_ignore=avg_non_ignore)(
            x, label, ignore_index=ignore_index)
        acc = accuracy(x, label, ignore_index=ignore_index)

    and so is the gradient, but no B×C×H×W tensor is ever held: the forward
    pass saves only ``logits`` and ``label``, the backward pass recomputes
    each band of output rows. As in mmseg, the loss is the sum of
    ``class_weight[y]·nll`` over valid pixels divided by ``avg_factor + eps``
    where ``avg_factor`` is B·H·W (or the number of valid pixels with
    ``avg_non_ignore``), and with ``class_weight`` the sum of the weights of
    those pixels' labels; an all-ignored batch gives loss 0, gradient 0 and
    (mmseg's eps) accuracy 100. A pixel counts as correct when its label's
    logit equals the maximum; on an exact tie between classes mmseg's
    ``topk`` picks one of them, which may not be the label.

    Args:
        logits (Tensor): B×C×h×w low-resolution logits: float32, float64,
            or half/bfloat16 (then as mmseg under autocast: the resized
            logits rounded to that type, the loss in float32).
        label (Tensor): B×H×W long class indices or ``ignore_index``.
        align_corners (bool): Resize mode, as in ``F.interpolate``.
        class_weight (Sequence[float] | Tensor, optional): C weights.
        ignore_index (int): Label without loss or accuracy. Defaults to 255.
        avg_non_ignore (bool): Average over valid pixels only. Defaults to
            False (mmseg's default: over all B·H·W pixels).
        loss_weight (float): Factor on the loss. Defaults to 1.0.
        chunk_rows (int, optional): Output rows per band; default about
            16 MB of float32 logits per band.

    Returns:
        Tuple[Tensor, Tensor]: The 0-dim loss (float32; float64 for double
        logits) and the accuracy in percent, shape (1,) as mmseg's.
    """
    if class_weight is not None:
        class_weight = torch.as_tensor(
            class_weight, dtype=_op_dtype(logits.dtype),
            device=logits.device).detach()
    _check_inputs(logits, label, ignore_index, class_weight, chunk_rows)
    batch, num_classes, height, width = logits.shape
    size = (label.shape[1], label.shape[2])
    if chunk_rows is None:
        row_bytes = batch * num_classes * size[1] * 4
        chunk_rows = max(1, CHUNK_BYTES // max(row_bytes, 1))
    rows = None
    if height != size[0]:
        rows = _source_rows(height, size[0], align_corners,
                            _op_dtype(logits.dtype), logits.device)
    plan = _Plan(
        size=size, align_corners=align_corners, rows=rows,
        bands=[(r0, min(r0 + chunk_rows, size[0]))
               for r0 in range(0, size[0], chunk_rows)],
        ignore_index=ignore_index, loss_weight=float(loss_weight),
        denominator=_denominator(label, class_weight, ignore_index,
                                 avg_non_ignore))
    return _ResizeCrossEntropy.apply(logits, label, class_weight, plan)

"""Depth losses against independent NumPy re-computations."""
import math

import numpy as np
import pytest
import torch

import dpt_mm  # noqa: F401,I001  registers; shim before any mmseg import
from dpt_mm.models.losses.depth_utils import trimmed_sum
from mmseg.registry import MODELS

B, H, W = 3, 16, 20


# ---------------------------------------------------------------------------
# NumPy references, written from the formulas, not from the torch code.
# ---------------------------------------------------------------------------
def np_valid(target, lo=None, hi=None):
    with np.errstate(invalid='ignore'):
        valid = np.isfinite(target) & (target > 0)
        if lo is not None:
            valid &= target >= lo
        if hi is not None:
            valid &= target <= hi
    return valid


def np_fit(p, t):
    """Least-squares s, t via numpy; (0, 0) when the system is singular."""
    n = p.size
    det = n * np.sum(p * p) - np.sum(p)**2
    if n == 0 or det <= 1e-9 * n * np.sum(p * p):
        return 0.0, 0.0
    design = np.stack([p, np.ones_like(p)], axis=1)
    (scale, shift), *_ = np.linalg.lstsq(design, t, rcond=None)
    return scale, shift


def np_normalise(x, valid):
    """Median/MAD over valid pixels; lower median for an even count."""
    v = x[valid]
    med = np.sort(v)[(v.size - 1) // 2] if v.size else 0.0
    mad = max(np.abs(v - med).mean() if v.size else 0.0, 1e-6)
    return np.where(valid, (x - med) / mad, 0.0)


def np_aligned(pred, target, valid, alignment):
    """Per-image aligned prediction and target, full maps, B×H×W."""
    pred_out, target_out = np.zeros_like(pred), np.zeros_like(pred)
    for b in range(pred.shape[0]):
        m = valid[b]
        t_b = np.where(m, target[b], 0.0)
        if alignment == 'lstsq':
            s, t = np_fit(pred[b][m], t_b[m])
            pred_out[b] = s * pred[b] + t
            target_out[b] = t_b
        else:
            pred_out[b] = np_normalise(pred[b], m)
            target_out[b] = np_normalise(t_b, m)
    return pred_out, target_out


def np_ssi(pred, target, valid, alignment='lstsq', data_term='mse', trim=0.0):
    pred_a, target_a = np_aligned(pred, target, valid, alignment)
    total, divisor = 0.0, 0
    for b in range(pred.shape[0]):
        r = (pred_a[b] - target_a[b])[valid[b]]
        err = np.sort(r**2 if data_term == 'mse' else np.abs(r))
        n = err.size
        total += err[:n - int(math.floor(trim * n))].sum()
        divisor += 2 * n
    return total / divisor if divisor else 0.0


def np_gradient(pred, target, valid, alignment='lstsq', scales=4):
    pred_a, target_a = np_aligned(pred, target, valid, alignment)
    residual = np.where(valid, pred_a - target_a, 0.0)
    total = 0.0
    for k in range(scales):
        r = residual[:, ::2**k, ::2**k]
        m = valid[:, ::2**k, ::2**k]
        gx = np.abs(np.diff(r, axis=2)) * (m[:, :, 1:] & m[:, :, :-1])
        gy = np.abs(np.diff(r, axis=1)) * (m[:, 1:, :] & m[:, :-1, :])
        count = m.sum()
        total += (gx.sum() + gy.sum()) / count if count else 0.0
    return total


def np_silog(pred, target, valid, lambd=0.5, sqrt=True, eps=1e-6):
    losses = []
    for b in range(pred.shape[0]):
        m = valid[b]
        if not m.any():
            continue
        d = np.log(np.maximum(pred[b][m], 1e-6)) - np.log(target[b][m])
        value = max(np.mean(d**2) - lambd * np.mean(d)**2, 0.0)
        losses.append(np.sqrt(value + eps) if sqrt else value)
    return float(np.mean(losses)) if losses else 0.0


# ---------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------
def random_disparity(seed, shape=(B, H, W)):
    gen = np.random.default_rng(seed)
    target = gen.uniform(0.1, 2.0, shape)
    pred = 1.7 * target + 0.3 + gen.normal(0, 0.2, shape)
    # Holes: a rectangle per image plus scattered pixels.
    valid = gen.random(shape) > 0.2
    valid[:, 2:6, 3:9] = False
    target = np.where(valid, target, 0.0)
    return pred, target, valid


def corrupt(target, valid, seed):
    """Put 0, NaN, +inf and -inf into the invalid pixels of the target."""
    gen = np.random.default_rng(seed)
    choice = gen.integers(0, 4, target.shape)
    bad = np.array([0.0, np.nan, np.inf, -np.inf])[choice]
    return np.where(valid, target, bad)


def as_torch(*arrays):
    return [
        torch.tensor(a[:, None], dtype=torch.float32) for a in arrays
    ]


LOSS_CONFIGS = [
    dict(type='ScaleShiftInvariantLoss'),
    dict(type='ScaleShiftInvariantLoss', alignment='median', data_term='mae',
         trim=0.2),
    dict(type='ScaleShiftInvariantLoss', target_space='depth'),
    dict(type='GradientMatchingLoss'),
    dict(type='GradientMatchingLoss', alignment='median'),
    dict(type='DepthSiLogLoss'),
    dict(type='DepthSiLogLoss', sqrt=False, lambd=1.0),
]


# ---------------------------------------------------------------------------
# Against the references
# ---------------------------------------------------------------------------
@pytest.mark.parametrize('alignment', ['lstsq', 'median'])
@pytest.mark.parametrize('data_term', ['mse', 'mae'])
@pytest.mark.parametrize('trim', [0.0, 0.2])
def test_ssi_matches_numpy(alignment, data_term, trim):
    pred, target, valid = random_disparity(0)
    loss_fn = MODELS.build(
        dict(type='ScaleShiftInvariantLoss', alignment=alignment,
             data_term=data_term, trim=trim, loss_weight=2.0))
    assert loss_fn.loss_name == 'loss_ssi'
    loss = loss_fn(*as_torch(pred, target))
    expected = 2.0 * np_ssi(pred, target, valid, alignment, data_term, trim)
    assert expected > 0
    assert loss.item() == pytest.approx(expected, rel=1e-4)


def test_ssi_depth_target_and_bounds():
    pred, disparity, valid = random_disparity(1)
    depth = np.where(valid, 1.0 / np.where(valid, disparity, 1.0), 0.0)
    lo, hi = 0.8, 5.0
    in_range = valid & (depth >= lo) & (depth <= hi)
    assert 0 < in_range.sum() < valid.sum()
    loss_fn = MODELS.build(
        dict(type='ScaleShiftInvariantLoss', target_space='depth',
             min_target=lo, max_target=hi))
    loss = loss_fn(*as_torch(pred, depth))
    expected = np_ssi(pred, np.where(in_range, disparity, 0.0), in_range)
    assert loss.item() == pytest.approx(expected, rel=1e-4)


def test_ssi_constant_prediction_gives_zero_scale_and_shift():
    _, target, valid = random_disparity(2)
    pred = np.full_like(target, 0.7)
    loss = MODELS.build(dict(type='ScaleShiftInvariantLoss'))(
        *as_torch(pred, target))
    # s = t = 0: the aligned prediction is 0 and the loss is Σt²/(2M).
    expected = (target[valid]**2).sum() / (2 * valid.sum())
    assert loss.item() == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize('loss_type',
                         ['ScaleShiftInvariantLoss', 'GradientMatchingLoss'])
def test_singular_image_has_finite_gradients(loss_type):
    # Image 0 has a single valid pixel: its 2×2 system is exactly singular.
    pred, target, valid = random_disparity(16)
    valid[0] = False
    valid[0, 8, 8] = True
    target = np.where(valid, target, 0.0)
    pred_t, target_t = as_torch(pred, target)
    pred_t.requires_grad_(True)
    loss = MODELS.build(dict(type=loss_type))(pred_t, target_t)
    loss.backward()
    assert loss.item() == pytest.approx(
        np_ssi(pred, target, valid) if loss_type == 'ScaleShiftInvariantLoss'
        else 0.5 * np_gradient(pred, target, valid), rel=1e-4)
    assert torch.isfinite(pred_t.grad).all()


@pytest.mark.parametrize('alignment', ['lstsq', 'median'])
def test_gradient_matching_matches_numpy(alignment):
    pred, target, valid = random_disparity(3)
    loss_fn = MODELS.build(
        dict(type='GradientMatchingLoss', alignment=alignment))
    assert loss_fn.loss_name == 'loss_grad'
    assert loss_fn.loss_weight == 0.5
    loss = loss_fn(*as_torch(pred, target))
    expected = 0.5 * np_gradient(pred, target, valid, alignment)
    assert expected > 0
    assert loss.item() == pytest.approx(expected, rel=1e-4)


@pytest.mark.parametrize('scales', [1, 3])
def test_gradient_matching_scales(scales):
    pred, target, valid = random_disparity(4)
    loss = MODELS.build(
        dict(type='GradientMatchingLoss', scales=scales, loss_weight=1.0))(
            *as_torch(pred, target))
    expected = np_gradient(pred, target, valid, 'lstsq', scales)
    assert loss.item() == pytest.approx(expected, rel=1e-4)


@pytest.mark.parametrize('lambd,sqrt', [(0.5, True), (0.85, True),
                                        (1.0, False)])
def test_silog_matches_numpy(lambd, sqrt):
    gen = np.random.default_rng(5)
    target = gen.uniform(0.5, 10.0, (B, H, W))
    pred = target * np.exp(gen.normal(0.1, 0.3, target.shape))
    valid = gen.random(target.shape) > 0.3
    valid[1] = False  # an image without valid pixel is left out of the mean
    target = np.where(valid, target, 0.0)
    loss_fn = MODELS.build(
        dict(type='DepthSiLogLoss', lambd=lambd, sqrt=sqrt, loss_weight=3.0))
    assert loss_fn.loss_name == 'loss_silog'
    loss = loss_fn(*as_torch(pred, target))
    expected = 3.0 * np_silog(pred, target, valid, lambd, sqrt)
    assert expected > 0
    assert loss.item() == pytest.approx(expected, rel=1e-4)


def test_silog_depth_bounds_and_zero_prediction():
    gen = np.random.default_rng(6)
    target = gen.uniform(0.5, 10.0, (B, H, W))
    pred = target * np.exp(gen.normal(0, 0.3, target.shape))
    pred[:, 0, :5] = 0.0  # a ReLU head can output 0
    in_range = (target >= 1.0) & (target <= 8.0)
    pred_t, target_t = as_torch(pred, target)
    pred_t.requires_grad_(True)
    loss = MODELS.build(
        dict(type='DepthSiLogLoss', min_depth=1.0, max_depth=8.0))(pred_t,
                                                                   target_t)
    loss.backward()
    assert loss.item() == pytest.approx(
        np_silog(pred, target, in_range), rel=1e-4)
    assert torch.isfinite(pred_t.grad).all()


# ---------------------------------------------------------------------------
# Invariances and the trimmed sum
# ---------------------------------------------------------------------------
@pytest.mark.parametrize('alignment', ['lstsq', 'median'])
def test_ssi_invariant_to_scale_and_shift(alignment):
    pred, target, _ = random_disparity(7)
    loss_fn = MODELS.build(
        dict(type='ScaleShiftInvariantLoss', alignment=alignment))
    base = loss_fn(*as_torch(pred, target)).item()
    moved = loss_fn(*as_torch(4.5 * pred - 2.0, target)).item()
    assert base > 1e-3
    assert moved == pytest.approx(base, rel=1e-4)


@pytest.mark.parametrize('alignment', ['lstsq', 'median'])
def test_gradient_matching_zero_for_affine_prediction(alignment):
    _, target, valid = random_disparity(8)
    pred = np.where(valid, 3.0 * target + 0.25, 0.0)
    loss_fn = MODELS.build(
        dict(type='GradientMatchingLoss', alignment=alignment))
    assert loss_fn(*as_torch(pred, target)).item() == pytest.approx(
        0.0, abs=1e-5)
    # And not zero for a prediction that is not affine in the target.
    pred = pred + np.random.default_rng(8).normal(0, 0.2, pred.shape)
    assert loss_fn(*as_torch(pred, target)).item() > 1e-2


def test_silog_scale_invariant_for_lambda_one():
    gen = np.random.default_rng(9)
    target = gen.uniform(0.5, 10.0, (B, H, W))
    pred = target * np.exp(gen.normal(0, 0.3, target.shape))
    loss_fn = MODELS.build(dict(type='DepthSiLogLoss', lambd=1.0, sqrt=False))
    base = loss_fn(*as_torch(pred, target)).item()
    assert base > 1e-3
    assert loss_fn(*as_torch(2.5 * pred, target)).item() == pytest.approx(
        base, rel=1e-4)


def test_trimmed_sum_drops_largest_per_image():
    error = torch.zeros(2, 1, 10)
    mask = torch.zeros(2, 1, 10, dtype=torch.bool)
    error[0, 0] = torch.randperm(10).float() + 1  # 1..10 shuffled
    mask[0] = True
    error[1, 0, :5] = torch.tensor([5.0, 1.0, 4.0, 2.0, 3.0])
    error[1, 0, 5:] = 1e6  # invalid pixels, must never be kept
    mask[1, 0, :5] = True
    sums = trimmed_sum(error, mask, trim=0.2)
    # Image 0: floor(0.2·10) = 2 dropped (9, 10); image 1: 1 dropped (5).
    assert sums.tolist() == [float(sum(range(1, 9))), float(1 + 2 + 3 + 4)]


def test_trimmed_loss_ignores_outliers():
    pred, target, valid = random_disparity(10)
    outliers = np.zeros_like(valid)
    outliers[:, -1, -4:] = True  # 4 of about 250 valid pixels per image
    valid |= outliers
    target = np.where(outliers, 50.0, target)
    config = dict(type='ScaleShiftInvariantLoss', alignment='median',
                  data_term='mae')
    plain = MODELS.build(config)(*as_torch(pred, target)).item()
    trimmed = MODELS.build(dict(config, trim=0.2))(*as_torch(pred,
                                                             target)).item()
    assert trimmed == pytest.approx(
        np_ssi(pred, target, valid, 'median', 'mae', 0.2), rel=1e-4)
    assert trimmed < 0.5 * plain


# ---------------------------------------------------------------------------
# Invalid targets
# ---------------------------------------------------------------------------
@pytest.mark.parametrize('config', LOSS_CONFIGS)
@pytest.mark.parametrize('fill', [0.0, np.nan, np.inf, 'mixed'])
def test_all_invalid_batch_gives_zero_loss_and_grads(config, fill):
    pred = np.random.default_rng(11).uniform(0.1, 2.0, (B, H, W))
    if fill == 'mixed':
        target = corrupt(np.zeros_like(pred), np.zeros(pred.shape, bool), 11)
    else:
        target = np.full_like(pred, fill)
    pred_t, target_t = as_torch(pred, target)
    pred_t.requires_grad_(True)
    loss = MODELS.build(config)(pred_t, target_t)
    loss.backward()
    assert torch.isfinite(loss) and loss.item() == 0.0
    assert torch.isfinite(pred_t.grad).all()
    assert (pred_t.grad == 0).all()


@pytest.mark.parametrize('config', LOSS_CONFIGS)
def test_corrupt_targets_are_masked(config):
    pred, disparity, valid = random_disparity(12)
    if config.get('target_space') == 'depth' or \
            config['type'] == 'DepthSiLogLoss':
        target = np.where(valid, 1.0 / np.where(valid, disparity, 1.0), 0.0)
    else:
        target = disparity
    # Also NaN predictions where the target is invalid: they must not leak.
    pred = np.where(valid, np.abs(pred) + 0.05, np.nan)
    loss_fn = MODELS.build(config)

    clean = loss_fn(*as_torch(pred, target),
                    valid_mask=torch.tensor(valid[:, None]))
    pred_t, target_t = as_torch(pred, corrupt(target, valid, 12))
    pred_t.requires_grad_(True)
    loss = loss_fn(pred_t, target_t)
    loss.backward()
    assert torch.isfinite(loss) and loss.item() > 0
    assert loss.item() == pytest.approx(clean.item(), rel=1e-6)
    assert torch.isfinite(pred_t.grad).all()
    assert (pred_t.grad[~torch.tensor(valid[:, None])] == 0).all()


def test_valid_mask_is_combined_with_target_validity():
    pred, target, valid = random_disparity(13)
    extra = np.ones_like(valid)
    extra[:, :, :7] = False
    loss = MODELS.build(dict(type='ScaleShiftInvariantLoss'))(
        *as_torch(pred, target), valid_mask=torch.tensor(extra[:, None]))
    expected = np_ssi(pred, target, valid & extra)
    assert expected != pytest.approx(np_ssi(pred, target, valid), rel=1e-3)
    assert loss.item() == pytest.approx(expected, rel=1e-4)


# ---------------------------------------------------------------------------
# Gradients and shapes
# ---------------------------------------------------------------------------
@pytest.mark.parametrize('config', [
    dict(type='ScaleShiftInvariantLoss'),
    dict(type='GradientMatchingLoss', scales=2),
    dict(type='DepthSiLogLoss'),
])
def test_gradcheck(config):
    pred, target, _ = random_disparity(14, shape=(2, 5, 6))
    pred_t = torch.tensor(np.abs(pred) + 0.1, dtype=torch.float64)
    pred_t.requires_grad_(True)
    target_t = torch.tensor(target, dtype=torch.float64)
    loss_fn = MODELS.build(config)
    assert torch.autograd.gradcheck(lambda p: loss_fn(p, target_t), pred_t)


@pytest.mark.parametrize('config', LOSS_CONFIGS)
def test_shapes(config):
    pred, target, _ = random_disparity(15)
    loss_fn = MODELS.build(config)
    pred_t, target_t = as_torch(np.abs(pred) + 0.05, target)
    assert loss_fn(pred_t[:, 0], target_t[:, 0]).item() == pytest.approx(
        loss_fn(pred_t, target_t).item(), rel=1e-6)
    shapes = r'\(3, 1, 16, 19\).*\(3, 1, 16, 20\)'
    with pytest.raises(ValueError, match=shapes):
        loss_fn(pred_t[..., :-1], target_t)


def test_bad_options_raise():
    with pytest.raises(ValueError, match='alignment'):
        MODELS.build(dict(type='ScaleShiftInvariantLoss', alignment='mean'))
    with pytest.raises(ValueError, match='trim'):
        MODELS.build(dict(type='ScaleShiftInvariantLoss', trim=1.0))
    with pytest.raises(ValueError, match='target_space'):
        MODELS.build(dict(type='GradientMatchingLoss', target_space='log'))
    with pytest.raises(ValueError, match='lambd'):
        MODELS.build(dict(type='DepthSiLogLoss', lambd=1.5))


def test_gradient_matching_without_alignment_compares_values_as_given():
    torch.manual_seed(0)
    target = torch.rand(2, 1, 16, 16) + 0.5
    loss = MODELS.build(dict(type='GradientMatchingLoss', alignment='none',
                             target_space='disparity', loss_weight=1.0))
    assert loss(target.clone(), target).item() == 0.0
    # A scaled prediction is penalised without alignment.
    assert loss(2 * target, target).item() > 0.0

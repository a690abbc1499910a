"""DPTDepthMetric against an independent NumPy re-computation."""
import numpy as np
import pytest
import torch
from mmengine.structures import PixelData

import dpt_mm  # noqa: F401,I001  registers; shim before any mmseg import
from mmseg.evaluation.metrics import DepthMetric
from mmseg.registry import METRICS
from mmseg.structures import SegDataSample

MIN, MAX = 1e-3, 10.0


def np_metrics(gt, pred):
    """BTS eval_with_pngs compute_errors, on 1-D arrays."""
    thresh = np.maximum(gt / pred, pred / gt)
    err = np.log(pred) - np.log(gt)
    return {
        'd1': (thresh < 1.25).mean(),
        'd2': (thresh < 1.25**2).mean(),
        'd3': (thresh < 1.25**3).mean(),
        'abs_rel': np.mean(np.abs(gt - pred) / gt),
        'sq_rel': np.mean((gt - pred)**2 / gt),
        'rmse': np.sqrt(np.mean((gt - pred)**2)),
        'rmse_log': np.sqrt(np.mean((np.log(gt) - np.log(pred))**2)),
        'log10': np.mean(np.abs(np.log10(pred) - np.log10(gt))),
        'silog': np.sqrt(np.mean(err**2) - np.mean(err)**2) * 100,
    }


def bts_clip(pred):
    """BTS: predictions clamped into [min_depth_eval, max_depth_eval]."""
    return np.clip(pred, MIN, MAX)


def np_mean_metrics(pairs):
    """Average of per-image metrics; pairs of (gt, pred) 1-D arrays."""
    per_image = [np_metrics(gt, pred) for gt, pred in pairs]
    return {k: np.mean([m[k] for m in per_image]) for k in per_image[0]}


def sample(pred, gt):
    """A data sample as the evaluator hands it over (dict form)."""
    return dict(
        pred_depth_map=dict(data=torch.tensor(pred)[None]),
        gt_depth_map=dict(data=torch.tensor(gt)[None]))


def run_metric(pairs, **kwargs):
    cfg = dict(type='DPTDepthMetric', min_depth_eval=MIN, max_depth_eval=MAX)
    metric = METRICS.build(dict(cfg, **kwargs))
    metric.process({}, [sample(pred, gt) for pred, gt in pairs])
    return metric.compute_metrics(metric.results)


def assert_metrics_equal(result, expected):
    assert set(result) == set(expected)
    for key, value in expected.items():
        assert np.isfinite(result[key]), key
        assert result[key] == pytest.approx(value, rel=1e-7, abs=1e-10), key


def random_scene(seed, shape=(24, 32)):
    gen = np.random.default_rng(seed)
    gt = gen.uniform(0.5, 9.5, shape)
    gt[gen.random(shape) < 0.2] = 0.0  # holes
    gt[gen.random(shape) < 0.05] = 12.0  # beyond max_depth_eval
    gt[0, :3] = np.nan
    pred = np.abs(np.where(gt > 0, gt, 5.0) * gen.lognormal(0, 0.2, shape))
    return pred, gt


def in_range(gt):
    with np.errstate(invalid='ignore'):
        return (gt > MIN) & (gt < MAX)


def test_keys_match_mmseg():
    assert set(METRICS.get('DPTDepthMetric').METRICS) == set(
        DepthMetric.METRICS)


def test_matches_numpy_per_image_average():
    # Very different numbers of valid pixels: per-image averaging and pixel
    # pooling give different numbers.
    scenes = [random_scene(0), random_scene(1, (8, 10)), random_scene(2)]
    scenes[1] = (scenes[1][0] * 1.6, scenes[1][1])
    result = run_metric(scenes)
    expected = np_mean_metrics([(gt[in_range(gt)],
                                 bts_clip(pred[in_range(gt)]))
                                for pred, gt in scenes])
    assert_metrics_equal(result, expected)
    pooled = np_metrics(
        np.concatenate([gt[in_range(gt)] for _, gt in scenes]),
        np.concatenate([bts_clip(pred[in_range(gt)])
                        for pred, gt in scenes]))
    assert result['abs_rel'] != pytest.approx(pooled['abs_rel'], rel=1e-3)


def test_accepts_seg_data_samples_and_subset():
    pred, gt = random_scene(3)
    data_sample = SegDataSample(
        pred_depth_map=PixelData(data=torch.tensor(pred)[None]),
        gt_depth_map=PixelData(data=torch.tensor(gt)[None]))
    metric = METRICS.build(
        dict(type='DPTDepthMetric', max_depth_eval=MAX,
             depth_metrics=['abs_rel', 'd1']))
    metric.process({}, [data_sample])
    result = metric.evaluate(1)
    expected = np_metrics(gt[in_range(gt)], bts_clip(pred[in_range(gt)]))
    assert list(result) == ['abs_rel', 'd1']
    assert result['abs_rel'] == pytest.approx(expected['abs_rel'], rel=1e-7)
    assert result['d1'] == pytest.approx(expected['d1'], rel=1e-7)


def scene_with_garbage_outside(shape, region, seed):
    """Prediction close to gt inside ``region``, garbage outside it."""
    gen = np.random.default_rng(seed)
    gt = gen.uniform(0.5, 9.5, shape)
    pred = gt * gen.lognormal(0, 0.1, shape)
    inside = np.zeros(shape, bool)
    inside[region] = True
    pred = np.where(inside, pred, 0.0)  # clamps to min_depth_eval
    return pred, gt, inside


@pytest.mark.parametrize('shape,region', [
    ((480, 640), np.s_[45:471, 41:601]),  # the official Eigen crop
    ((960, 1280), np.s_[90:942, 82:1202]),  # the same crop, scaled ×2
])
def test_nyu_crop(shape, region):
    pred, gt, inside = scene_with_garbage_outside(shape, region, 4)
    result = run_metric([(pred, gt)], crop_type='nyu_crop')
    assert_metrics_equal(result,
                         np_metrics(gt[inside], bts_clip(pred[inside])))
    # Without the crop the garbage counts.
    uncropped = run_metric([(pred, gt)])
    assert uncropped['abs_rel'] > 2 * result['abs_rel']


def test_garg_crop():
    height, width = 100, 200
    # BTS eval_with_pngs: int(fraction · size).
    region = np.s_[int(0.40810811 * height):int(0.99189189 * height),
                   int(0.03594771 * width):int(0.96405229 * width)]
    pred, gt, inside = scene_with_garbage_outside((height, width), region, 5)
    result = run_metric([(pred, gt)], crop_type='garg_crop')
    assert_metrics_equal(result,
                         np_metrics(gt[inside], bts_clip(pred[inside])))


def test_degenerate_predictions_are_clamped():
    pred, gt = random_scene(6)
    pred[:4] = 0.0
    pred[4, :8] = -3.0
    pred[5, :8] = np.nan
    pred[6, :8] = np.inf
    pred[7, :8] = 50.0
    result = run_metric([(pred, gt)])
    clamped = bts_clip(np.nan_to_num(pred, nan=MAX, posinf=MAX))
    mask = in_range(gt)
    assert_metrics_equal(result, np_metrics(gt[mask], clamped[mask]))


def test_all_zero_prediction_is_finite():
    _, gt = random_scene(7)
    result = run_metric([(np.zeros_like(gt), gt)])
    assert all(np.isfinite(v) for v in result.values())
    assert result['d1'] == 0.0


def test_disparity_prediction():
    pred, gt = random_scene(8)
    mask = in_range(gt)
    disparity = np.where(mask, 1.0 / np.where(mask, gt, 1.0), 0.0)
    disparity = disparity * np.random.default_rng(8).lognormal(
        0, 0.1, gt.shape)
    result = run_metric([(disparity, gt)], pred_space='disparity')
    depth = 1.0 / np.maximum(disparity, 1.0 / MAX)
    assert_metrics_equal(result, np_metrics(gt[mask], depth[mask]))


def np_zero_shot_depth(pred_disparity, gt, mask):
    design = np.stack([pred_disparity[mask], np.ones(mask.sum())], axis=1)
    (s, t), *_ = np.linalg.lstsq(design, 1.0 / gt[mask], rcond=None)
    aligned = np.maximum(s * pred_disparity + t, 1.0 / MAX)
    return np.clip(1.0 / aligned, MIN, MAX)


def test_lstsq_alignment_recovers_scaled_shifted_disparity():
    scenes = []
    for seed, (scale, shift) in enumerate([(2.5, -0.1), (0.02, 3.0)]):
        _, gt = random_scene(9 + seed)
        mask = in_range(gt)
        gt_disparity = 1.0 / np.where(mask, gt, 1.0)
        # pred = (1/gt − t) / s, so s·pred + t = 1/gt on valid pixels;
        # arbitrary values where the ground truth is invalid.
        pred = np.where(mask, (gt_disparity - shift) / scale, 7.0)
        scenes.append((pred, gt))
    result = run_metric(scenes, align='lstsq_disparity',
                        pred_space='disparity')
    assert result['abs_rel'] == pytest.approx(0.0, abs=1e-9)
    assert result['rmse'] == pytest.approx(0.0, abs=1e-8)
    assert result['d1'] == 1.0
    unaligned = run_metric(scenes, pred_space='disparity')
    assert unaligned['abs_rel'] > 0.1


def test_lstsq_alignment_matches_numpy():
    pred, gt = random_scene(11)
    mask = in_range(gt)
    gen = np.random.default_rng(11)
    disparity = 3.0 / np.where(mask, gt, 2.0) + 0.2 + gen.normal(
        0, 0.02, gt.shape)
    disparity[:2, :5] = 1e-4  # far away after alignment: capped at MAX
    result = run_metric([(disparity, gt)], align='lstsq_disparity',
                        pred_space='disparity')
    depth = np_zero_shot_depth(disparity, gt, mask)
    assert_metrics_equal(result, np_metrics(gt[mask], depth[mask]))
    # A depth prediction is inverted before the same fit.
    result = run_metric([(1.0 / disparity, gt)], align='lstsq_disparity')
    assert_metrics_equal(result, np_metrics(gt[mask], depth[mask]))


def test_sample_without_valid_pixel_is_skipped():
    pred, gt = random_scene(12)
    metric = METRICS.build(dict(type='DPTDepthMetric', max_depth_eval=MAX))
    with pytest.warns(UserWarning, match='skipped'):
        metric.process({}, [
            sample(pred, gt),
            sample(pred, np.zeros_like(gt)),
        ])
    assert len(metric.results) == 2  # one entry per sample, for collection
    result = metric.compute_metrics(metric.results)
    mask = in_range(gt)
    assert_metrics_equal(result, np_metrics(gt[mask], bts_clip(pred[mask])))


def test_nothing_valid_raises():
    pred, gt = random_scene(13)
    metric = METRICS.build(dict(type='DPTDepthMetric', max_depth_eval=MAX))
    with pytest.warns(UserWarning):
        metric.process({}, [sample(pred, np.full_like(gt, np.nan)),
                            sample(pred, np.full_like(gt, 20.0))])
    with pytest.raises(ValueError, match='none of the 2 samples'):
        metric.evaluate(2)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match='max_depth_eval'):
        METRICS.build(dict(type='DPTDepthMetric'))
    with pytest.raises(ValueError, match='crop_type'):
        METRICS.build(
            dict(type='DPTDepthMetric', max_depth_eval=MAX, crop_type='x'))
    with pytest.raises(ValueError, match='min_depth_eval'):
        METRICS.build(
            dict(type='DPTDepthMetric', max_depth_eval=MAX,
                 min_depth_eval=0.0))
    with pytest.raises(ValueError, match='unknown depth metrics'):
        METRICS.build(
            dict(type='DPTDepthMetric', max_depth_eval=MAX,
                 depth_metrics=['a1']))
    metric = METRICS.build(dict(type='DPTDepthMetric', max_depth_eval=MAX))
    with pytest.raises(ValueError, match=r'\(4, 5\).*\(4, 6\)'):
        metric.process({}, [sample(np.ones((4, 5)), np.ones((4, 6)))])

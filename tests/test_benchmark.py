"""The benchmark tool runs end to end, and the fast path keeps the outputs.

No timing is asserted: the machine is shared and timings are noise here.
"""
import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from dpt_mm.accel import (fold_conv_bn, fuse_conv_norms,
                          optimize_for_inference)
from mmengine.config import ConfigDict
from mmseg.registry import MODELS
from toy_utils import (BENCH, HYBRID_NECK, TINY_HYBRID, TINY_NECK,
                       TINY_VIT, load_bench, seg_samples)

REPO = Path(__file__).resolve().parents[1]
RTOL = 1e-4

PREPROC = dict(type='SegDataPreProcessor', mean=[127.5] * 3, std=[127.5] * 3,
               bgr_to_rgb=True, size_divisor=32)


def depth_model(backbone=TINY_VIT, neck=TINY_NECK):
    model = MODELS.build(dict(
        type='DPTDepthEstimator', data_preprocessor=PREPROC,
        backbone=copy.deepcopy(backbone), neck=copy.deepcopy(neck),
        decode_head=dict(type='DPTDepthHead', in_channels=16, channels=8),
        test_cfg=dict(mode='whole')))
    # Lift the output above the final ReLU: an all-zero output would make
    # every comparison pass.
    with torch.no_grad():
        model.decode_head.conv_seg.bias.fill_(1.0)
    return model


def seg_model(num_classes=5):
    norm = dict(type='BN')
    return MODELS.build(dict(
        type='EncoderDecoder', data_preprocessor=PREPROC,
        backbone=copy.deepcopy(TINY_VIT),
        neck=dict(TINY_NECK, fusion_norm_cfg=norm),
        decode_head=dict(type='DPTSegHead', in_channels=16, channels=16,
                         num_classes=num_classes, norm_cfg=norm),
        # mmseg's EncoderDecoder reads test_cfg by attribute.
        test_cfg=ConfigDict(mode='whole')))


def rel_err(out, ref):
    return ((out - ref).abs().max() / ref.abs().max()).item()


def randomise_batch_norms(model):
    """Non-trivial running statistics and affine terms, so folding shows."""
    gen = torch.Generator().manual_seed(3)
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=gen) * 0.5)
            m.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=gen) + 0.5)
            m.bias.data.copy_(torch.randn(n, generator=gen) * 0.1)
    return model


def test_benchmark_tiny_end_to_end_writes_json(tmp_path):
    out = tmp_path / 'bench.json'
    proc = subprocess.run(
        [sys.executable, str(BENCH), '--tiny', '--batch-sizes', '1',
         '--repeats', '1', '--warmup', '0', '--profile', '--profile-top',
         '3', '--train-cases', 'ours,theirs,ours_cp', '--json', str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'ours/HF' in proc.stdout and 'target' in proc.stdout
    report = json.loads(out.read_text())  # valid JSON (no NaN)

    assert {'meta', 'args', 'command', 'inference', 'training', 'targets',
            'wall_s'} <= set(report)
    assert {'torch', 'cpu', 'threads', 'device'} <= set(report['meta'])
    if _git_head():
        assert report['meta']['commit'].startswith(_git_head())
    (row, ) = report['inference']
    assert row['model'] == 'tiny' and row['batch'] == 1 and row['size'] == 64
    assert row['parity_rel_err'] <= RTOL and row['fast_rel_err'] <= RTOL
    assert {'hf', 'ours', 'fast', 'matmul'} <= set(row['times'])
    for stats in row['times'].values():
        assert {'median_ms', 'min_ms', 'samples_ms', 'ratio_to_ref'} <= set(
            stats)
        assert len(stats['samples_ms']) == 1
    assert row['times']['hf']['ratio_to_ref'] == 1.0
    assert row['flops_per_image'] > 0
    # Same function, slightly fewer FLOPs than Transformers (fusion out_conv
    # before the ×2 upsample, readout projection split in two halves).
    assert 0.9 * row['hf_flops_per_image'] <= row['flops_per_image'] \
        < row['hf_flops_per_image']
    assert row['matmul_ceiling_flops'] > 0
    assert {'hf', 'ours', 'fast'} <= set(row['achieved'])
    assert {'hf', 'ours', 'fast'} <= set(row['profile'])
    assert len(row['profile']['ours']) == 3

    train = report['training']
    assert set(train['cases']) == {'ours', 'theirs', 'ours_cp'}
    for case in train['cases'].values():
        assert {'median_ms', 'ratio_to_ref', 'train_peak_mb', 'peak_rss_mb',
                'num_params', 'losses', 'held_mb', 'alloc_peak_mb'} <= set(case)
        assert all(torch.isfinite(torch.tensor(case['losses'])))
        # The step allocates on top of the weights and optimiser state.
        assert case['alloc_peak_mb'] > case['held_mb'] > 4 * case[
            'num_params'] / 2**20
    assert train['cases']['theirs']['ratio_to_ref'] == 1.0
    assert 'cp_time_ratio' in train and {'ours', 'theirs'} <= set(
        train['profile'])

    names = [t['target'] for t in report['targets']]
    assert any(n.startswith('inference ours/HF') for n in names)
    assert any(n.startswith('train step') for n in names)
    assert any(n.startswith('checkpointing peak') for n in names)
    assert all(isinstance(t['met'], bool) for t in report['targets'])


def test_step_peak_bytes_counts_live_tensors_on_cpu():
    """The CPU allocated-peak measure: 1 MiB + 2 MiB live at once, the
    1 MiB freed before a 4 MiB tensor: peak 6 MiB above the start."""
    bench = load_bench()
    mib = 2**20 // 4

    def fn():
        a = torch.ones(mib)
        b = torch.ones(2 * mib)
        del a
        c = torch.ones(4 * mib)
        return b, c

    peak = bench.step_peak_bytes(fn, torch.device('cpu'))
    assert peak == 6 * 2**20


def test_worker_peak_rss_is_that_of_the_timed_steps(monkeypatch, capsys):
    """``stats`` reports the peak RSS as of the last timed ``step``: the
    profiled ``memory`` step (the profiler's buffers) must not count. The
    RSS probe is replaced by a counter that grows on every call."""
    import io
    bench = load_bench()
    calls = []

    def fake_peak_rss_mb():
        calls.append(None)
        return 100.0 * len(calls)

    monkeypatch.setattr(bench, '_peak_rss_mb', fake_peak_rss_mb)
    monkeypatch.setattr(sys, 'stdin',
                        io.StringIO('step\nstats\nmemory\nstats\nquit\n'))
    threads = torch.get_num_threads()
    try:
        bench.worker_main(dict(batch=1, size=64, tiny=True, device='cpu',
                               threads=1, top=3, allocator_lib=None,
                               case='ours'))
    finally:
        torch.set_num_threads(threads)
    replies = [json.loads(line[len(bench.PROTOCOL_PREFIX):])
               for line in capsys.readouterr().out.splitlines()
               if line.startswith(bench.PROTOCOL_PREFIX)]
    ready, step, before, memory, after = replies
    assert ready['ready'] and 'time_s' in step and 'alloc_peak_mb' in memory
    base, at_step = 100.0, 100.0 * len(calls)
    assert before['peak_rss_mb'] == after['peak_rss_mb'] == at_step
    assert after['train_peak_mb'] == at_step - base > 0


def _git_head() -> str:
    proc = subprocess.run(['git', '-C', str(REPO), 'rev-parse', 'HEAD'],
                          capture_output=True, text=True)
    return proc.stdout.strip() if proc.returncode == 0 else ''


@pytest.mark.skipif(not _git_head(), reason='not a git checkout')
def test_benchmark_baseline_trains_an_extracted_revision(tmp_path):
    """--baseline REV runs the --baseline-case on dpt_mm as of REV, side by
    side (the worker refuses to run if it imported the wrong dpt_mm)."""
    out = tmp_path / 'bench.json'
    proc = subprocess.run(
        [sys.executable, str(BENCH), '--tiny', '--no-inference',
         '--train-cases', 'ours_cp', '--train-repeats', '1', '--warmup', '0',
         '--baseline', 'HEAD', '--baseline-case', 'ours_cp', '--json',
         str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'before/after (HEAD → this tree, ours_cp)' in proc.stdout
    train = json.loads(out.read_text())['training']
    assert train['baseline'] == dict(rev='HEAD', commit=_git_head(),
                                     case='ours_cp')
    assert list(train['cases']) == ['ours_cp', 'ours_baseline']
    label = train['cases']['ours_baseline']['label']
    assert _git_head()[:10] in label and label.endswith('as ours_cp')
    assert train['baseline_time_ratio'] > 0
    # Same data and seed; the committed code computes what the tree does
    # (equal on a clean checkout, as in CI).
    assert train['cases']['ours_baseline']['losses'] == pytest.approx(
        train['cases']['ours_cp']['losses'], rel=1e-4)

    proc = subprocess.run(
        [sys.executable, str(BENCH), '--tiny', '--no-inference',
         '--baseline', 'no-such-revision'],
        cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode != 0
    assert '--baseline no-such-revision: git rev-parse failed' in proc.stderr


def test_allocator_option_names_what_to_install(monkeypatch):
    import ctypes.util
    bench = load_bench()
    assert bench.find_allocator('system') is None
    with pytest.raises(RuntimeError, match='unknown allocator'):
        bench.find_allocator('hoard')
    monkeypatch.setattr(ctypes.util, 'find_library', lambda name: None)
    with pytest.raises(RuntimeError, match='libtcmalloc-minimal4'):
        bench.find_allocator('tcmalloc')
    proc = subprocess.run(
        [sys.executable, str(BENCH), '--tiny', '--no-inference',
         '--allocator', 'nope'], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 2 and '--allocator' in proc.stderr


@pytest.mark.skipif(not __import__('ctypes.util').util.find_library(
    'tcmalloc_minimal'), reason='tcmalloc is not installed')
def test_allocator_preloaded_into_the_workers(tmp_path):
    """The workers run with the allocator mapped (they check /proc)."""
    out = tmp_path / 'bench.json'
    proc = subprocess.run(
        [sys.executable, str(BENCH), '--tiny', '--no-inference',
         '--train-cases', 'ours', '--train-repeats', '1', '--warmup', '0',
         '--allocator', 'tcmalloc', '--json', str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    train = json.loads(out.read_text())['training']
    assert train['allocator'] == 'tcmalloc'
    assert 'tcmalloc' in train['allocator_lib']
    assert 'C allocator: tcmalloc' in proc.stdout


def test_targets_are_judged_from_the_numbers():
    bench = load_bench()

    def stats(ratio):
        return dict(median_ms=1.0, ratio_to_ref=ratio)

    report = dict(
        inference=[dict(model='vitl', batch=1, times=dict(
            hf=stats(1.0), ours=stats(0.98), fast=stats(0.7)),
            achieved=dict(ours=dict(ceiling_fraction=0.55,
                                best_ceiling_fraction=0.3),
                      fast=dict(ceiling_fraction=0.9,
                                best_ceiling_fraction=0.65)))],
        training=dict(cp_time_ratio=1.2, cases=dict(
            ours=dict(ratio_to_ref=0.8, train_peak_mb=600.0),
            theirs=dict(ratio_to_ref=1.0, train_peak_mb=1000.0),
            ours_cp=dict(ratio_to_ref=1.0, train_peak_mb=0.0))))
    met = {t['target'].split(' (')[0]: (t['value'], t['met'])
           for t in bench.evaluate_targets(report)}
    assert met['inference ours/HF <= 1.00'] == (0.98, True)
    assert met['fast path speed-up HF/fast >= 1.30'][1] is True
    assert met['ViT-L eager FLOP/s >= 60% of torch.mm'] == (0.55, False)
    assert met['ViT-L eager FLOP/s >= 60% of best GEMM'] == (0.3, False)
    assert met['ViT-L fast path FLOP/s >= 60% of torch.mm'] == (0.9, True)
    assert met['ViT-L fast path FLOP/s >= 60% of best GEMM'] == (0.65,
                                                                 True)
    assert met['train step speed-up mmseg/ours >= 1.30'] == (1.25, False)
    assert met['train peak memory ours/mmseg <= 0.70'] == (0.6, True)
    # An unmeasurable ratio is reported as None and not met, never NaN.
    assert met['checkpointing peak memory off/on >= 2.00'] == (None, False)
    assert met['checkpointing step time on/off <= 1.40'] == (1.2, True)


@pytest.mark.parametrize('channels_last', [True, False])
@pytest.mark.parametrize('backbone,neck', [(TINY_VIT, TINY_NECK),
                                           (TINY_HYBRID, HYBRID_NECK)])
def test_fast_path_matches_eager_depth(backbone, neck, channels_last):
    torch.manual_seed(0)
    model = depth_model(backbone, neck).eval()
    x = torch.randn(2, 3, 64, 96)
    fast = optimize_for_inference(copy.deepcopy(model),
                                  channels_last=channels_last)
    with torch.no_grad():
        ref = model(x, mode='tensor')
        ref_feats = model.extract_feat(x)
    out = fast(x, mode='tensor')  # no no_grad: the fast path needs none
    assert not out.requires_grad and out.dtype == torch.float32
    assert (ref > 0).float().mean() > 0.5
    assert rel_err(out, ref) <= RTOL
    for got, want in zip(fast.extract_feat(x), ref_feats):
        assert rel_err(got, want) <= RTOL
    # A deep copy is an independent model that still runs the fast path.
    clone = copy.deepcopy(fast)
    assert clone.backbone.forward.__self__ is clone.backbone
    assert rel_err(clone(x, mode='tensor'), ref) <= RTOL


def test_fast_path_folds_batch_norm_and_matches_eager_seg():
    torch.manual_seed(0)
    model = randomise_batch_norms(seg_model()).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        ref = model(x, mode='tensor')
    fast = optimize_for_inference(copy.deepcopy(model))
    remaining = [m for m in fast.neck.modules()
                 if isinstance(m, torch.nn.BatchNorm2d)]
    remaining += [m for m in fast.decode_head.modules()
                  if isinstance(m, torch.nn.BatchNorm2d)]
    assert remaining == []
    assert rel_err(fast(x, mode='tensor'), ref) <= RTOL
    # mmseg's predict path (resizing, data samples) runs unchanged.
    samples = seg_samples(2, (64, 64), 5)
    with torch.no_grad():
        want = model.predict(x, copy.deepcopy(samples))
    got = fast.predict(x, copy.deepcopy(samples))
    for a, b in zip(got, want):
        assert rel_err(a.seg_logits.data, b.seg_logits.data) <= RTOL
        assert torch.equal(a.pred_sem_seg.data, b.pred_sem_seg.data)


def test_fold_conv_bn_without_and_with_bias():
    torch.manual_seed(0)
    for bias in (False, True):
        conv = torch.nn.Conv2d(4, 6, 3, padding=1, bias=bias)
        bn = randomise_batch_norms(torch.nn.BatchNorm2d(6)).eval()
        x = torch.randn(2, 4, 8, 8)
        with torch.no_grad():
            ref = bn(conv(x))
            fold_conv_bn(conv, bn)
            assert rel_err(conv(x), ref) <= 1e-5


def test_fuse_conv_norms_refuses_training_mode():
    with pytest.raises(RuntimeError, match='eval mode'):
        fuse_conv_norms(seg_model().train())


def test_fast_path_bf16_runs_and_returns_float32():
    torch.manual_seed(0)
    model = depth_model().eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        ref = model(x, mode='tensor')
    low = optimize_for_inference(copy.deepcopy(model), dtype=torch.bfloat16)
    out = low(x, mode='tensor')
    assert out.dtype == torch.float32
    # Lossy by design: bf16 keeps ~3 significant digits.
    assert rel_err(out, ref) < 5e-2


@pytest.mark.slow
def test_fast_path_compiled_matches_eager():
    torch.manual_seed(0)
    model = depth_model().eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        ref = model(x, mode='tensor')
    fast = optimize_for_inference(copy.deepcopy(model), compile=True)
    assert rel_err(fast(x, mode='tensor'), ref) <= RTOL


def test_fast_path_builds_from_registry_config():
    # Any mmseg segmentor built from a config takes the fast path.
    model = MODELS.build(dict(
        type='EncoderDecoder',
        backbone=copy.deepcopy(TINY_VIT),
        neck=dict(TINY_NECK, fusion_norm_cfg=dict(type='BN')),
        decode_head=dict(type='DPTSegHead', in_channels=16, channels=16,
                         num_classes=3, norm_cfg=dict(type='BN'))))
    model = randomise_batch_norms(model).eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        ref = model(x, mode='tensor')
    assert rel_err(optimize_for_inference(model)(x, mode='tensor'),
                   ref) <= RTOL
    assert model._fast_path['fuse_norm'] is True

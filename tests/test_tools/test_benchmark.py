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

REPO = Path(__file__).resolve().parents[2]
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
    assert 'ours/HF' in proc.stdout and 'ratio to mmseg' in proc.stdout
    # Ratios only: the verdicts against the targets live in the docs.
    assert 'target' not in proc.stdout and 'met' not in proc.stdout.split()
    report = json.loads(out.read_text())  # valid JSON (no NaN)

    assert {'meta', 'args', 'command', 'inference', 'training',
            'wall_s'} <= set(report)
    meta = report['meta']
    assert {'torch', 'cpu', 'cpu_flags', 'threads', 'device'} <= set(meta)
    assert meta['cpu'] in proc.stdout.splitlines()[0]
    if _git_head():
        assert meta['commit'].startswith(_git_head())
    (row, ) = report['inference']
    assert row['model'] == 'tiny' and row['batch'] == 1 and row['size'] == 64
    assert row['parity_rel_err'] <= RTOL
    # The accelerator case runs where dpt_mm.accel exists, else it is
    # reported as skipped with the reason.
    if row['accel']['available']:
        assert 'accel' in row['times'] and row['accel_rel_err'] <= RTOL
    else:
        assert row['skipped']['accel'] == 'dpt_mm.accel not available'
        assert 'accel skipped: dpt_mm.accel not available' in proc.stdout
    assert {'hf', 'ours', 'matmul'} <= set(row['times'])
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
    assert {'hf', 'ours'} <= set(row['achieved'])
    assert {'hf', 'ours'} <= set(row['profile'])
    assert len(row['profile']['ours']) == 3

    train = report['training']
    assert set(train['cases']) == {'ours', 'theirs', 'ours_cp'}
    for case in train['cases'].values():
        assert {'median_ms', 'ratio_to_ref', 'train_peak_mb', 'peak_rss_mb',
                'num_params', 'losses', 'held_mb', 'alloc_peak_mb'
                } <= set(case)
        assert all(torch.isfinite(torch.tensor(case['losses'])))
        # The step allocates on top of the weights and optimiser state.
        assert case['alloc_peak_mb'] > case['held_mb'] > 4 * case[
            'num_params'] / 2**20
    # A step's FLOPs: forward + backward, so about 3× the forward's, and
    # the checkpointed case recomputes forwards on top.
    ours, ours_cp = train['cases']['ours'], train['cases']['ours_cp']
    assert 0 < ours['gflop'] < ours_cp['gflop']
    assert ours['gflops'] == pytest.approx(
        ours['gflop'] / (ours['median_ms'] / 1e3))
    assert train['cases']['theirs']['ratio_to_ref'] == 1.0
    assert train['cases']['theirs']['accel'] is None  # mmseg's model as is
    assert 'cp_time_ratio' in train and {'ours', 'theirs'} <= set(
        train['profile'])


def test_time_interleaved_alternates_cases_and_ratios_per_round():
    """Cases run in turn within each round; a ratio is the median of the
    per-round ratios (a slow round slows both cases alike)."""
    bench = load_bench()
    calls = []
    # Round times: round 2 is loaded (everything 10× slower).
    seconds = {'a': iter([9.0, 1.0, 10.0, 1.0]),
               'b': iter([9.0, 2.0, 20.0, 2.0])}

    def timer(name):
        def run():
            calls.append(name)
            return next(seconds[name])
        return run

    times = bench.time_interleaved({'a': timer('a'), 'b': timer('b')},
                                   warmup=1, repeats=3)
    assert calls == ['a', 'b'] * 4
    assert times == {'a': [1.0, 10.0, 1.0], 'b': [2.0, 20.0, 2.0]}
    stats = bench.harness.summarise(times, base='a')
    assert stats['b']['ratio_to_ref'] == 2.0
    assert stats['a']['median_ms'] == 1000.0


def test_accel_case_is_skipped_with_the_reason_without_dpt_mm_accel(
        monkeypatch):
    """A tree without dpt_mm.accel (an older --baseline) runs plain and
    says why; with it, the switch reports what it swapped."""
    bench = load_bench()
    model = torch.nn.Sequential(torch.nn.Linear(4, 4))
    monkeypatch.setattr(bench.harness, 'accel_module', lambda: None)
    assert bench.harness.apply_accel(model, 'on') == dict(
        mode='on', available=False, reason='dpt_mm.accel not available')
    assert type(model[0]) is torch.nn.Linear
    monkeypatch.undo()
    info = bench.harness.apply_accel(model, 'on')
    assert info['available'] and info['swapped'] == 1
    assert bench.harness.apply_accel(model, 'off')['swapped'] == 0
    assert type(model[0]) is torch.nn.Linear


def test_report_prints_ratios_machine_and_skips_without_verdicts():
    bench = load_bench()

    def stats(ms, ratio):
        return dict(median_ms=ms, ratio_to_ref=ratio)

    achieved = dict(flops_per_s=2e11, ceiling_fraction=0.5,
                    best_ceiling_fraction=0.25)
    report = dict(
        meta=dict(cpu='Some CPU', cpu_flags=['avx2', 'amx_bf16'], threads=2,
                  torch='2.x', device='cpu', commit='0123456789abcdef',
                  accel_decision=dict(kernels=dict(linear=True,
                                                   conv=False))),
        args=dict(warmup=1, repeats=5, accel='auto', baseline='v1'),
        inference=[dict(
            name='DPT ViT-L/16', batch=1, parity_rel_err=3e-6,
            flops_per_image=5e11, achieved=dict(ours=achieved),
            times=dict(hf=stats(2000, 1.0), ours=stats(1500, 0.75),
                       baseline=stats(1600, 0.8)),
            baseline=dict(rev='v1'), after_before=dict(ours=0.94),
            skipped=dict(accel='dpt_mm.accel not available'))])
    text = bench.report.format_report(report)
    first = text.splitlines()[0]
    assert 'Some CPU (flags: avx2 amx_bf16)' in first
    assert 'accel auto: linear on, conv off' in first
    assert '| DPT ViT-L/16 | 1 | 2000 | 1500 | 0.750 | 1600 | 0.800 |' in text
    assert 'accel on ms' not in text  # a case no row has gets no column
    assert 'before/after (DPT ViT-L/16 b1, v1 → this tree): time ' \
        'after/before ours 0.940' in text
    assert 'accel skipped: dpt_mm.accel not available' in text
    assert 'target' not in text and 'met' not in text.split()


def test_cpu_description_names_model_and_kernel_flags():
    bench = load_bench()
    cpu = bench.harness.cpu_description()
    assert isinstance(cpu['model'], str) and cpu['model']
    assert set(cpu['flags']) <= set(bench.harness.CPU_FLAGS)
    try:
        with open('/proc/cpuinfo') as f:
            text = f.read()
    except OSError:
        return
    if ' avx2 ' in text:
        assert 'avx2' in cpu['flags']


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

    monkeypatch.setattr(bench.harness, 'peak_rss_mb', fake_peak_rss_mb)
    monkeypatch.setattr(sys, 'stdin',
                        io.StringIO('step\nstats\nmemory\nstats\nquit\n'))
    threads = torch.get_num_threads()
    try:
        bench.training.train_worker(dict(
            kind='train', batch=1, size=64, tiny=True, device='cpu',
            threads=1, top=3, allocator_lib=None, accel='auto',
            case='ours'))
    finally:
        torch.set_num_threads(threads)
    prefix = bench.harness.PROTOCOL_PREFIX
    replies = [json.loads(line[len(prefix):])
               for line in capsys.readouterr().out.splitlines()
               if line.startswith(prefix)]
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
def test_benchmark_baseline_runs_an_extracted_revision(tmp_path):
    """--baseline REV runs dpt_mm as of REV side by side: the
    --baseline-case in training and one inference case per model (the
    workers refuse to run if they imported the wrong dpt_mm)."""
    out = tmp_path / 'bench.json'
    proc = subprocess.run(
        [sys.executable, str(BENCH), '--tiny', '--batch-sizes', '1',
         '--repeats', '2', '--no-bf16', '--train-cases', 'ours_cp',
         '--train-repeats', '1', '--warmup', '0', '--baseline', 'HEAD',
         '--baseline-case', 'ours_cp', '--json', str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'before/after (HEAD → this tree, ours_cp)' in proc.stdout
    assert 'before/after (tiny DPT b1, HEAD → this tree)' in proc.stdout
    report = json.loads(out.read_text())
    train = report['training']
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
    (row, ) = report['inference']
    assert row['baseline']['commit'] == _git_head()
    assert row['baseline']['parity_rel_err'] <= RTOL
    assert len(row['times']['baseline']['samples_ms']) == 2
    assert row['after_before']['ours'] > 0

    proc = subprocess.run(
        [sys.executable, str(BENCH), '--tiny', '--no-inference',
         '--baseline', 'no-such-revision'],
        cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode != 0
    assert '--baseline no-such-revision: git rev-parse failed' in proc.stderr


def test_allocator_option_names_what_to_install(monkeypatch):
    import ctypes.util
    bench = load_bench()
    assert bench.harness.find_allocator('system') is None
    with pytest.raises(RuntimeError, match='unknown allocator'):
        bench.harness.find_allocator('hoard')
    monkeypatch.setattr(ctypes.util, 'find_library', lambda name: None)
    with pytest.raises(RuntimeError, match='libtcmalloc-minimal4'):
        bench.harness.find_allocator('tcmalloc')
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


def test_training_warm_up_defaults_to_the_steady_state():
    """Eight untimed training rounds unless given (mmseg's step settles
    late); the smoke test keeps --warmup."""
    bench = load_bench()
    assert bench.parse_args([]).train_warmup == \
        bench.training.TRAIN_WARMUP == 8
    assert bench.parse_args(['--train-warmup', '2']).train_warmup == 2
    assert bench.parse_args(['--tiny', '--warmup', '0']).train_warmup == 0


def test_count_flops_counts_cpu_attention_forward_and_backward():
    """The CPU flash-attention kernels have no formula in torch's counter:
    the benchmark registers torch's SDPA formulas (forward 2 GEMMs,
    backward 5 with the scores recomputed), so a training step's
    attention is counted."""
    bench = load_bench()
    q = torch.randn(1, 2, 16, 8, requires_grad=True)

    def attention():
        return torch.nn.functional.scaled_dot_product_attention(q, q, q)

    forward = bench.harness.count_flops(attention)['total']
    step = bench.harness.count_flops(lambda: attention().sum().backward(),
                                     grad=True)['total']
    assert forward == 2 * (2 * 2 * 16 * 16 * 8)  # QKᵀ and PV, 2 heads
    assert step == forward * (2 + 5) / 2

#!/usr/bin/env python
"""Side-by-side speed and memory of dpt_mm's DPT against the references.

One run measures, each comparison interleaved (the cases alternate within
every repeat, so load from other processes hits all of them alike) and
summarised by medians after warm-up:

* **Inference**: dpt_mm vs Transformers ``DPTForDepthEstimation`` (random
  init from ``DPTConfig``, eval, ``no_grad``) with the same weights, converted
  by :mod:`dpt_mm.converters`; the outputs must agree within 1e-4 relative
  or the run stops. Also dpt_mm's opt-in fast path
  (:func:`dpt_mm.utils.fast_path.optimize_for_inference`, float32, parity
  enforced) and, where the CPU has native bf16, its bf16 autocast variant
  (error reported, no parity claim). FLOPs per image are counted with
  ``torch.utils.flop_counter`` and the achieved FLOP/s set against a large
  float32 ``torch.mm`` measured in the same repeats (the practical ceiling).
* **Training**: one SGD step (forward, loss, backward, step) of dpt_mm's DPT
  ViT-B segmentation config vs mmseg's own DPT config, and dpt_mm with
  gradient checkpointing, on the same random data. Every case lives in its
  own worker process, so its peak memory (peak RSS minus the RSS after
  imports on CPU, ``torch.cuda.max_memory_allocated`` on GPU) is its own,
  while the parent still alternates their steps.
* **Profile** (``--profile``): top operators by self time, ours vs theirs.

Ratios are ours / theirs: below 1 is faster (or smaller) for dpt_mm. Each
ratio is the median of the per-repeat ratios, which cancels load drift.

Examples::

    python tools/analysis_tools/benchmark.py --json work_dirs/bench.json
    python tools/analysis_tools/benchmark.py --models vitb --batch-sizes 1 \
        --no-train
    python tools/analysis_tools/benchmark.py --tiny --json /tmp/tiny.json
"""
import argparse
import copy
import ctypes
import gc
import io
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

os.environ.setdefault('HF_HUB_OFFLINE', '1')
os.environ.setdefault('TRANSFORMERS_OFFLINE', '1')

import torch  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

PARITY_RTOL = 1e-4
MATMUL_SIZE = 2048
PROTOCOL_PREFIX = '@@BENCH '

# Transformers DPTConfig arguments of each variant (random init).
HF_VARIANTS: Dict[str, Dict[str, Any]] = {
    'vitb': dict(),
    'vitl': dict(hidden_size=1024, num_hidden_layers=24,
                 num_attention_heads=16, intermediate_size=4096,
                 backbone_out_indices=[5, 11, 17, 23],
                 neck_hidden_sizes=[256, 512, 1024, 1024]),
    'hybrid': dict(is_hybrid=True, neck_hidden_sizes=[256, 512, 768, 768],
                   reassemble_factors=[1, 1, 1, 0.5]),
    # MiDaS v3.1 (Intel/dpt-beit-large-512, Intel/dpt-swinv2-large-384):
    # run with --size 512 / 384.
    'beitl512': dict(
        backbone_config=dict(
            model_type='beit', image_size=512, hidden_size=1024,
            num_hidden_layers=24, num_attention_heads=16,
            intermediate_size=4096, use_relative_position_bias=True,
            reshape_hidden_states=False,
            out_features=['stage6', 'stage12', 'stage18', 'stage24']),
        neck_hidden_sizes=[256, 512, 1024, 1024]),
    'swin2l384': dict(
        backbone_config=dict(
            model_type='swinv2', image_size=384, embed_dim=192,
            depths=[2, 2, 18, 2], num_heads=[6, 12, 24, 48], window_size=24,
            pretrained_window_sizes=[12, 12, 12, 6],
            out_features=['stage1', 'stage2', 'stage3', 'stage4']),
        neck_hidden_sizes=[192, 384, 768, 1536]),
    # --tiny: embed 32, 2 layers, two neck levels (one per layer), 64×64.
    'tiny': dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                 intermediate_size=128, image_size=64,
                 backbone_out_indices=[0, 1], neck_hidden_sizes=[16, 32],
                 reassemble_factors=[4, 2], fusion_hidden_size=32,
                 initializer_range=0.2),
}
MODEL_NAMES = {'vitb': 'DPT ViT-B/16', 'vitl': 'DPT ViT-L/16',
               'hybrid': 'DPT-Hybrid', 'tiny': 'tiny DPT',
               'beitl512': 'DPT BEiT-L/16 512', 'swin2l384': 'DPT SwinV2-L 384'}

# Training cases; each runs in its own worker process.
TRAIN_CASES = ('ours', 'theirs', 'ours_cp', 'ours_noaux')
BASELINE_CASE = 'ours_baseline'  # added by --baseline REV
TRAIN_LABELS = {
    'ours': 'dpt_mm DPT ViT-B seg (BN, aux FCN head)',
    'theirs': "mmseg's DPT ViT-B (VisionTransformer + DPTHead, BN)",
    'ours_cp': 'dpt_mm, with_cp=True in backbone, neck and both heads',
    'ours_noaux': 'dpt_mm without the aux head (like mmseg)',
}
# --allocator: the shared library each name preloads (None: the C
# library's malloc).
ALLOCATORS = {
    'system': None,
    'tcmalloc': ('tcmalloc_minimal', 'tcmalloc'),
    'jemalloc': ('jemalloc',),
}
ALLOCATOR_PACKAGES = {'tcmalloc': 'libtcmalloc-minimal4 (Debian/Ubuntu), '
                      'gperftools (conda, brew)',
                      'jemalloc': 'libjemalloc2 (Debian/Ubuntu), jemalloc '
                      '(conda, brew)'}
OURS_SEG_CONFIG = 'configs/_base_/models/dpt_vit-b16_seg.py'
MMSEG_DPT_CONFIG = '.mim/configs/dpt/dpt_vit-b16_8xb2-160k_ade20k-512x512.py'


# --------------------------------------------------------------------------
# small helpers


def _median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def _ratio(num: Optional[float], den: Optional[float]) -> Optional[float]:
    """num / den, or None when undefined (JSON has no NaN)."""
    if num is None or den is None or den <= 0:
        return None
    return num / den


def _fmt(value: Optional[float], spec: str = '.3f') -> str:
    return '–' if value is None else format(value, spec)


def rel_err(out: torch.Tensor, ref: torch.Tensor) -> float:
    """max |out − ref| / max |ref| (0 when both are all-zero)."""
    out, ref = out.detach().float(), ref.detach().float()
    scale = ref.abs().max().item()
    diff = (out - ref).abs().max().item()
    return diff / scale if scale > 0 else diff


def _sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def time_interleaved(fns: Dict[str, Callable[[], Any]], warmup: int,
                     repeats: int, device: torch.device,
                     log: Optional[Callable[[str], None]] = None
                     ) -> Dict[str, List[float]]:
    """Seconds per call of each function, alternating them every repeat.

    Args:
        fns (dict[str, callable]): Name → zero-argument function.
        warmup (int): Untimed rounds first.
        repeats (int): Timed rounds.
        device (torch.device): Synchronised around each call on GPU.
        log (callable, optional): Progress lines.

    Returns:
        dict[str, list[float]]: Name → one time per repeat.
    """
    times: Dict[str, List[float]] = {name: [] for name in fns}
    for rnd in range(warmup + repeats):
        this_round = {}
        for name, fn in fns.items():
            _sync(device)
            start = time.perf_counter()
            fn()
            _sync(device)
            this_round[name] = time.perf_counter() - start
            if rnd >= warmup:
                times[name].append(this_round[name])
        if log:
            kind = 'warm-up' if rnd < warmup else 'repeat'
            log(f'    {kind} {rnd + 1}/{warmup + repeats}: ' + ', '.join(
                f'{n} {t * 1e3:.0f} ms' for n, t in this_round.items()))
    return times


def summarise(times: Dict[str, List[float]],
              base: str) -> Dict[str, Dict[str, Any]]:
    """Median/min per case and the median of per-repeat ratios to ``base``.
    """
    out = {}
    for name, samples in times.items():
        ratios = [a / b for a, b in zip(samples, times[base])]
        out[name] = dict(median_ms=_median(samples) * 1e3,
                         min_ms=min(samples) * 1e3,
                         samples_ms=[s * 1e3 for s in samples],
                         ratio_to_ref=_median(ratios))
    return out


def matmul_ceiling_fn(device: torch.device, size: int = MATMUL_SIZE,
                      calls: int = 4):
    """A timed unit of large float32 matmuls and its FLOP count."""
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)

    def run():
        for _ in range(calls):
            torch.mm(a, b)

    return run, 2.0 * size**3 * calls


def onednn_gemm_fn(size: int = MATMUL_SIZE, calls: int = 4):
    """The same float32 GEMM through oneDNN (a 1×1 convolution, CPU).

    PyTorch's ``torch.mm`` uses MKL, which on AMD CPUs is far from the
    hardware's peak; oneDNN (PyTorch's CPU convolutions) is not.
    """
    import torch.nn.functional as F
    a = torch.randn(size, size)
    w = torch.randn(size, size, 1, 1)
    image = a.view(1, size, 1, size).permute(0, 3, 1, 2)

    def run():
        for _ in range(calls):
            F.conv2d(image, w)

    return run, 2.0 * size**3 * calls


def count_flops(fn: Callable[[], Any]) -> Dict[str, float]:
    """FLOPs of one call (2 per multiply-add), by operator.

    ``FlopCounterMode`` has no formula for the CPU flash-attention kernel,
    so the standard attention formula is registered for it.
    """
    from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

    def cpu_flash(query, key, value, *args, **kwargs):
        return sdpa_flop_count(query, key, value)

    custom = {}
    cpu_sdpa = getattr(torch.ops.aten,
                       '_scaled_dot_product_flash_attention_for_cpu', None)
    if cpu_sdpa is not None:
        custom[cpu_sdpa] = cpu_flash
    counter = FlopCounterMode(display=False, custom_mapping=custom)
    with torch.no_grad(), counter:
        fn()
    by_op = {str(k): float(v)
             for k, v in counter.get_flop_counts()['Global'].items()}
    return dict(total=float(counter.get_total_flops()), by_op=by_op)


def profile_top_ops(fn: Callable[[], Any], device: torch.device,
                    top: int) -> List[Dict[str, Any]]:
    """Top operators by self time over one call (after the timed runs)."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU]
    if device.type == 'cuda':
        activities.append(ProfilerActivity.CUDA)
    with profile(activities=activities) as prof:
        fn()
        _sync(device)
    attr = 'self_device_time_total' if device.type == 'cuda' else \
        'self_cpu_time_total'
    events = sorted(prof.key_averages(), key=lambda e: getattr(e, attr),
                    reverse=True)
    total = sum(getattr(e, attr) for e in events) or 1.0
    return [
        dict(op=e.key, self_ms=getattr(e, attr) / 1e3,
             share=getattr(e, attr) / total, calls=e.count)
        for e in events[:top]
    ]


def _onednn_caps() -> str:
    caps = []
    if torch.backends.mkldnn.is_available():
        caps.append('mkldnn')
        if torch.ops.mkldnn._is_mkldnn_bf16_supported():
            caps.append('bf16')
    return ','.join(caps)


def release_memory() -> None:
    """Return freed heap memory to the OS (glibc keeps it otherwise), so
    big models benchmarked one after another do not add up."""
    gc.collect()
    try:
        ctypes.CDLL('libc.so.6').malloc_trim(0)
    except (OSError, AttributeError):
        pass


def machine_info(device: torch.device) -> Dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    cpu = line.split(':', 1)[1].strip()
                    break
    except OSError:
        pass
    info = dict(torch=torch.__version__, python=platform.python_version(),
                cpu=cpu, cpu_count=os.cpu_count(),
                threads=torch.get_num_threads(),
                cpu_capability=torch.backends.cpu.get_cpu_capability(),
                onednn=_onednn_caps(), device=str(device))
    if device.type == 'cuda':
        info['gpu'] = torch.cuda.get_device_name(device)
    # Which code was measured: the commit, and whether the tree differed.
    git = ['git', '-C', str(REPO_ROOT)]
    head = subprocess.run([*git, 'rev-parse', 'HEAD'], capture_output=True,
                          text=True)
    if head.returncode == 0:
        dirty = subprocess.run([*git, 'status', '--porcelain', '-uno'],
                               capture_output=True, text=True).stdout
        info['commit'] = head.stdout.strip() + ('+dirty' if dirty else '')
    try:
        info['loadavg_start'] = list(os.getloadavg())
    except OSError:
        pass
    return info


# --------------------------------------------------------------------------
# inference


def build_inference_pair(variant: str, device: torch.device):
    """Random-init Transformers DPT and the dpt_mm twin with its weights."""
    from mmengine.registry import init_default_scope
    from transformers import DPTConfig, DPTForDepthEstimation

    import dpt_mm  # noqa: F401
    from dpt_mm.converters import (convert_hf_state_dict,
                                   hf_config_to_mm_config, load_converted)
    from mmseg.registry import MODELS

    init_default_scope('mmseg')
    torch.manual_seed(0)
    hf_config = DPTConfig(**HF_VARIANTS[variant])
    hf_model = DPTForDepthEstimation(hf_config).eval().to(device)
    mm_model = MODELS.build(
        hf_config_to_mm_config(hf_config, task='depth')).eval()
    load_converted(mm_model,
                   convert_hf_state_dict(hf_model.state_dict(), hf_config),
                   context=f'{variant} converted from Transformers')
    return hf_model, mm_model.to(device)


def bench_inference(variant: str, batch: int, size: int, args,
                    device: torch.device, log) -> Dict[str, Any]:
    """Transformers eager vs dpt_mm eager vs dpt_mm fast path (+ bf16)."""
    from dpt_mm.utils.fast_path import bf16_supported, optimize_for_inference

    hf_model, mm_model = build_inference_pair(variant, device)
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(batch, 3, size, size, generator=gen).to(device)

    def run_hf():
        return hf_model(pixel_values=x).predicted_depth

    def run_ours(model=mm_model):
        return model(x, mode='tensor')[:, 0]

    result: Dict[str, Any] = dict(model=variant, name=MODEL_NAMES[variant],
                                  batch=batch, size=size)
    with torch.no_grad():
        ref = run_hf()
        ours = run_ours()
    err = rel_err(ours, ref)
    result['parity_rel_err'] = err
    if not err <= PARITY_RTOL:
        raise AssertionError(
            f'PARITY FAILURE: dpt_mm {variant} differs from Transformers by '
            f'{err:.3e} relative (limit {PARITY_RTOL:g}); the timings would '
            'compare different computations')

    fns: Dict[str, Callable[[], Any]] = dict(hf=run_hf, ours=run_ours)

    fast_kwargs = dict(channels_last=not args.no_channels_last)
    fast = optimize_for_inference(copy.deepcopy(mm_model), **fast_kwargs)
    with torch.no_grad():
        fast_err = rel_err(run_ours(fast), ours)
    result['fast_rel_err'] = fast_err
    result['fast_options'] = dict(fast._fast_path, dtype=None)
    if not fast_err <= PARITY_RTOL:
        raise AssertionError(
            f'PARITY FAILURE: the float32 fast path of {variant} differs '
            f'from eager dpt_mm by {fast_err:.3e} relative')
    fns['fast'] = lambda: run_ours(fast)

    if args.compile:
        compiled = optimize_for_inference(
            copy.deepcopy(mm_model), compile=True, **fast_kwargs)
        start = time.perf_counter()
        with torch.no_grad():
            out = run_ours(compiled)
        result['compile_s'] = time.perf_counter() - start
        result['compile_rel_err'] = rel_err(out, ours)
        if not result['compile_rel_err'] <= PARITY_RTOL:
            raise AssertionError(
                f'PARITY FAILURE: compiled {variant} differs from eager by '
                f"{result['compile_rel_err']:.3e} relative")
        fns['compile'] = lambda: run_ours(compiled)

    dtype_ok = bf16_supported(device.type)
    if args.bf16 and dtype_ok:
        low = optimize_for_inference(copy.deepcopy(mm_model),
                                     dtype=torch.bfloat16, **fast_kwargs)
        with torch.no_grad():
            result['bf16_rel_err'] = rel_err(run_ours(low), ours)
        fns['bf16'] = lambda: run_ours(low)
    elif args.bf16:
        result['bf16_skipped'] = 'no native bf16 on this device'

    gemm_size = 256 if variant == 'tiny' else MATMUL_SIZE
    ceiling, ceiling_flops = matmul_ceiling_fn(device, size=gemm_size)
    fns['matmul'] = ceiling
    if device.type == 'cpu' and torch.backends.mkldnn.is_available():
        fns['matmul_onednn'], onednn_flops = onednn_gemm_fn(gemm_size)

    log(f'  {MODEL_NAMES[variant]}, batch {batch}, {size}×{size}: parity '
        f'{err:.1e}, fast path {fast_err:.1e}')
    with torch.no_grad():
        times = time_interleaved(fns, args.warmup, args.repeats, device, log)
    stats = summarise({k: v for k, v in times.items()}, base='hf')
    result['times'] = stats

    flops = count_flops(lambda: run_ours())
    hf_flops = count_flops(run_hf)
    per_image = flops['total'] / batch
    result['flops_per_image'] = per_image
    result['flops_by_op'] = {k: v / batch for k, v in flops['by_op'].items()}
    result['hf_flops_per_image'] = hf_flops['total'] / batch
    ceiling_samples = [ceiling_flops / (t / 1e3)
                       for t in stats['matmul']['samples_ms']]
    result['matmul_ceiling_flops'] = _median(ceiling_samples)
    best_samples = ceiling_samples
    if 'matmul_onednn' in stats:
        onednn_samples = [onednn_flops / (t / 1e3)
                          for t in stats['matmul_onednn']['samples_ms']]
        result['onednn_ceiling_flops'] = _median(onednn_samples)
        best_samples = [max(a, b)
                        for a, b in zip(ceiling_samples, onednn_samples)]
    result['best_ceiling_flops'] = _median(best_samples)
    achieved = {}
    for name in fns:
        if name.startswith('matmul'):
            continue
        # Each model's own count: dpt_mm computes the same function with
        # fewer FLOPs (fusion out_conv before the upsample, split readout).
        model_flops = hf_flops if name == 'hf' else flops
        samples = [model_flops['total'] / (t / 1e3)
                   for t in stats[name]['samples_ms']]
        # Fractions per repeat (against the GEMMs of the same round), then
        # the median: 'ceiling' is torch.mm, 'best' the faster GEMM.
        achieved[name] = dict(
            flops_per_s=_median(samples),
            ceiling_fraction=_median(
                [a / c for a, c in zip(samples, ceiling_samples)]),
            best_ceiling_fraction=_median(
                [a / c for a, c in zip(samples, best_samples)]))
    result['achieved'] = achieved

    if args.profile and batch == min(args.batch_sizes):
        with torch.no_grad():
            result['profile'] = dict(
                hf=profile_top_ops(run_hf, device, args.profile_top),
                ours=profile_top_ops(run_ours, device, args.profile_top),
                fast=profile_top_ops(lambda: run_ours(fast), device,
                                     args.profile_top))
    return result


# --------------------------------------------------------------------------
# training workers


def _replace_syncbn(cfg: Any) -> Any:
    if isinstance(cfg, dict):
        return {k: ('BN' if k == 'type' and v == 'SyncBN' else
                    _replace_syncbn(v)) for k, v in cfg.items()}
    if isinstance(cfg, (list, tuple)):
        return type(cfg)(_replace_syncbn(v) for v in cfg)
    return cfg


def train_model_config(case: str, tiny: bool,
                       root: Path = REPO_ROOT) -> Dict[str, Any]:
    """Model config of a training case (plain dict, BN instead of SyncBN).

    Args:
        case (str): One of :data:`TRAIN_CASES` or :data:`BASELINE_CASE`.
        tiny (bool): The smoke-test model.
        root (Path): Repository whose config file dpt_mm cases read (a
            baseline revision reads its own).
    """
    from mmengine.config import Config

    if case == 'theirs':
        import mmseg
        cfg = Config.fromfile(
            str(Path(mmseg.__file__).parent / MMSEG_DPT_CONFIG)).model
        cfg = _replace_syncbn(cfg.to_dict())
        cfg['pretrained'] = None
        if tiny:
            # mmseg's DPTHead insists on four backbone outputs and its ViT
            # hooks distinct blocks: four layers, not two.
            cfg['backbone'].update(img_size=64, embed_dims=32, num_layers=4,
                                   num_heads=2, out_indices=(0, 1, 2, 3))
            cfg['decode_head'].update(
                in_channels=(32, 32, 32, 32), embed_dims=32, channels=32,
                post_process_channels=[16, 32, 32, 32])
        return cfg
    cfg = Config.fromfile(str(root / OURS_SEG_CONFIG)).model
    cfg = _replace_syncbn(cfg.to_dict())
    if tiny:
        cfg['backbone'].update(img_size=64, embed_dims=32, num_layers=2,
                               num_heads=2, out_indices=(0, 1))
        cfg['neck'].update(in_channels=32, reassemble_channels=(16, 32),
                           resample_factors=(4, 2), channels=32)
        cfg['decode_head'].update(in_channels=32, channels=32)
        cfg['auxiliary_head'].update(in_channels=32, channels=32)
    if case == 'ours_cp':
        cfg['backbone']['with_cp'] = True
        cfg['neck']['with_cp'] = True
        cfg['decode_head']['with_cp'] = True
        cfg['auxiliary_head']['with_cp'] = True
    if case == 'ours_noaux':
        cfg['auxiliary_head'] = None
    return cfg


def step_peak_bytes(fn: Callable[[], Any], device: torch.device) -> int:
    """Peak of live tensor bytes during ``fn`` above those live before it.

    On GPU ``torch.cuda.max_memory_allocated``. On CPU, where peak RSS also
    counts what the C allocator keeps after frees, the same quantity from
    the profiler's allocation events (every tensor allocation and free of
    PyTorch's CPU allocator, in order).
    """
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
        start = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) - start
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    events = sorted((e for e in prof.profiler.kineto_results.events()
                     if e.name() == '[memory]' and e.device_type() ==
                     torch.autograd.DeviceType.CPU),
                    key=lambda e: e.start_ns())
    live = peak = 0
    for event in events:
        live += event.nbytes()
        peak = max(peak, live)
    return peak


def _rss_mb() -> float:
    """Current resident set size in MiB (Linux /proc; else peak RSS)."""
    try:
        with open('/proc/self/statm') as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf('SC_PAGE_SIZE') / 2**20
    except (OSError, ValueError):
        return _peak_rss_mb()


def _peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return peak / 2**20 if sys.platform == 'darwin' else peak / 2**10


def find_allocator(name: str) -> Optional[str]:
    """The library ``--allocator name`` preloads (None for 'system').

    Raises:
        RuntimeError: Unknown name, or the library is not installed.
    """
    import ctypes.util
    if name not in ALLOCATORS:
        raise RuntimeError(f'unknown allocator {name!r}; choose from '
                           f'{", ".join(ALLOCATORS)}')
    if ALLOCATORS[name] is None:
        return None
    for lib in ALLOCATORS[name]:
        found = ctypes.util.find_library(lib)
        if found:
            return found
    raise RuntimeError(f'--allocator {name}: no lib{ALLOCATORS[name][0]} '
                       f'found; install {ALLOCATOR_PACKAGES[name]}')


def _loaded_allocator(lib: Optional[str]) -> bool:
    """Whether ``lib`` is mapped into this process (Linux /proc; True
    where that cannot be read)."""
    if lib is None:
        return True
    stem = lib.split('.so')[0]
    try:
        with open('/proc/self/maps') as f:
            return stem in f.read()
    except OSError:
        return True


def _send(msg: Dict[str, Any]) -> None:
    sys.stdout.write(PROTOCOL_PREFIX + json.dumps(msg) + '\n')
    sys.stdout.flush()


def worker_main(spec: Dict[str, Any]) -> None:
    """One training case in its own process, driven over stdin/stdout.

    Commands (one per line): ``step``, ``memory`` (one more step, profiled
    for its live tensor bytes), ``profile``, ``stats`` (peaks as of the
    last ``step``), ``quit``.
    """
    root = Path(spec.get('code_root') or REPO_ROOT)
    # A baseline worker imports dpt_mm from the extracted old revision.
    sys.path.insert(0, str(root))
    import dpt_mm  # noqa: F401
    if Path(dpt_mm.__file__).resolve().parents[1] != root.resolve():
        raise RuntimeError(f'worker imported {dpt_mm.__file__}, not the '
                           f'dpt_mm under {root}')
    from mmengine.registry import init_default_scope
    from mmengine.structures import PixelData

    from mmseg.registry import MODELS
    from mmseg.structures import SegDataSample

    init_default_scope('mmseg')
    device = torch.device(spec['device'])
    torch.set_num_threads(spec['threads'])
    base_rss = _peak_rss_mb()

    batch, size, num_classes = spec['batch'], spec['size'], 150
    gen = torch.Generator().manual_seed(0)
    inputs = torch.randn(batch, 3, size, size, generator=gen).to(device)
    samples = []
    for _ in range(batch):
        sample = SegDataSample()
        sample.gt_sem_seg = PixelData(data=torch.randint(
            0, num_classes, (1, size, size), generator=gen).to(device))
        sample.set_metainfo(dict(img_shape=(size, size),
                                 ori_shape=(size, size),
                                 pad_shape=(size, size)))
        samples.append(sample)

    torch.manual_seed(0)
    case = spec['case']
    if not _loaded_allocator(spec.get('allocator_lib')):
        raise RuntimeError(f"allocator {spec['allocator_lib']} was preloaded "
                           'but is not mapped into the worker')
    model = MODELS.build(train_model_config(
        spec.get('baseline_case', 'ours') if case == BASELINE_CASE else case,
        spec['tiny'], root))
    model.init_weights()
    model.to(device).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9,
                                weight_decay=5e-4)
    num_params = sum(p.numel() for p in model.parameters())
    model_rss = _rss_mb()
    if device.type == 'cuda':
        torch.cuda.reset_peak_memory_stats(device)
        base_cuda = torch.cuda.memory_allocated(device)

    def step() -> float:
        # mmengine's OptimWrapper.update_params order: backward, step,
        # zero_grad (set_to_none), so no gradients live during forward.
        losses = model.loss(inputs, samples)
        loss, _ = model.parse_losses(losses)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return float(loss.item())

    def held_bytes() -> int:
        # What lives between steps: parameters, buffers, optimiser state,
        # the batch (each storage once).
        tensors = [*model.parameters(), *model.buffers(), inputs,
                   *(s.gt_sem_seg.data for s in samples)]
        tensors += [v for state in optimizer.state.values()
                    for v in state.values() if isinstance(v, torch.Tensor)]
        storages = {t.untyped_storage().data_ptr(): t.untyped_storage().nbytes()
                    for t in tensors if t.device.type == device.type}
        return sum(storages.values())

    # Peaks as of the last timed step: the profiled steps of `memory` and
    # `profile` hold the profiler's event buffers too (measured: +95 MiB of
    # peak RSS for the checkpointed ViT-B step, +26 MiB for the plain one),
    # which is not what training uses.
    step_peak_rss = _peak_rss_mb()
    step_peak_cuda = torch.cuda.max_memory_allocated(device) \
        if device.type == 'cuda' else 0
    _send(dict(ready=True, num_params=num_params))
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == 'step':
            _sync(device)
            start = time.perf_counter()
            loss = step()
            _sync(device)
            step_peak_rss = _peak_rss_mb()
            if device.type == 'cuda':
                step_peak_cuda = torch.cuda.max_memory_allocated(device)
            _send(dict(time_s=time.perf_counter() - start, loss=loss))
        elif cmd == 'profile':
            _send(dict(top=profile_top_ops(step, device, spec['top'])))
        elif cmd == 'memory':
            held = held_bytes()
            _send(dict(held_mb=held / 2**20,
                       alloc_peak_mb=(held + step_peak_bytes(step, device))
                       / 2**20))
        elif cmd == 'stats':
            stats = dict(base_rss_mb=base_rss, model_rss_mb=model_rss,
                         peak_rss_mb=step_peak_rss,
                         train_peak_mb=step_peak_rss - base_rss)
            if device.type == 'cuda':
                # (`memory` resets CUDA's peak: the timed steps' is kept.)
                stats['cuda_peak_mb'] = (step_peak_cuda - base_cuda) / 2**20
                stats['train_peak_mb'] = step_peak_cuda / 2**20
            _send(stats)
        elif cmd == 'quit':
            break


class Worker:
    """Parent-side handle of a training worker process."""

    def __init__(self, case: str, spec: Dict[str, Any]) -> None:
        self.case = case
        self.log = tempfile.TemporaryFile(mode='w+')
        env = dict(os.environ)
        if spec.get('allocator_lib'):
            env['LD_PRELOAD'] = ' '.join(
                filter(None, [spec['allocator_lib'], env.get('LD_PRELOAD')]))
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), '--worker',
             json.dumps(dict(spec, case=case))],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log,
            text=True, cwd=str(REPO_ROOT), env=env)
        self.last: Dict[str, Any] = {}

    def recv(self) -> Dict[str, Any]:
        for line in self.proc.stdout:
            if line.startswith(PROTOCOL_PREFIX):
                return json.loads(line[len(PROTOCOL_PREFIX):])
        self.log.seek(0)
        raise RuntimeError(f'training worker {self.case!r} died:\n'
                           f'{self.log.read()[-4000:]}')

    def call(self, cmd: str) -> Dict[str, Any]:
        self.proc.stdin.write(cmd + '\n')
        self.proc.stdin.flush()
        self.last = self.recv()
        return self.last

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write('quit\n')
                self.proc.stdin.flush()
                self.proc.wait(timeout=60)
            except (BrokenPipeError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def extract_revision(rev: str, dest: str) -> str:
    """Write the repository's files at git revision ``rev`` into ``dest``.

    Args:
        rev (str): Any git revision (commit, tag, ``HEAD~3``).
        dest (str): Existing empty directory.

    Returns:
        str: The full commit hash.
    """
    def git(*cmd: str, **kwargs) -> subprocess.CompletedProcess:
        proc = subprocess.run(['git', '-C', str(REPO_ROOT), *cmd],
                              capture_output=True, **kwargs)
        if proc.returncode:
            err = proc.stderr.decode(errors='replace').strip()
            raise SystemExit(f'--baseline {rev}: git {cmd[0]} failed: {err}')
        return proc

    commit = git('rev-parse', '--verify', f'{rev}^{{commit}}').stdout
    archive = git('archive', '--format=tar', rev).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(dest, filter='data')
    return commit.decode().strip()


def bench_training(args, device: torch.device, log) -> Dict[str, Any]:
    """Interleaved training steps of every case, each in its own process."""
    spec = dict(batch=args.train_batch, size=args.train_size,
                tiny=args.tiny, device=str(device),
                threads=torch.get_num_threads(), top=args.profile_top,
                allocator_lib=args.allocator_lib)
    cases = [c for c in TRAIN_CASES if c in args.train_cases]
    specs = {case: spec for case in cases}
    labels = dict(TRAIN_LABELS)
    result: Dict[str, Any] = dict(batch=args.train_batch,
                                  size=args.train_size, optimizer='SGD',
                                  allocator=args.allocator,
                                  allocator_lib=args.allocator_lib, cases={})
    baseline_dir = None
    if args.baseline:
        # Before/after in one run: the --baseline-case with dpt_mm (and
        # its config file) as of another revision, in its own worker.
        baseline_dir = tempfile.TemporaryDirectory(prefix='dpt_mm_baseline_')
        commit = extract_revision(args.baseline, baseline_dir.name)
        cases.insert(cases.index(args.baseline_case) + 1, BASELINE_CASE)
        specs[BASELINE_CASE] = dict(spec, code_root=baseline_dir.name,
                                    baseline_case=args.baseline_case)
        labels[BASELINE_CASE] = (f'dpt_mm at {args.baseline} '
                                 f'({commit[:10]}), same case as '
                                 f'{args.baseline_case}')
        result['baseline'] = dict(rev=args.baseline, commit=commit,
                                  case=args.baseline_case)
    workers = {case: Worker(case, specs[case]) for case in cases}
    try:
        ready = {case: w.recv() for case, w in workers.items()}
        log(f'  training: {", ".join(cases)}; batch {args.train_batch}, '
            f'{args.train_size}×{args.train_size}')
        times: Dict[str, List[float]] = {case: [] for case in cases}
        losses: Dict[str, List[float]] = {case: [] for case in cases}
        for rnd in range(args.train_warmup + args.train_repeats):
            for case, worker in workers.items():
                reply = worker.call('step')
                losses[case].append(reply['loss'])
                if rnd >= args.train_warmup:
                    times[case].append(reply['time_s'])
            kind = 'warm-up' if rnd < args.train_warmup else 'repeat'
            log(f'    {kind} {rnd + 1}: ' + ', '.join(
                f"{c} {1e3 * w.last['time_s']:.0f} ms"
                for c, w in workers.items()))
        ref = 'theirs' if 'theirs' in cases else cases[0]
        stats = summarise(times, base=ref)
        for case, worker in workers.items():
            # One more step, profiled for its live tensor bytes.
            alloc = worker.call('memory')
            mem = dict(worker.call('stats'), **alloc)
            result['cases'][case] = dict(
                label=labels[case], num_params=ready[case][
                    'num_params'], losses=losses[case], **stats[case], **mem)
        if BASELINE_CASE in cases:
            result['baseline_time_ratio'] = _median(
                [a / b for a, b in zip(times[args.baseline_case],
                                       times[BASELINE_CASE])])
        if 'ours' in cases and 'ours_cp' in cases:
            off, on = times['ours'], times['ours_cp']
            result['cp_time_ratio'] = _median(
                [b / a for a, b in zip(off, on)])
        if args.profile:
            result['profile'] = {
                case: worker.call('profile')['top']
                for case, worker in workers.items()
                if case in ('ours', 'theirs')
            }
    finally:
        for worker in workers.values():
            worker.close()
        if baseline_dir is not None:
            baseline_dir.cleanup()
    return result


# --------------------------------------------------------------------------
# report


def evaluate_targets(report: Dict[str, Any]) -> List[Dict[str, Any]]:
    """The issue's targets, each with its measured value and whether met."""
    targets = []

    def add(target: str, value: Optional[float], ok) -> None:
        targets.append(dict(target=target, value=value,
                            met=value is not None and bool(ok(value))))

    for row in report.get('inference', []):
        tag = f"{row['model']} b{row['batch']}"
        times = row['times']
        add(f'inference ours/HF <= 1.00 ({tag})',
            times['ours']['ratio_to_ref'], lambda v: v <= 1.0)
        add(f'fast path speed-up HF/fast >= 1.30 ({tag})',
            _ratio(1.0, times['fast']['ratio_to_ref']), lambda v: v >= 1.3)
        if row['model'] == 'vitl':
            for name, label in (('ours', 'eager'), ('fast', 'fast path')):
                ach = row['achieved'][name]
                add(f'ViT-L {label} FLOP/s >= 60% of torch.mm ({tag})',
                    ach['ceiling_fraction'], lambda v: v >= 0.6)
                add(f'ViT-L {label} FLOP/s >= 60% of best GEMM ({tag})',
                    ach.get('best_ceiling_fraction'), lambda v: v >= 0.6)
    train = report.get('training')
    if train:
        cases = train['cases']
        if 'ours' in cases and 'theirs' in cases:
            add('train step speed-up mmseg/ours >= 1.30',
                _ratio(1.0, cases['ours']['ratio_to_ref']),
                lambda v: v >= 1.3)
            add('train peak memory ours/mmseg <= 0.70',
                _ratio(cases['ours']['train_peak_mb'],
                       cases['theirs']['train_peak_mb']), lambda v: v <= 0.7)
            add('train peak allocated ours/mmseg <= 0.70',
                _ratio(cases['ours'].get('alloc_peak_mb'),
                       cases['theirs'].get('alloc_peak_mb')),
                lambda v: v <= 0.7)
        if 'ours' in cases and 'ours_cp' in cases:
            add('checkpointing peak memory off/on >= 2.00',
                _ratio(cases['ours']['train_peak_mb'],
                       cases['ours_cp']['train_peak_mb']),
                lambda v: v >= 2.0)
            add('checkpointing peak allocated off/on >= 2.00',
                _ratio(cases['ours'].get('alloc_peak_mb'),
                       cases['ours_cp'].get('alloc_peak_mb')),
                lambda v: v >= 2.0)
            add('checkpointing step time on/off <= 1.40',
                train['cp_time_ratio'], lambda v: v <= 1.4)
    return targets


def _memory_ratios(num: Dict[str, Any], den: Dict[str, Any]) -> str:
    """Peak-memory and peak-allocated ratios of two training cases."""
    return (f"{_fmt(_ratio(num['train_peak_mb'], den['train_peak_mb']))} "
            f"(allocated: "
            f"{_fmt(_ratio(num['alloc_peak_mb'], den['alloc_peak_mb']))})")


def format_report(report: Dict[str, Any]) -> str:
    """The printed tables (Markdown, so docs/benchmark.md can quote them).
    """
    lines = []
    meta = report['meta']
    lines.append(f"machine: {meta['cpu']}, {meta['threads']} threads, "
                 f"torch {meta['torch']}, device {meta['device']}; medians; "
                 'ratio = median of per-repeat ratios (ours / theirs)')
    rows = report.get('inference', [])
    if rows:
        has_compile = any('compile' in r['times'] for r in rows)
        has_bf16 = any('bf16' in r['times'] for r in rows)
        head = ['model', 'batch', 'HF ms', 'ours ms', 'ours/HF', 'fast ms',
                'fast/HF']
        if has_compile:
            head += ['compile ms', 'compile/HF']
        if has_bf16:
            head += ['bf16 ms', 'bf16/HF', 'bf16 err']
        head += ['GFLOP/img', 'ours GFLOP/s', 'fast GFLOP/s',
                 'torch.mm GFLOP/s', 'oneDNN GEMM GFLOP/s',
                 'ours/fast % of mm', 'ours/fast % of best GEMM',
                 'parity err']
        lines += ['', f"inference: {report['args']['warmup']} warm-up + "
                  f"{report['args']['repeats']} repeats, float32 unless "
                  'noted, outputs compared to Transformers (parity err) and '
                  'to eager dpt_mm (fast path)', '',
                  '| ' + ' | '.join(head) + ' |',
                  '|' + '---|' * len(head)]
        for r in rows:
            t = r['times']
            cells = [r['name'], str(r['batch']), f"{t['hf']['median_ms']:.0f}",
                     f"{t['ours']['median_ms']:.0f}",
                     f"{t['ours']['ratio_to_ref']:.3f}",
                     f"{t['fast']['median_ms']:.0f}",
                     f"{t['fast']['ratio_to_ref']:.3f}"]
            if has_compile:
                c = t.get('compile')
                cells += [f"{c['median_ms']:.0f}", f"{c['ratio_to_ref']:.3f}"
                          ] if c else ['–', '–']
            if has_bf16:
                b = t.get('bf16')
                cells += [f"{b['median_ms']:.0f}", f"{b['ratio_to_ref']:.3f}",
                          f"{r['bf16_rel_err']:.1e}"] if b else ['–'] * 3
            ach, fast = r['achieved']['ours'], r['achieved']['fast']
            onednn = r.get('onednn_ceiling_flops')
            cells += [f"{r['flops_per_image'] / 1e9:.1f}",
                      f"{ach['flops_per_s'] / 1e9:.0f}",
                      f"{fast['flops_per_s'] / 1e9:.0f}",
                      f"{r['matmul_ceiling_flops'] / 1e9:.0f}",
                      _fmt(onednn and onednn / 1e9, '.0f'),
                      f"{100 * ach['ceiling_fraction']:.0f}/"
                      f"{100 * fast['ceiling_fraction']:.0f}%",
                      f"{100 * ach['best_ceiling_fraction']:.0f}/"
                      f"{100 * fast['best_ceiling_fraction']:.0f}%",
                      f"{r['parity_rel_err']:.1e}"]
            lines.append('| ' + ' | '.join(cells) + ' |')
    train = report.get('training')
    if train:
        targs = report['args']
        lines += ['', f"training: one SGD step, batch {train['batch']}, "
                  f"{train['size']}×{train['size']}, "
                  f"{targs['train_warmup']} warm-up + "
                  f"{targs['train_repeats']} repeats; memory = peak "
                  f"{'CUDA allocated' if 'cuda' in meta['device'] else 'RSS'}"
                  ' minus the RSS after imports, each case in its own '
                  'process; allocated = peak of live tensor bytes in one '
                  'more step, weights, optimiser state and batch included; '
                  f"C allocator: {train.get('allocator', 'system')}"
                  + (f" ({train['allocator_lib']})"
                     if train.get('allocator_lib') else ''),
                  '',
                  '| case | step ms | ratio to mmseg | peak MiB | '
                  'memory ratio to mmseg | peak allocated MiB | '
                  'allocated ratio to mmseg | params (M) |',
                  '|---|---|---|---|---|---|---|---|']
        cases = train['cases']
        ref = cases.get('theirs', next(iter(cases.values())))
        for case, c in cases.items():
            lines.append(
                f"| {c['label']} | {c['median_ms']:.0f} | "
                f"{c['ratio_to_ref']:.3f} | {c['train_peak_mb']:.0f} | "
                f"{_fmt(_ratio(c['train_peak_mb'], ref['train_peak_mb']))} | "
                f"{c['alloc_peak_mb']:.0f} | "
                f"{_fmt(_ratio(c['alloc_peak_mb'], ref['alloc_peak_mb']))} | "
                f"{c['num_params'] / 1e6:.1f} |")
        if 'baseline_time_ratio' in train:
            now = cases[train['baseline'].get('case', 'ours')]
            before = cases[BASELINE_CASE]
            lines.append(
                f"\nbefore/after ({train['baseline']['rev']} → this tree, "
                f"{train['baseline'].get('case', 'ours')}): "
                f"step time after/before {train['baseline_time_ratio']:.3f}"
                f", peak memory after/before {_memory_ratios(now, before)}")
        if 'cp_time_ratio' in train:
            off, on = cases['ours'], cases['ours_cp']
            lines.append(
                f"\ngradient checkpointing: step time on/off "
                f"{train['cp_time_ratio']:.3f}, peak memory off/on "
                f"{_memory_ratios(off, on)}")
    targets = report.get('targets', [])
    if targets:
        lines += ['', '| target | measured | met |', '|---|---|---|']
        for t in targets:
            lines.append(f"| {t['target']} | {_fmt(t['value'])} | "
                         f"{'yes' if t['met'] else 'NO'} |")
    return '\n'.join(lines)


def format_profiles(report: Dict[str, Any]) -> str:
    lines = []
    for row in report.get('inference', []):
        for who, ops in row.get('profile', {}).items():
            lines.append(f"\nprofile {row['name']} batch {row['batch']}, "
                         f'{who}:')
            lines += [f"  {o['op']:<55} {o['self_ms']:9.1f} ms "
                      f"{100 * o['share']:5.1f}% x{o['calls']}" for o in ops]
    for who, ops in report.get('training', {}).get('profile', {}).items():
        lines.append(f'\nprofile training step, {who}:')
        lines += [f"  {o['op']:<55} {o['self_ms']:9.1f} ms "
                  f"{100 * o['share']:5.1f}% x{o['calls']}" for o in ops]
    return '\n'.join(lines)


# --------------------------------------------------------------------------
# command line


def _csv(kind):
    return lambda text: [kind(v) for v in text.split(',') if v]


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='dpt_mm vs Transformers (inference) and mmseg (training)',
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('--models', type=_csv(str),
                        default=['vitb', 'hybrid', 'vitl'],
                        help='inference variants: vitb, vitl, hybrid')
    parser.add_argument('--batch-sizes', type=_csv(int), default=None,
                        help='default: 1,4, but ViT-L at batch 1 only '
                        '(batch 4 takes minutes per forward on 2 CPU cores); '
                        'given explicitly, every model runs every size')
    parser.add_argument('--size', type=int, default=384,
                        help='inference input side')
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--train-size', type=int, default=512)
    parser.add_argument('--train-batch', type=int, default=2)
    parser.add_argument('--train-repeats', type=int, default=3,
                        help='timed training steps per case')
    parser.add_argument('--train-warmup', type=int, default=None,
                        help='default: --warmup')
    parser.add_argument('--train-cases', type=_csv(str),
                        default=list(TRAIN_CASES), help=', '.join(TRAIN_CASES))
    parser.add_argument('--baseline', default=None, metavar='REV',
                        help='also train one of our cases with dpt_mm as of '
                        'this git revision (before/after in one run)')
    parser.add_argument('--baseline-case', default='ours',
                        choices=[c for c in TRAIN_CASES if c != 'theirs'],
                        help='the case --baseline trains')
    parser.add_argument('--allocator', default='system',
                        choices=list(ALLOCATORS),
                        help='C allocator of every training worker (all '
                        'cases alike), preloaded with LD_PRELOAD (Linux); it '
                        'decides how much freed memory peak RSS still '
                        'counts')
    parser.add_argument('--no-inference', action='store_true')
    parser.add_argument('--no-train', action='store_true')
    parser.add_argument('--no-channels-last', action='store_true',
                        help='fast path without channels-last')
    parser.add_argument('--compile', action='store_true',
                        help='also time torch.compile of the fast path '
                        '(slow to compile on CPU)')
    parser.add_argument('--no-bf16', dest='bf16', action='store_false',
                        help='skip the (lossy) bf16 fast path')
    parser.add_argument('--profile', action='store_true',
                        help='top operators, ours vs theirs')
    parser.add_argument('--profile-top', type=int, default=12)
    parser.add_argument('--tiny', action='store_true',
                        help='smoke test: embed 32, 2 layers, 64×64')
    parser.add_argument('--device', default='auto',
                        help='cpu, cuda or auto')
    parser.add_argument('--threads', type=int, default=None,
                        help='torch.set_num_threads (default: torch\'s)')
    parser.add_argument('--json', dest='json_out', default=None,
                        help='write the full results here')
    parser.add_argument('--worker', default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.batch_sizes_by_model = {}
    if args.tiny:
        args.models = ['tiny']
        if args.size == 384:
            args.size = 64
        if args.train_size == 512:
            args.train_size = 64
        args.batch_sizes = args.batch_sizes or [1, 2]
    if args.batch_sizes is None:
        args.batch_sizes = [1, 4]
        args.batch_sizes_by_model['vitl'] = [1]
    bad = [m for m in args.models if m not in HF_VARIANTS]
    if bad:
        parser.error(f'unknown models {bad}; choose from vitb, vitl, hybrid')
    bad = [c for c in args.train_cases if c not in TRAIN_CASES]
    if bad:
        parser.error(f'unknown training cases {bad}')
    if args.baseline and args.baseline_case not in args.train_cases:
        parser.error(f'--baseline-case {args.baseline_case} is not among '
                     f'--train-cases {args.train_cases}')
    try:
        args.allocator_lib = find_allocator(args.allocator)
    except RuntimeError as err:
        parser.error(str(err))
    if args.train_warmup is None:
        args.train_warmup = args.warmup
    if args.repeats < 1 or args.train_repeats < 1:
        parser.error('--repeats must be >= 1')
    return args


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    args = parse_args(argv)
    if args.worker is not None:
        worker_main(json.loads(args.worker))
        return {}
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(('cuda' if torch.cuda.is_available() else 'cpu')
                          if args.device == 'auto' else args.device)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    report: Dict[str, Any] = dict(
        meta=machine_info(device),
        args={k: v for k, v in vars(args).items() if k != 'worker'},
        command=' '.join([Path(sys.argv[0]).name] + list(
            sys.argv[1:] if argv is None else argv)))
    start = time.perf_counter()
    # Training first: its workers hold several GiB each, and the parent is
    # smallest before it has built any inference model.
    if not args.no_train:
        report['training'] = bench_training(args, device, log)
    if not args.no_inference:
        report['inference'] = []
        for variant in args.models:
            for batch in args.batch_sizes_by_model.get(variant,
                                                       args.batch_sizes):
                report['inference'].append(
                    bench_inference(variant, batch, args.size, args, device,
                                    log))
                release_memory()
    report['targets'] = evaluate_targets(report)
    report['wall_s'] = time.perf_counter() - start
    try:
        report['meta']['loadavg_end'] = list(os.getloadavg())
    except OSError:
        pass
    print(format_report(report))
    if args.profile:
        print(format_profiles(report))
    if args.json_out:
        Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
        with open(args.json_out, 'w') as f:
            json.dump(report, f, indent=1)
        log(f'wrote {args.json_out}')
    return report


if __name__ == '__main__':
    main()

"""Whether the accelerator kernels pay off on this machine, measured here.

The first call times each kernel against the plain op on a small
DPT-like problem (forward + backward, well under a second in all) and
caches the result as JSON under ``~/.cache/dpt_mm/`` (or
``$DPT_MM_CACHE_DIR``), keyed by the CPU model and flags, the torch
version and the thread count: a decision made on one CPU is never
applied to another.
"""
import copy
import hashlib
import json
import os
import os.path as osp
import platform
import tempfile
import time
from typing import Callable, Dict, Optional

import torch
import torch.nn as nn

__all__ = [
    'CACHE_ENV', 'KERNEL_NAMES', 'MIN_SPEEDUP', 'accel_decision',
    'machine_key'
]

CACHE_ENV = 'DPT_MM_CACHE_DIR'
#: A kernel is used only if it is at least this much faster than the plain
#: op (best of several runs): below that, timing noise and the changed
#: summation order are not worth it.
MIN_SPEEDUP = 1.1
_REPEATS = 5
#: The kernels measured; a cached decision without all of them (written
#: before a kernel was added) is measured again.
KERNEL_NAMES = ('linear', 'conv', 'readout', 'loss')
_decision: Optional[dict] = None


def _cpu_description() -> str:
    try:
        with open('/proc/cpuinfo') as f:
            info = f.read()
    except OSError:
        return platform.processor() or platform.machine()
    fields = {}
    for line in info.splitlines():
        key, _, value = line.partition(':')
        fields.setdefault(key.strip(), value.strip())
    return f"{fields.get('model name', '?')}|{fields.get('flags', '')}"


def machine_key() -> str:
    """What a cached decision is valid for: CPU model and flags, torch
    version, CPU threads.

    Returns:
        str: A short hash of those.
    """
    text = '|'.join((_cpu_description(), torch.__version__,
                     str(torch.get_num_threads())))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _cache_path() -> str:
    folder = os.environ.get(CACHE_ENV) or osp.join(
        osp.expanduser('~'), '.cache', 'dpt_mm')
    return osp.join(folder, f'accel-{machine_key()}.json')


def _best_ms(step: Callable[[], None]) -> float:
    step()  # warm-up: oneDNN primitive creation, allocator
    best = float('inf')
    for _ in range(_REPEATS):
        start = time.perf_counter()
        step()
        best = min(best, time.perf_counter() - start)
    return best * 1e3


def _train_step(module: nn.Module, *x: torch.Tensor) -> Callable[[], None]:
    def step() -> None:
        module(*x).sum().backward()
    return step


def _loss_step(loss: nn.Module, logits: torch.Tensor,
               label: torch.Tensor) -> Callable[[], None]:
    from ..models.losses import resize_cross_entropy_of
    fn = resize_cross_entropy_of(loss)

    def step() -> None:
        fn(logits, label, align_corners=False)[0].backward()
    return step


def _measure() -> Dict[str, Dict[str, float]]:
    from mmseg.models.losses import CrossEntropyLoss
    from ..models.layers.reassemble import Readout
    from .conv import BandedConv2d
    from .linear import OneDNNLinear
    from .loss import FusedCrossEntropyLoss
    from .readout import SplitReadout
    generator = torch.Generator().manual_seed(0)
    # A ViT-S qkv GEMM (197 tokens, 384 → 1152), a fusion-block 3×3 conv
    # (32 channels, 64², four bands of 16 rows), a ViT-S readout at
    # 384² (24×24 patches) and an ADE20K loss (150 classes, 32² logits
    # resized to 64² labels), forward + backward: a few ms each on an idle
    # machine.
    tokens = torch.randn(1, 197, 384, generator=generator,
                         requires_grad=True)
    fmap = torch.randn(1, 32, 64, 64, generator=generator,
                       requires_grad=True).contiguous(
                           memory_format=torch.channels_last)
    patches = torch.randn(1, 384, 24, 24, generator=generator,
                          requires_grad=True)
    cls_token = torch.randn(1, 384, generator=generator, requires_grad=True)
    logits = torch.randn(1, 150, 32, 32, generator=generator,
                         requires_grad=True)
    label = torch.randint(0, 150, (1, 64, 64), generator=generator)
    cases = {
        'linear': (nn.Linear(384, 1152), OneDNNLinear, (tokens, )),
        'conv': (nn.Conv2d(32, 32, 3, padding=1), BandedConv2d, (fmap, )),
        'readout': (Readout(384), SplitReadout, (patches, cls_token)),
        'loss': (CrossEntropyLoss(), FusedCrossEntropyLoss, (logits, label)),
    }
    times = {}
    for name, (plain, accel_cls, x) in cases.items():
        accel = copy.deepcopy(plain)
        accel.__class__ = accel_cls  # as accelerate() does
        if name == 'conv':
            accel.band_bytes = 32 * 16 * 64 * 4  # 16 of 64 rows
        make_step = _loss_step if name == 'loss' else _train_step
        times[name] = dict(plain_ms=_best_ms(make_step(plain, *x)),
                           accel_ms=_best_ms(make_step(accel, *x)))
    return times


def _decide(times: Dict[str, Dict[str, float]]) -> dict:
    kernels = {
        name: t['plain_ms'] >= MIN_SPEEDUP * t['accel_ms']
        for name, t in times.items()
    }
    return dict(machine=machine_key(), cpu=_cpu_description().split('|')[0],
                torch=torch.__version__, threads=torch.get_num_threads(),
                min_speedup=MIN_SPEEDUP, times=times, kernels=kernels,
                enabled=any(kernels.values()))


def _write(path: str, decision: dict) -> None:
    os.makedirs(osp.dirname(path), exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=osp.dirname(path), suffix='.tmp')
    with os.fdopen(fd, 'w') as f:
        json.dump(decision, f, indent=1)
    os.replace(tmp, path)  # readers never see half a file


def accel_decision(refresh: bool = False) -> dict:
    """The measured decision for this machine, from the cache if present.

    Args:
        refresh (bool): Measure again and overwrite the cache.

    Returns:
        dict: ``times`` (per kernel ``plain_ms`` and ``accel_ms``, best of
        5 forward + backward runs), ``kernels`` (per kernel: at least
        :data:`MIN_SPEEDUP` faster), ``enabled`` (any kernel is), and the
        ``machine``/``cpu``/``torch``/``threads`` it holds for.
    """
    global _decision
    path = _cache_path()
    if not refresh:
        if _decision is not None and _decision['machine'] == machine_key():
            return _decision
        try:
            with open(path) as f:
                cached = json.load(f)
            if cached.get('machine') == machine_key() and isinstance(
                    cached.get('kernels'), dict) and set(
                        cached['kernels']) == set(KERNEL_NAMES):
                _decision = cached
                return cached
        except (OSError, ValueError):
            pass  # absent or unreadable: measure
    with torch.random.fork_rng(devices=[]), torch.enable_grad():
        decision = _decide(_measure())
    try:
        _write(path, decision)
    except OSError:
        pass  # a read-only home still gets the decision, uncached
    _decision = decision
    return decision

"""What every measurement shares: interleaved timing, ratios, memory
probes, the machine's description and the worker processes.

Nothing here imports ``dpt_mm`` at module level: a worker of
``--baseline REV`` must import dpt_mm from that revision's tree, after
putting it first on ``sys.path``.
"""
import ctypes
import ctypes.util
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

import torch

__all__ = [
    'REPO_ROOT', 'PARITY_RTOL', 'PROTOCOL_PREFIX', 'median', 'ratio', 'fmt',
    'rel_err', 'sync', 'timed', 'time_interleaved', 'summarise',
    'count_flops', 'profile_top_ops', 'release_memory', 'machine_info',
    'cpu_description', 'step_peak_bytes', 'held_bytes',
    'rss_mb',
    'peak_rss_mb',
    'find_allocator', 'loaded_allocator', 'accel_module', 'apply_accel',
    'jsonable', 'send', 'serve', 'import_dpt_mm_from', 'Worker',
    'extract_revision'
]

REPO_ROOT = Path(__file__).resolve().parents[3]
# The thin entry script next to this package; workers run it.
ENTRY = Path(__file__).resolve().parents[1] / 'benchmark.py'
PARITY_RTOL = 1e-4
PROTOCOL_PREFIX = '@@BENCH '
# dpt_mm.accel.ACCEL_MODES, spelt out: the options are parsed before a
# baseline worker imports dpt_mm from its own tree.
ACCEL_MODES = ('auto', 'on', 'off')
# CPU flags that decide which kernels run (vector width, bf16/int8 units).
CPU_FLAGS = ('avx2', 'fma', 'avx512f', 'avx512bw', 'avx512_vnni',
             'avx512_bf16', 'avx512_fp16', 'avx_vnni', 'amx_tile',
             'amx_bf16', 'amx_int8', 'asimd', 'sve')
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


# --------------------------------------------------------------------------
# numbers


def median(values: Sequence[float]) -> float:
    """Median as a float."""
    return float(statistics.median(values))


def ratio(num: Optional[float], den: Optional[float]) -> Optional[float]:
    """num / den, or None when undefined (JSON has no NaN)."""
    if num is None or den is None or den <= 0:
        return None
    return num / den


def fmt(value: Optional[float], spec: str = '.3f') -> str:
    """``value`` formatted, or a dash for a missing one."""
    return '–' if value is None else format(value, spec)


def rel_err(out: torch.Tensor, ref: torch.Tensor) -> float:
    """max |out − ref| / max |ref| (the plain max when ref is all zero)."""
    out, ref = out.detach().float(), ref.detach().float()
    scale = ref.abs().max().item()
    diff = (out - ref).abs().max().item()
    return diff / scale if scale > 0 else diff


# --------------------------------------------------------------------------
# timing


def sync(device: torch.device) -> None:
    """Wait for queued GPU work (a no-op on CPU)."""
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], Any], device: torch.device) -> Callable[[], float]:
    """``fn`` as a timer: a call runs it once and returns its seconds."""

    def run() -> float:
        sync(device)
        start = time.perf_counter()
        fn()
        sync(device)
        return time.perf_counter() - start

    return run


def time_interleaved(timers: Dict[str, Callable[[], float]], warmup: int,
                     repeats: int,
                     log: Optional[Callable[[str], None]] = None
                     ) -> Dict[str, List[float]]:
    """Seconds per call of each case, the cases alternating every round.

    Alternating spreads the load of other processes over all cases alike;
    a timer either times a local call (:func:`timed`) or returns the time a
    worker process measured.

    Args:
        timers (dict[str, callable]): Case → zero-argument function that
            runs the case once and returns its seconds.
        warmup (int): Untimed rounds first.
        repeats (int): Timed rounds.
        log (callable, optional): Progress lines.

    Returns:
        dict[str, list[float]]: Case → one time per timed round.
    """
    times: Dict[str, List[float]] = {name: [] for name in timers}
    for rnd in range(warmup + repeats):
        this_round = {name: timer() for name, timer in timers.items()}
        if rnd >= warmup:
            for name, seconds in this_round.items():
                times[name].append(seconds)
        if log:
            kind = 'warm-up' if rnd < warmup else 'repeat'
            log(f'    {kind} {rnd + 1}/{warmup + repeats}: ' + ', '.join(
                f'{n} {t * 1e3:.0f} ms' for n, t in this_round.items()))
    return times


def summarise(times: Dict[str, List[float]],
              base: str) -> Dict[str, Dict[str, Any]]:
    """Median and minimum of each case, and its ratio to ``base``.

    Args:
        times (dict[str, list[float]]): Case → seconds per round.
        base (str): The reference case.

    Returns:
        dict: Case → ``median_ms``, ``min_ms``, ``samples_ms`` and
        ``ratio_to_ref``, the median of the per-round ratios (which cancels
        load drift between rounds).
    """
    out = {}
    for name, samples in times.items():
        ratios = [a / b for a, b in zip(samples, times[base])]
        out[name] = dict(median_ms=median(samples) * 1e3,
                         min_ms=min(samples) * 1e3,
                         samples_ms=[s * 1e3 for s in samples],
                         ratio_to_ref=median(ratios))
    return out


def count_flops(fn: Callable[[], Any], grad: bool = False) -> Dict[str, Any]:
    """FLOPs of one call (2 per multiply-add), in total and by operator.

    ``FlopCounterMode`` has no formula for the CPU flash-attention kernels,
    so the standard attention formulas (forward and backward) are
    registered for them.

    Args:
        fn (callable): The call, e.g. a forward or a training step.
        grad (bool): Run it with gradients enabled (a training step
            counts its backward too). Defaults to False.
    """
    from torch.utils.flop_counter import (FlopCounterMode,
                                          sdpa_backward_flop_count,
                                          sdpa_flop_count)

    def cpu_flash(query, key, value, *args, **kwargs):
        return sdpa_flop_count(query, key, value)

    def cpu_flash_backward(grad_out, query, key, value, *args, **kwargs):
        return sdpa_backward_flop_count(grad_out, query, key, value)

    custom = {}
    for name, formula in (
            ('_scaled_dot_product_flash_attention_for_cpu', cpu_flash),
            ('_scaled_dot_product_flash_attention_for_cpu_backward',
             cpu_flash_backward)):
        op = getattr(torch.ops.aten, name, None)
        if op is not None:
            custom[op] = formula
    counter = FlopCounterMode(display=False, custom_mapping=custom)
    with torch.set_grad_enabled(grad), counter:
        fn()
    by_op = {str(k): float(v)
             for k, v in counter.get_flop_counts()['Global'].items()}
    return dict(total=float(counter.get_total_flops()), by_op=by_op)


def profile_top_ops(fn: Callable[[], Any], device: torch.device,
                    top: int) -> List[Dict[str, Any]]:
    """Top operators by self time over one call of ``fn``."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU]
    if device.type == 'cuda':
        activities.append(ProfilerActivity.CUDA)
    with profile(activities=activities) as prof:
        fn()
        sync(device)
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


# --------------------------------------------------------------------------
# memory


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
    with profile(activities=[ProfilerActivity.CPU],
                 profile_memory=True) as prof:
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


def held_bytes(model: torch.nn.Module, optimizer: torch.optim.Optimizer,
               tensors: Sequence[torch.Tensor], device: torch.device) -> int:
    """Bytes that live between training steps on ``device``: parameters,
    buffers, optimiser state and ``tensors`` (the batch), each storage once.
    """
    held = [*model.parameters(), *model.buffers(), *tensors]
    held += [v for state in optimizer.state.values() for v in state.values()
             if isinstance(v, torch.Tensor)]
    storages = {t.untyped_storage().data_ptr(): t.untyped_storage().nbytes()
                for t in held if t.device.type == device.type}
    return sum(storages.values())


def rss_mb() -> float:
    """Current resident set size in MiB (Linux /proc; else peak RSS)."""
    try:
        with open('/proc/self/statm') as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf('SC_PAGE_SIZE') / 2**20
    except (OSError, ValueError):
        return peak_rss_mb()


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return peak / 2**20 if sys.platform == 'darwin' else peak / 2**10


def release_memory() -> None:
    """Return freed heap memory to the OS (glibc keeps it otherwise), so
    big models benchmarked one after another do not add up."""
    gc.collect()
    try:
        ctypes.CDLL('libc.so.6').malloc_trim(0)
    except (OSError, AttributeError):
        pass


def find_allocator(name: str) -> Optional[str]:
    """The library ``--allocator name`` preloads (None for 'system').

    Raises:
        RuntimeError: Unknown name, or the library is not installed.
    """
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


def loaded_allocator(lib: Optional[str]) -> bool:
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


# --------------------------------------------------------------------------
# the machine


def cpu_description() -> Dict[str, Any]:
    """The CPU's model name (as ``lscpu`` prints it) and the flags that
    decide which kernels run (vector width, bf16 and int8 units)."""
    fields: Dict[str, str] = {}
    try:
        out = subprocess.run(['lscpu'], capture_output=True, text=True,
                             timeout=10).stdout
        for line in out.splitlines():
            key, _, value = line.partition(':')
            fields.setdefault(key.strip(), value.strip())
    except (OSError, subprocess.SubprocessError):
        pass
    model = fields.get('Model name')
    flags = fields.get('Flags', '').split()
    if not model or not flags:
        # No lscpu (macOS, minimal containers): /proc/cpuinfo on Linux.
        try:
            with open('/proc/cpuinfo') as f:
                for line in f:
                    key, _, value = line.partition(':')
                    if key.strip() == 'model name' and not model:
                        model = value.strip()
                    if key.strip() in ('flags', 'Features') and not flags:
                        flags = value.split()
        except OSError:
            pass
    present = set(flags)
    return dict(model=model or platform.processor() or platform.machine(),
                flags=[f for f in CPU_FLAGS if f in present])


def _onednn_caps() -> str:
    caps = []
    if torch.backends.mkldnn.is_available():
        caps.append('mkldnn')
        if torch.ops.mkldnn._is_mkldnn_bf16_supported():
            caps.append('bf16')
    return ','.join(caps)


def machine_info(device: torch.device) -> Dict[str, Any]:
    """What a reader needs to compare two runs: CPU model and flags,
    threads, torch, the device, the measured commit and the load."""
    cpu = cpu_description()
    info = dict(torch=torch.__version__, python=platform.python_version(),
                cpu=cpu['model'], cpu_flags=cpu['flags'],
                cpu_count=os.cpu_count(), threads=torch.get_num_threads(),
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
# the accelerator


def accel_module():
    """``dpt_mm.accel`` of the imported dpt_mm, or None where that tree
    has none (an older ``--baseline`` revision)."""
    try:
        import dpt_mm.accel as accel
    except ImportError:
        return None
    return accel


def apply_accel(model: torch.nn.Module, mode: str) -> Dict[str, Any]:
    """Swap in the accelerator's kernels (``dpt_mm.accel.accelerate``).

    Args:
        model (nn.Module): Built model, changed in place.
        mode (str): ``'auto'`` (the measured per-machine decision), ``'on'``
            or ``'off'``.

    Returns:
        dict: ``mode``, ``available`` and, where available, ``swapped`` (the
        number of modules replaced) and ``decision`` (for ``'auto'``).
    """
    accel = accel_module()
    if accel is None:
        return dict(mode=mode, available=False,
                    reason='dpt_mm.accel not available')
    info: Dict[str, Any] = dict(mode=mode, available=True,
                                swapped=int(accel.accelerate(model,
                                                             mode=mode)))
    if mode == 'auto':
        info['decision'] = jsonable(accel.accel_decision())
    return info


def jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


# --------------------------------------------------------------------------
# worker processes


def send(msg: Dict[str, Any]) -> None:
    """One reply of a worker to its parent (one line on stdout)."""
    sys.stdout.write(PROTOCOL_PREFIX + json.dumps(msg) + '\n')
    sys.stdout.flush()


def serve(commands: Dict[str, Callable[[], Dict[str, Any]]]) -> None:
    """A worker's loop: one command per stdin line, one reply each, until
    ``quit`` (or the parent closes stdin)."""
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == 'quit':
            break
        if cmd not in commands:
            send(dict(error=f'unknown command {cmd!r}'))
            continue
        send(commands[cmd]())


def import_dpt_mm_from(root: Path) -> None:
    """Import dpt_mm from ``root`` (this tree, or a baseline revision's).

    Raises:
        RuntimeError: Another dpt_mm was imported (it was already loaded,
            or ``root`` holds none).
    """
    sys.path.insert(0, str(root))
    import dpt_mm
    if Path(dpt_mm.__file__).resolve().parents[1] != root.resolve():
        raise RuntimeError(f'worker imported {dpt_mm.__file__}, not the '
                           f'dpt_mm under {root}')


class Worker:
    """Parent-side handle of a worker process, driven over stdin/stdout.

    Args:
        name (str): Case name, for error messages.
        spec (dict): What the worker runs (``kind`` picks the module).
        allocator_lib (str, optional): C allocator to preload.
    """

    def __init__(self, name: str, spec: Dict[str, Any],
                 allocator_lib: Optional[str] = None) -> None:
        self.name = name
        self.log = tempfile.TemporaryFile(mode='w+')
        env = dict(os.environ)
        if allocator_lib:
            env['LD_PRELOAD'] = ' '.join(
                filter(None, [allocator_lib, env.get('LD_PRELOAD')]))
        self.proc = subprocess.Popen(
            [sys.executable, str(ENTRY), '--worker', json.dumps(spec)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log,
            text=True, cwd=str(REPO_ROOT), env=env)
        self.last: Dict[str, Any] = {}

    def recv(self) -> Dict[str, Any]:
        """The next reply; the worker's stderr in the error if it died."""
        for line in self.proc.stdout:
            if line.startswith(PROTOCOL_PREFIX):
                return json.loads(line[len(PROTOCOL_PREFIX):])
        self.log.seek(0)
        raise RuntimeError(f'benchmark worker {self.name!r} died:\n'
                           f'{self.log.read()[-4000:]}')

    def call(self, cmd: str) -> Dict[str, Any]:
        """Send one command and wait for its reply."""
        self.proc.stdin.write(cmd + '\n')
        self.proc.stdin.flush()
        self.last = self.recv()
        if 'error' in self.last:
            raise RuntimeError(f'benchmark worker {self.name!r}: '
                               f"{self.last['error']}")
        return self.last

    def timer(self) -> Callable[[], float]:
        """A timer for :func:`time_interleaved`: one ``step`` in the
        worker, timed there."""
        return lambda: self.call('step')['time_s']

    def close(self) -> None:
        """Ask the worker to quit (kill it if it does not)."""
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
    def git(*cmd: str) -> subprocess.CompletedProcess:
        proc = subprocess.run(['git', '-C', str(REPO_ROOT), *cmd],
                              capture_output=True)
        if proc.returncode:
            err = proc.stderr.decode(errors='replace').strip()
            raise SystemExit(f'--baseline {rev}: git {cmd[0]} failed: {err}')
        return proc

    commit = git('rev-parse', '--verify', f'{rev}^{{commit}}').stdout
    archive = git('archive', '--format=tar', rev).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(dest, filter='data')
    return commit.decode().strip()

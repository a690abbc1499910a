#!/usr/bin/env python
"""What a GPU run must show about dpt_mm's training, in one command.

    python tools/analysis_tools/gpu_check.py [--config CFG] [--json OUT]

Each check is a function returning one row of the summary: ``ran`` (with
its numbers), ``skipped`` (with the reason) or ``failed`` (with the
message). The exit code is 1 if any check failed.

* ``dropout_replay``: ``with_cp=True`` (wherever a component takes it)
  gives the plain model's loss and gradients with dropout active in the
  backbone and the heads, so checkpointing replays the device's RNG state
  when it recomputes (on GPU the CUDA generator's).
* ``amp_bf16`` / ``amp_fp16``: one training step under autocast against
  float32 from the same weights and batch: loss error, gradient cosine,
  everything finite; fp16 with a ``GradScaler`` (CUDA only).
* ``ddp``: a 2-process ``DistributedDataParallel`` step: gradients equal
  to one process computing the same, parameters equal on both ranks after
  the step. With two CUDA devices NCCL and SyncBN (reference: BN over the
  whole batch); otherwise gloo on CPU with BN, because torch's SyncBN runs
  on CUDA only (reference: BN per half, gradients averaged).
* ``compile_graph_breaks``: ``torch._dynamo.explain`` of the inference
  forward: graphs, breaks and the first reasons.
* ``compile_run``: ``torch.compile`` (inductor) of the inference forward
  against eager; on CPU only with ``--compile-run`` (slow to compile).
* ``export``: strict ``torch.export`` of the inference forward, run against
  eager.
* ``step_vs_mmseg``: training step time and peak memory of dpt_mm's DPT
  ViT-B segmentation against mmseg's DPT config, interleaved; on GPU at
  512², batch 2, memory from ``torch.cuda.max_memory_allocated``; on CPU the
  tiny pair of the benchmark's ``--tiny`` (``--full`` for ViT-B), memory
  from the profiler's live tensor bytes.

The model of the first six is ``--config`` (default: the toy segmentation
config). TF32 is switched off, so float32 comparisons are float32. Without
CUDA the script runs what a CPU can and lists the rest as skipped.
"""
import argparse
import copy
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

os.environ.setdefault('HF_HUB_OFFLINE', '1')
os.environ.setdefault('TRANSFORMERS_OFFLINE', '1')
HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
# The benchmark package beside this file, and the repository for dpt_mm.
sys.path[:0] = [str(HERE), str(REPO_ROOT)]

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from benchmark import harness  # noqa: E402
from benchmark.training import (replace_syncbn, seg_batch,  # noqa: E402
                                train_model_config)

DEFAULT_CONFIG = 'configs/toy/dpt_toy_seg.py'
RTOL = 1e-4  # float32 against float32
AMP_LOSS_RTOL = 5e-2  # bf16/fp16 keep about 3 significant digits
# Gradient cosine against float32. bf16 keeps 8 significant bits, fp16 11:
# the toy model's small, cancelling backbone gradients carry the most
# relative noise (measured on CPU: bf16 0.973, fp16 0.998).
AMP_GRAD_COSINE = {torch.bfloat16: 0.95, torch.float16: 0.99}
DDP_PREFIX = '@@DDP '
HEADS = ('decode_head', 'auxiliary_head')


@dataclass
class Result:
    """One row of the summary.

    Args:
        name (str): The check.
        status (str): ``ran``, ``skipped`` or ``failed``.
        detail (str): What it measured, why it was skipped, or what failed.
        numbers (dict): The measured values (for ``--json``).
    """
    name: str
    status: str
    detail: str
    numbers: Dict[str, Any] = field(default_factory=dict)


class CheckFailed(AssertionError):
    """A check ran and its result is wrong."""


@dataclass
class Context:
    """What every check reads: the device, the model config (BN instead of
    SyncBN), the input size and batch, and the options."""
    device: torch.device
    model_cfg: Dict[str, Any]
    size: Tuple[int, int]
    batch: int
    args: argparse.Namespace


def ran(name: str, detail: str, **numbers: Any) -> Result:
    return Result(name, 'ran', detail, numbers)


def skipped(name: str, reason: str) -> Result:
    return Result(name, 'skipped', reason)


# --------------------------------------------------------------------------
# models and data


def load_model_config(path: str, sync_bn: bool = False) -> Dict[str, Any]:
    """The ``model`` of a config file as a plain dict (SyncBN → BN unless
    ``sync_bn``)."""
    from mmengine.config import Config
    cfg = Config.fromfile(path).model.to_dict()
    return cfg if sync_bn else replace_syncbn(cfg)


def config_input_size(path: str) -> Tuple[int, int]:
    """(H, W) the config trains at: ``crop_size``, else the preprocessor's
    ``size``, else the backbone's ``img_size``."""
    from mmengine.config import Config
    cfg = Config.fromfile(path)
    size = (cfg.get('crop_size')
            or cfg.model.get('data_preprocessor', {}).get('size')
            or cfg.model.backbone.get('img_size', 64))
    return (size, size) if isinstance(size, int) else tuple(size)


def quiet_logger() -> None:
    """mmengine's current logger at WARNING: ``init_weights`` logs every
    parameter at INFO."""
    from mmengine.logging import MMLogger
    if not MMLogger.check_instance_created('gpu_check'):
        MMLogger.get_instance('gpu_check', log_level='WARNING')


def build(ctx: Context, cfg: Optional[Dict[str, Any]] = None,
          device: Optional[torch.device] = None) -> torch.nn.Module:
    """A model in train mode, initialised from seed 0 (equal weights for
    equal configs)."""
    from mmengine.registry import init_default_scope

    import dpt_mm  # noqa: F401
    from mmseg.registry import MODELS

    init_default_scope('mmseg')
    quiet_logger()
    torch.manual_seed(0)
    model = MODELS.build(copy.deepcopy(cfg or ctx.model_cfg))
    model.init_weights()
    return model.to(device or ctx.device).train()


def make_batch(ctx: Context, batch: Optional[int] = None,
               device: Optional[torch.device] = None
               ) -> Tuple[torch.Tensor, list]:
    """Random images with labels for the config's head: class maps for
    segmentation, depth maps for ``DPTDepthHead``."""
    from mmengine.structures import PixelData

    batch, device = batch or ctx.batch, device or ctx.device
    head = ctx.model_cfg['decode_head']
    inputs, samples = seg_batch(batch, ctx.size, device,
                                num_classes=head.get('num_classes', 2))
    if head['type'] == 'DPTDepthHead':
        gen = torch.Generator().manual_seed(1)
        for sample in samples:
            del sample.gt_sem_seg
            sample.gt_depth_map = PixelData(data=(torch.rand(
                1, *ctx.size, generator=gen) * 5 + 0.5).to(device))
    return inputs, samples


def loss_of(model: torch.nn.Module, inputs: torch.Tensor,
            samples: list) -> torch.Tensor:
    """The summed training loss, as mmengine's optimiser wrapper sees it."""
    loss, _ = model.parse_losses(model.loss(inputs, samples))
    return loss


def flat_grads(model: torch.nn.Module) -> torch.Tensor:
    """Every parameter's gradient in one float32 vector (zeros where
    none)."""
    return torch.cat([(p.grad if p.grad is not None else
                       torch.zeros_like(p)).detach().float().flatten()
                      for p in model.parameters()])


class TensorForward(torch.nn.Module):
    """``model(x, mode='tensor')`` as a one-argument module (for
    ``torch.compile`` and ``torch.export``)."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x, mode='tensor')


def _eval_forward(ctx: Context) -> Tuple[TensorForward, torch.Tensor,
                                         torch.Tensor]:
    model = TensorForward(build(ctx).eval())
    x = make_batch(ctx, batch=1)[0]
    with torch.no_grad():
        return model, x, model(x)


def _short(err: BaseException, limit: int = 300) -> str:
    text = ' '.join(str(err).split())
    return f'{type(err).__name__}: ' + (text[:limit] + ' …'
                                        if len(text) > limit else text)


# --------------------------------------------------------------------------
# the checks


def _takes_with_cp(part: Dict[str, Any]) -> bool:
    """Whether the registered class of a component config has ``with_cp``
    (mmseg's FCNHead, the auxiliary head, has none)."""
    import inspect

    import dpt_mm  # noqa: F401
    from mmseg.registry import MODELS

    cls = MODELS.get(part['type'])
    return cls is not None and 'with_cp' in inspect.signature(
        cls.__init__).parameters


def check_dropout_replay(ctx: Context) -> Result:
    """Checkpointed and plain model: same loss and gradients with dropout
    active in the backbone (attention, MLP, drop-path) and the heads."""
    name = 'dropout_replay'
    cfg = copy.deepcopy(ctx.model_cfg)
    cfg['backbone'].update(drop_rate=0.1, attn_drop_rate=0.1,
                           drop_path_rate=0.1)
    cp_cfg = copy.deepcopy(cfg)
    checkpointed_parts = [
        part for part in ('backbone', 'neck', *HEADS)
        if cp_cfg.get(part) and _takes_with_cp(cp_cfg[part])]
    for part in checkpointed_parts:
        cp_cfg[part]['with_cp'] = True
    plain, checkpointed = build(ctx, cfg), build(ctx, cp_cfg)
    checkpointed.load_state_dict(plain.state_dict())
    inputs, samples = make_batch(ctx)

    def run(model: torch.nn.Module, seed: int):
        torch.manual_seed(seed)  # seeds the CUDA generators too
        model.zero_grad(set_to_none=True)
        loss = loss_of(model, inputs, samples)
        loss.backward()
        return loss.detach(), flat_grads(model)

    loss_plain, grad_plain = run(plain, 1)
    loss_cp, grad_cp = run(checkpointed, 1)
    other_seed, _ = run(plain, 2)
    if torch.equal(other_seed, loss_plain):
        raise CheckFailed('dropout is not active: two seeds gave the same '
                          'loss, so the comparison would prove nothing')
    loss_err = harness.rel_err(loss_cp, loss_plain)
    grad_err = harness.rel_err(grad_cp, grad_plain)
    if not (loss_err <= RTOL and grad_err <= RTOL):
        raise CheckFailed(
            f'with_cp differs from the plain model: loss {loss_err:.1e}, '
            f'gradients {grad_err:.1e} relative (limit {RTOL:g}); the '
            'recomputation did not replay the dropout masks')
    return ran(name, f"with_cp in {', '.join(checkpointed_parts)} vs plain, "
               f'dropout active: loss {loss_err:.1e}, gradients '
               f'{grad_err:.1e} relative', loss_rel_err=loss_err,
               grad_rel_err=grad_err, checkpointed=checkpointed_parts)


def _amp_step(ctx: Context, name: str, dtype: torch.dtype,
              scaled: bool) -> Result:
    """One SGD step under autocast against float32: same weights, batch
    and dropout masks."""
    reference, model = build(ctx), build(ctx)
    inputs, samples = make_batch(ctx)
    torch.manual_seed(1)
    loss_ref = loss_of(reference, inputs, samples)
    loss_ref.backward()
    grad_ref = flat_grads(reference)

    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    scaler = torch.amp.GradScaler(ctx.device.type) if scaled else None
    torch.manual_seed(1)
    with torch.autocast(ctx.device.type, dtype=dtype):
        loss = loss_of(model, inputs, samples)
    if scaler is not None:
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
    else:
        loss.backward()
    grad = flat_grads(model)
    loss_err = abs(loss.item() - loss_ref.item()) / abs(loss_ref.item())
    cosine = F.cosine_similarity(grad.double(), grad_ref.double(),
                                 dim=0).item()
    grad_err = harness.rel_err(grad, grad_ref)
    if scaler is not None:
        scale = scaler.get_scale()
        scaler.step(optimizer)
        scaler.update()
        if scaler.get_scale() < scale:
            raise CheckFailed(f'GradScaler skipped the step (inf/NaN '
                              f'gradients at scale {scale:g})')
    else:
        optimizer.step()
    finite = bool(torch.isfinite(grad).all()) and all(
        bool(torch.isfinite(p).all()) for p in model.parameters())
    numbers = dict(loss_rel_err=loss_err, grad_cosine=cosine,
                   grad_rel_err=grad_err, loss=loss.item(),
                   loss_fp32=loss_ref.item())
    detail = (f'loss {loss_err:.1e} relative to float32, gradient cosine '
              f'{cosine:.5f} (max error {grad_err:.1e})')
    if not finite:
        raise CheckFailed(f'non-finite gradients or weights; {detail}')
    if not (loss_err <= AMP_LOSS_RTOL and cosine >= AMP_GRAD_COSINE[dtype]):
        raise CheckFailed(f'{detail}; limits: loss {AMP_LOSS_RTOL:g}, '
                          f'cosine {AMP_GRAD_COSINE[dtype]:g}')
    return ran(name, detail, **numbers)


def check_amp_bf16(ctx: Context) -> Result:
    """bf16 autocast step against float32 (no scaler: bf16 has float32's
    exponent range)."""
    if ctx.device.type == 'cuda' and not torch.cuda.is_bf16_supported():
        return skipped('amp_bf16', 'this GPU has no bf16')
    from dpt_mm.utils import bf16_supported
    result = _amp_step(ctx, 'amp_bf16', torch.bfloat16, scaled=False)
    if not bf16_supported(ctx.device.type):
        result.detail += ' (bf16 emulated on this CPU)'
    return result


def check_amp_fp16(ctx: Context) -> Result:
    """fp16 autocast step with a GradScaler against float32 (CUDA)."""
    if ctx.device.type != 'cuda':
        return skipped('amp_fp16', 'fp16 autocast with a GradScaler is a '
                       'CUDA training path; no CUDA device here')
    return _amp_step(ctx, 'amp_fp16', torch.float16, scaled=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def _tail(log, lines: int = 3) -> str:
    log.seek(0)
    return ' '.join(log.read().strip().splitlines()[-lines:])


def check_ddp(ctx: Context) -> Result:
    """Two processes, one DDP step; the comparison runs in rank 0."""
    name = 'ddp'
    devices = torch.cuda.device_count() if ctx.device.type == 'cuda' else 0
    sync_bn = devices >= 2
    if sync_bn:
        setup = 'NCCL, 2 GPUs, SyncBN'
    else:
        setup = ('gloo on CPU with BN (torch\'s SyncBN runs on CUDA only'
                 + (', and NCCL needs 2 GPUs: found 1)' if devices == 1
                    else ')'))
    spec = dict(world=2, port=_free_port(), sync_bn=sync_bn,
                config=ctx.args.config, size=list(ctx.size),
                batch=ctx.batch, timeout=ctx.args.ddp_timeout)
    # One thread each: two ranks share the CPU.
    env = dict(os.environ, OMP_NUM_THREADS='1')
    logs = [tempfile.TemporaryFile(mode='w+') for _ in range(spec['world'])]
    procs = [subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), '--ddp-worker',
         json.dumps(dict(spec, rank=rank))], stdout=log,
        stderr=subprocess.STDOUT, text=True, env=env, cwd=str(REPO_ROOT))
        for rank, log in enumerate(logs)]
    try:
        # A rank that dies leaves the other waiting in a collective: stop
        # at the first failure instead of at the timeout.
        deadline = time.monotonic() + ctx.args.ddp_timeout
        while any(p.poll() is None for p in procs):
            bad = [r for r, p in enumerate(procs) if p.poll()]
            if bad:
                raise CheckFailed(f'rank {bad[0]} exited '
                                  f'{procs[bad[0]].returncode}: '
                                  + _tail(logs[bad[0]]))
            if time.monotonic() > deadline:
                raise CheckFailed(f'the ranks did not finish within '
                                  f'{ctx.args.ddp_timeout} s')
            time.sleep(0.2)
        bad = [r for r, p in enumerate(procs) if p.returncode]
        if bad:
            raise CheckFailed(f'rank {bad[0]} exited '
                              f'{procs[bad[0]].returncode}: '
                              + _tail(logs[bad[0]]))
        logs[0].seek(0)
        rank0_output = logs[0].read()
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        for log in logs:
            log.close()
    reply = [line for line in rank0_output.splitlines()
             if line.startswith(DDP_PREFIX)]
    if not reply:
        raise CheckFailed('rank 0 wrote no result')
    numbers = json.loads(reply[-1][len(DDP_PREFIX):])
    detail = (f"{setup}: gradients {numbers['grad_rel_err']:.1e} relative "
              'to one process, parameters after the step differ by '
              f"{numbers['rank_param_diff']:.1e} between ranks")
    if not (numbers['grad_rel_err'] <= RTOL
            and numbers['rank_param_diff'] == 0):
        raise CheckFailed(detail)
    return ran(name, detail, sync_bn=sync_bn, **numbers)


def ddp_worker(spec: Dict[str, Any]) -> None:
    """One rank of :func:`check_ddp`; rank 0 prints the comparison."""
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    rank, world = spec['rank'], spec['world']
    if spec['sync_bn']:
        device = torch.device('cuda', rank)
        torch.cuda.set_device(device)
    else:
        device = torch.device('cpu')
    dist.init_process_group('nccl' if spec['sync_bn'] else 'gloo',
                            init_method=f"tcp://127.0.0.1:{spec['port']}",
                            rank=rank, world_size=world,
                            timeout=timedelta(seconds=spec['timeout']))
    try:
        cfg = load_model_config(spec['config'], sync_bn=spec['sync_bn'])
        for head in HEADS:
            if cfg.get(head):
                # The one-process reference cannot draw each rank's masks.
                cfg[head]['dropout_ratio'] = 0.0
        ctx = Context(device, cfg, tuple(spec['size']), spec['batch'], None)
        model = build(ctx)
        reference = build(ctx, replace_syncbn(cfg))
        reference.load_state_dict(model.state_dict())
        inputs, samples = make_batch(ctx, batch=world * spec['batch'])
        halves = [slice(r * spec['batch'], (r + 1) * spec['batch'])
                  for r in range(world)]
        ddp = DistributedDataParallel(
            model, device_ids=[rank] if device.type == 'cuda' else None)
        mine = halves[rank]
        loss, _ = model.parse_losses(
            ddp(inputs[mine], samples[mine], mode='loss'))
        loss.backward()
        grad = flat_grads(model)
        # What DDP must equal: with SyncBN one BN over the whole batch;
        # with BN each half normalised alone, gradients averaged.
        if spec['sync_bn']:
            loss_of(reference, inputs, samples).backward()
        else:
            for half in halves:
                (loss_of(reference, inputs[half], samples[half])
                 / world).backward()
        grad_err = harness.rel_err(grad, flat_grads(reference))
        torch.optim.SGD(model.parameters(), lr=0.1).step()
        params = torch.cat([p.detach().flatten()
                            for p in model.parameters()])
        gathered = [torch.empty_like(params) for _ in range(world)]
        dist.all_gather(gathered, params)
        diff = max((g - gathered[0]).abs().max().item() for g in gathered)
        if rank == 0:
            print(DDP_PREFIX + json.dumps(dict(
                grad_rel_err=grad_err, rank_param_diff=diff,
                loss=loss.item())), flush=True)
    finally:
        dist.destroy_process_group()


def check_compile_graph_breaks(ctx: Context) -> Result:
    """How many graphs ``torch.compile`` would make of the inference
    forward, and why it breaks."""
    model, x, _ = _eval_forward(ctx)
    torch._dynamo.reset()
    with torch.no_grad():
        explained = torch._dynamo.explain(model)(x)
    reasons: List[str] = []
    for brk in explained.break_reasons:
        first = str(brk.reason).strip().splitlines()[0][:120]
        if first not in reasons:
            reasons.append(first)
    detail = (f'{explained.graph_count} graph(s), '
              f'{explained.graph_break_count} break(s)')
    if reasons:
        detail += '; first reasons: ' + ' | '.join(reasons[:3])
    return ran('compile_graph_breaks', detail,
               graph_count=explained.graph_count,
               graph_break_count=explained.graph_break_count,
               break_reasons=reasons)


def check_compile_run(ctx: Context) -> Result:
    """``torch.compile`` (inductor) of the inference forward, against
    eager."""
    name = 'compile_run'
    if ctx.device.type != 'cuda' and not ctx.args.compile_run:
        return skipped(name, 'slow to compile on CPU (inductor and a C++ '
                       'compiler); --compile-run runs it here')
    model, x, ref = _eval_forward(ctx)
    torch._dynamo.reset()
    compiled = torch.compile(model)
    start = time.perf_counter()
    with torch.no_grad():
        out = compiled(x)
    seconds = time.perf_counter() - start
    err = harness.rel_err(out, ref)
    if not err <= RTOL:
        raise CheckFailed(f'compiled output differs from eager by {err:.1e}'
                          f' relative (limit {RTOL:g})')
    return ran(name, f'compiled in {seconds:.0f} s; {err:.1e} relative to '
               'eager', compile_s=seconds, rel_err=err)


def check_export(ctx: Context) -> Result:
    """Strict ``torch.export`` of the inference forward; the exported
    program run against eager."""
    model, x, ref = _eval_forward(ctx)
    program = torch.export.export(model, (x, ), strict=True)
    with torch.no_grad():
        out = program.module()(x)
    err = harness.rel_err(out, ref)
    if not err <= RTOL:
        raise CheckFailed(f'exported program differs from eager by '
                          f'{err:.1e} relative (limit {RTOL:g})')
    nodes = len(program.graph.nodes)
    return ran('export', f'strict export, {nodes} graph nodes; {err:.1e} '
               'relative to eager', rel_err=err, graph_nodes=nodes)


def check_step_vs_mmseg(ctx: Context) -> Result:
    """Training step time and peak memory, dpt_mm's DPT against mmseg's
    (the benchmark's training pair, in one process, interleaved)."""
    full = ctx.device.type == 'cuda' or ctx.args.full
    size, batch = (512, 2) if full else (64, 2)
    models, optimizers, steps = {}, {}, {}
    inputs, samples = seg_batch(batch, size, ctx.device)
    accel = None
    for case in ('ours', 'theirs'):
        model = build(ctx, train_model_config(case, tiny=not full))
        if case == 'ours':
            accel = harness.apply_accel(model, 'auto')
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01,
                                    momentum=0.9, weight_decay=5e-4)

        def step(model=model, optimizer=optimizer) -> None:
            loss_of(model, inputs, samples).backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

        models[case], optimizers[case], steps[case] = model, optimizer, step
    times = harness.time_interleaved(
        {case: harness.timed(step, ctx.device)
         for case, step in steps.items()},
        ctx.args.step_warmup, ctx.args.step_repeats)
    stats = harness.summarise(times, base='theirs')
    peaks = {}
    for case, step in steps.items():
        held = harness.held_bytes(models[case], optimizers[case],
                                  [inputs, *(s.gt_sem_seg.data
                                             for s in samples)], ctx.device)
        peaks[case] = (held + harness.step_peak_bytes(step, ctx.device)) \
            / 2**20
    memory_ratio = peaks['ours'] / peaks['theirs']
    what = ('ViT-B, 512², batch 2' if full else
            'tiny pair (embed 32), 64², batch 2; --full for ViT-B')
    measure = ('torch.cuda.max_memory_allocated' if ctx.device.type == 'cuda'
               else 'live tensor bytes (profiler)')
    detail = (f"{what}: step {stats['ours']['median_ms']:.0f} / "
              f"{stats['theirs']['median_ms']:.0f} ms, ours/mmseg "
              f"{stats['ours']['ratio_to_ref']:.3f}; peak "
              f"{peaks['ours']:.0f} / {peaks['theirs']:.0f} MiB ({measure}),"
              f' ours/mmseg {memory_ratio:.3f}')
    return ran('step_vs_mmseg', detail, full=full, size=size, batch=batch,
               accel=accel, step_ms={c: s['median_ms']
                                     for c, s in stats.items()},
               time_ratio=stats['ours']['ratio_to_ref'],
               peak_mib=peaks, memory_ratio=memory_ratio)


CHECKS: Dict[str, Callable[[Context], Result]] = {
    'dropout_replay': check_dropout_replay,
    'amp_bf16': check_amp_bf16,
    'amp_fp16': check_amp_fp16,
    'ddp': check_ddp,
    'compile_graph_breaks': check_compile_graph_breaks,
    'compile_run': check_compile_run,
    'export': check_export,
    'step_vs_mmseg': check_step_vs_mmseg,
}


# --------------------------------------------------------------------------
# running and reporting


def run_check(name: str, ctx: Context) -> Result:
    """One check; an exception becomes a ``failed`` row, the rest go on."""
    start = time.perf_counter()
    try:
        result = CHECKS[name](ctx)
    except CheckFailed as err:
        result = Result(name, 'failed', str(err))
    except Exception as err:  # noqa: BLE001 (a row, not a crash)
        result = Result(name, 'failed', _short(err))
    result.numbers['seconds'] = time.perf_counter() - start
    return result


def format_summary(results: Sequence[Result], meta: Dict[str, Any]) -> str:
    """The summary table (Markdown) under a line naming the machine."""
    gpu = f" ({meta['gpu']})" if meta.get('gpu') else ''
    lines = [f"gpu_check on {meta['device']}{gpu}, CPU {meta['cpu']} "
             f"(flags: {' '.join(meta['cpu_flags']) or 'none of note'}), "
             f"torch {meta['torch']}", '',
             '| check | status | detail |', '|---|---|---|']
    for r in results:
        lines.append(f'| {r.name} | {r.status} | {r.detail} |')
    counts = {s: sum(r.status == s for r in results)
              for s in ('ran', 'skipped', 'failed')}
    lines += ['', ', '.join(f'{n} {s}' for s, n in counts.items())]
    return '\n'.join(lines)


def _csv(text: str) -> List[str]:
    return [v for v in text.split(',') if v]


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """The options; ``--checks`` picks a subset."""
    parser = argparse.ArgumentParser(
        description='GPU checks of dpt_mm training (CPU: what it can)',
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('--config', default=DEFAULT_CONFIG,
                        help='model of the correctness checks')
    parser.add_argument('--checks', type=_csv, default=list(CHECKS),
                        help=', '.join(CHECKS))
    parser.add_argument('--device', default='auto', help='cpu, cuda or auto')
    parser.add_argument('--batch', type=int, default=2,
                        help='images per step (per rank in ddp)')
    parser.add_argument('--compile-run', action='store_true',
                        help='run torch.compile on CPU too')
    parser.add_argument('--full', action='store_true',
                        help='step_vs_mmseg with ViT-B at 512² on CPU too')
    parser.add_argument('--step-warmup', type=int, default=1)
    parser.add_argument('--step-repeats', type=int, default=3)
    parser.add_argument('--ddp-timeout', type=int, default=600,
                        help='seconds for the two ranks')
    parser.add_argument('--json', dest='json_out', default=None,
                        help='write the rows and the machine here')
    parser.add_argument('--ddp-worker', default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.ddp_worker is not None:
        return args
    unknown = [c for c in args.checks if c not in CHECKS]
    if unknown:
        parser.error(f'unknown checks {unknown}; choose from '
                     f'{", ".join(CHECKS)}')
    path = Path(args.config)
    if not path.is_file() and (REPO_ROOT / path).is_file():
        path = REPO_ROOT / path
    if not path.is_file():
        parser.error(f'--config {args.config}: no such file')
    args.config = str(path)
    if args.batch < 2:
        parser.error('--batch must be >= 2 (BatchNorm in training)')
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the checks, print the summary, write ``--json``.

    Returns:
        int: 1 if any check failed, else 0.
    """
    args = parse_args(argv)
    # float32 comparisons in float32, not TF32 (no effect on CPU).
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    if args.ddp_worker is not None:
        ddp_worker(json.loads(args.ddp_worker))
        return 0
    device = torch.device(('cuda' if torch.cuda.is_available() else 'cpu')
                          if args.device == 'auto' else args.device)
    ctx = Context(device, load_model_config(args.config),
                  config_input_size(args.config), args.batch, args)
    meta = harness.machine_info(device)
    results = []
    for name in args.checks:
        print(f'{name} ...', file=sys.stderr, flush=True)
        result = run_check(name, ctx)
        print(f'  {result.status}: {result.detail}', file=sys.stderr,
              flush=True)
        results.append(result)
    print(format_summary(results, meta))
    if args.json_out:
        Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
        with open(args.json_out, 'w') as f:
            json.dump(dict(meta=meta, config=args.config,
                           results=[asdict(r) for r in results]), f,
                      indent=1, default=str)
    return int(any(r.status == 'failed' for r in results))


if __name__ == '__main__':
    sys.exit(main())

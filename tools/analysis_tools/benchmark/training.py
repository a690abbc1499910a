"""Training: one SGD step of dpt_mm's DPT against mmseg's own DPT.

Every case lives in its own worker process, so its peak memory (peak RSS
minus the RSS after imports on CPU, ``torch.cuda.max_memory_allocated`` on
GPU) is its own, while the parent alternates their steps:

* ``ours``: dpt_mm's DPT ViT-B segmentation config (BN, auxiliary FCN head)
  with the default accelerator setting (``--accel``).
* ``theirs``: mmseg's DPT ViT-B config (``VisionTransformer`` + ``DPTHead``);
  the reference of every ratio.
* ``ours_cp``: ``ours`` with ``with_cp=True`` in backbone, neck and decode
  head.
* ``ours_noaux``: ``ours`` without the auxiliary head (like mmseg's config).
* ``ours_baseline`` (``--baseline REV``): ``--baseline-case`` with dpt_mm
  and its config file as of REV.

The step runs in mmengine's ``OptimWrapper.update_params`` order: forward,
loss, backward, step, ``zero_grad(set_to_none=True)``; same random data
and seed in every case.
"""
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Tuple, Union

import torch

from . import harness
from .harness import REPO_ROOT, median

__all__ = ['TRAIN_CASES', 'TRAIN_WARMUP', 'BASELINE_CASE', 'TRAIN_LABELS',
           'replace_syncbn', 'seg_batch', 'train_model_config',
           'train_worker', 'bench_training']

TRAIN_CASES = ('ours', 'theirs', 'ours_cp', 'ours_noaux')
BASELINE_CASE = 'ours_baseline'  # added by --baseline REV
TRAIN_LABELS = {
    'ours': 'dpt_mm DPT ViT-B seg (BN, aux FCN head)',
    'theirs': "mmseg's DPT ViT-B (VisionTransformer + DPTHead, BN)",
    'ours_cp': 'dpt_mm, with_cp=True in backbone, neck and decode head',
    'ours_noaux': 'dpt_mm without the aux head (like mmseg)',
}
#: Untimed rounds before the timed ones: mmseg's step at 512², batch 2,
#: takes about this many steps to settle (its page faults per step fall as
#: glibc's malloc adapts; see docs/benchmark.md), dpt_mm's about two.
#: Fewer warm-up rounds time mmseg before its steady state, which flatters
#: dpt_mm.
TRAIN_WARMUP = 8
OURS_SEG_CONFIG = 'configs/_base_/models/dpt_vit-b16_seg.py'
MMSEG_DPT_CONFIG = '.mim/configs/dpt/dpt_vit-b16_8xb2-160k_ade20k-512x512.py'
NUM_CLASSES = 150


def replace_syncbn(cfg: Any) -> Any:
    """``cfg`` with every ``SyncBN`` norm type as ``BN`` (one process)."""
    if isinstance(cfg, dict):
        return {k: ('BN' if k == 'type' and v == 'SyncBN' else
                    replace_syncbn(v)) for k, v in cfg.items()}
    if isinstance(cfg, (list, tuple)):
        return type(cfg)(replace_syncbn(v) for v in cfg)
    return cfg


def train_model_config(case: str, tiny: bool,
                       root: Path = REPO_ROOT) -> Dict[str, Any]:
    """Model config of a training case (plain dict, BN instead of SyncBN).

    Args:
        case (str): One of :data:`TRAIN_CASES`.
        tiny (bool): The smoke-test model (embed 32, 64×64).
        root (Path): Repository whose config file dpt_mm cases read (a
            baseline revision reads its own).

    Returns:
        dict: The ``model`` config, ready for ``MODELS.build``.
    """
    from mmengine.config import Config

    if case == 'theirs':
        import mmseg
        cfg = Config.fromfile(
            str(Path(mmseg.__file__).parent / MMSEG_DPT_CONFIG)).model
        cfg = replace_syncbn(cfg.to_dict())
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
    cfg = replace_syncbn(cfg.to_dict())
    if tiny:
        cfg['backbone'].update(img_size=64, embed_dims=32, num_layers=2,
                               num_heads=2, out_indices=(0, 1))
        cfg['neck'].update(in_channels=32, reassemble_channels=(16, 32),
                           resample_factors=(4, 2), channels=32)
        cfg['decode_head'].update(in_channels=32, channels=32)
        cfg['auxiliary_head'].update(in_channels=32, channels=32)
    if case == 'ours_cp':
        # mmseg's FCNHead (the auxiliary head) has no with_cp.
        for part in ('backbone', 'neck', 'decode_head'):
            cfg[part]['with_cp'] = True
    if case == 'ours_noaux':
        cfg['auxiliary_head'] = None
    return cfg


def seg_batch(batch: int, size: Union[int, Tuple[int, int]],
              device: torch.device, num_classes: int = NUM_CLASSES,
              seed: int = 0) -> Tuple[torch.Tensor, list]:
    """Random images and segmentation labels (a fixed seed: every case and
    process gets the same batch).

    Args:
        batch (int): Images.
        size (int | tuple[int, int]): Side, or (H, W).
        device (torch.device): Where the tensors go.
        num_classes (int): Labels are drawn from [0, num_classes).
        seed (int): Generator seed.

    Returns:
        tuple: ``inputs`` (B×3×H×W) and a list of ``SegDataSample`` with
        ``gt_sem_seg``.
    """
    from mmengine.structures import PixelData

    from mmseg.structures import SegDataSample

    height, width = (size, size) if isinstance(size, int) else size
    gen = torch.Generator().manual_seed(seed)
    inputs = torch.randn(batch, 3, height, width, generator=gen).to(device)
    samples = []
    for _ in range(batch):
        sample = SegDataSample()
        sample.gt_sem_seg = PixelData(data=torch.randint(
            0, num_classes, (1, height, width), generator=gen).to(device))
        sample.set_metainfo(dict(img_shape=(height, width),
                                 ori_shape=(height, width),
                                 pad_shape=(height, width)))
        samples.append(sample)
    return inputs, samples


def train_worker(spec: Dict[str, Any]) -> None:
    """One training case in its own process, driven over stdin/stdout.

    Commands (one per line): ``step`` (one timed step), ``memory`` (one
    more step, profiled for its live tensor bytes), ``flops`` (one more
    step, its FLOPs counted), ``profile``, ``stats`` (peaks as of the last
    ``step``), ``quit``.
    """
    root = Path(spec.get('code_root') or REPO_ROOT)
    # A baseline worker imports dpt_mm from the extracted old revision.
    harness.import_dpt_mm_from(root)
    from mmengine.registry import init_default_scope

    from mmseg.registry import MODELS

    init_default_scope('mmseg')
    device = torch.device(spec['device'])
    torch.set_num_threads(spec['threads'])
    if not harness.loaded_allocator(spec.get('allocator_lib')):
        raise RuntimeError(f"allocator {spec['allocator_lib']} was preloaded "
                           'but is not mapped into the worker')
    base_rss = harness.peak_rss_mb()
    inputs, samples = seg_batch(spec['batch'], spec['size'], device)

    torch.manual_seed(0)
    case = spec.get('model_case', spec['case'])
    model = MODELS.build(train_model_config(case, spec['tiny'], root))
    model.init_weights()
    model.to(device).train()
    accel = (harness.apply_accel(model, spec['accel'])
             if case != 'theirs' else None)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9,
                                weight_decay=5e-4)
    num_params = sum(p.numel() for p in model.parameters())
    model_rss = harness.rss_mb()
    base_cuda = 0
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

    # Peaks as of the last timed step: the profiled steps of `memory` and
    # `profile` hold the profiler's event buffers too (measured: +95 MiB of
    # peak RSS for the checkpointed ViT-B step, +26 MiB for the plain one),
    # which is not what training uses.
    peaks = dict(rss=harness.peak_rss_mb(), cuda=0)

    def timed_step() -> Dict[str, Any]:
        harness.sync(device)
        start = time.perf_counter()
        loss = step()
        harness.sync(device)
        seconds = time.perf_counter() - start
        peaks['rss'] = harness.peak_rss_mb()
        if device.type == 'cuda':
            peaks['cuda'] = torch.cuda.max_memory_allocated(device)
        return dict(time_s=seconds, loss=loss)

    def memory() -> Dict[str, Any]:
        held = harness.held_bytes(model, optimizer,
                                  [inputs, *(s.gt_sem_seg.data
                                             for s in samples)], device)
        peak = held + harness.step_peak_bytes(step, device)
        return dict(held_mb=held / 2**20, alloc_peak_mb=peak / 2**20)

    def stats() -> Dict[str, Any]:
        out = dict(base_rss_mb=base_rss, model_rss_mb=model_rss,
                   peak_rss_mb=peaks['rss'],
                   train_peak_mb=peaks['rss'] - base_rss)
        if device.type == 'cuda':
            # (`memory` resets CUDA's peak: the timed steps' is kept.)
            out['cuda_peak_mb'] = (peaks['cuda'] - base_cuda) / 2**20
            out['train_peak_mb'] = peaks['cuda'] / 2**20
        return out

    def flops() -> Dict[str, Any]:
        # One more step, counted: forward, loss and backward.
        counted = harness.count_flops(step, grad=True)
        return dict(gflop=counted['total'] / 1e9)

    harness.send(dict(ready=True, num_params=num_params, accel=accel))
    harness.serve(dict(
        step=timed_step, memory=memory, stats=stats, flops=flops,
        profile=lambda: dict(top=harness.profile_top_ops(
            step, device, spec['top']))))


def bench_training(args, device: torch.device,
                   log: Callable[[str], None]) -> Dict[str, Any]:
    """Interleaved training steps of every case, each in its own process.

    Args:
        args (argparse.Namespace): The benchmark's options.
        device (torch.device): Where every worker trains.
        log (callable): Progress lines.

    Returns:
        dict: Per case its times (ratios to ``theirs``), losses, peak RSS
        and peak allocated MiB; the before/after and checkpointing ratios.
    """
    spec = dict(kind='train', batch=args.train_batch, size=args.train_size,
                tiny=args.tiny, device=str(device),
                threads=torch.get_num_threads(), top=args.profile_top,
                allocator_lib=args.allocator_lib, accel=args.accel)
    cases = [c for c in TRAIN_CASES if c in args.train_cases]
    specs = {case: dict(spec, case=case) for case in cases}
    labels = dict(TRAIN_LABELS)
    result: Dict[str, Any] = dict(batch=args.train_batch,
                                  size=args.train_size, optimizer='SGD',
                                  allocator=args.allocator,
                                  allocator_lib=args.allocator_lib, cases={})
    if args.baseline:
        # Before/after in one run: the --baseline-case with dpt_mm (and
        # its config file) as of another revision, in its own worker.
        cases.insert(cases.index(args.baseline_case) + 1, BASELINE_CASE)
        specs[BASELINE_CASE] = dict(spec, case=BASELINE_CASE,
                                    model_case=args.baseline_case,
                                    code_root=args.baseline_root)
        labels[BASELINE_CASE] = (f'dpt_mm at {args.baseline} '
                                 f'({args.baseline_commit[:10]}), same case '
                                 f'as {args.baseline_case}')
        result['baseline'] = dict(rev=args.baseline,
                                  commit=args.baseline_commit,
                                  case=args.baseline_case)
    workers = {case: harness.Worker(case, specs[case], args.allocator_lib)
               for case in cases}
    try:
        ready = {case: w.recv() for case, w in workers.items()}
        log(f'  training: {", ".join(cases)}; batch {args.train_batch}, '
            f'{args.train_size}×{args.train_size}')
        losses: Dict[str, List[float]] = {case: [] for case in cases}

        def timer(case: str) -> Callable[[], float]:
            def run() -> float:
                reply = workers[case].call('step')
                losses[case].append(reply['loss'])
                return reply['time_s']
            return run

        times = harness.time_interleaved(
            {case: timer(case) for case in cases}, args.train_warmup,
            args.train_repeats, log)
        ref = 'theirs' if 'theirs' in cases else cases[0]
        stats = harness.summarise(times, base=ref)
        for case, worker in workers.items():
            # One more step, profiled for its live tensor bytes.
            alloc = worker.call('memory')
            mem = dict(worker.call('stats'), **alloc)
            gflop = worker.call('flops')['gflop']
            mem.update(gflop=gflop,
                       gflops=gflop / (stats[case]['median_ms'] / 1e3))
            result['cases'][case] = dict(
                label=labels[case], num_params=ready[case]['num_params'],
                accel=ready[case].get('accel'), losses=losses[case],
                **stats[case], **mem)
        if BASELINE_CASE in cases:
            result['baseline_time_ratio'] = median(
                [a / b for a, b in zip(times[args.baseline_case],
                                       times[BASELINE_CASE])])
        if 'ours' in cases and 'ours_cp' in cases:
            result['cp_time_ratio'] = median(
                [b / a for a, b in zip(times['ours'], times['ours_cp'])])
        if args.profile:
            result['profile'] = {
                case: worker.call('profile')['top']
                for case, worker in workers.items()
                if case in ('ours', 'theirs')
            }
    finally:
        for worker in workers.values():
            worker.close()
    return result

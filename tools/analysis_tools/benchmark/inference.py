"""Inference: Transformers' DPT against dpt_mm with the same weights.

Cases, interleaved within every round (see :func:`harness.time_interleaved`):

* ``hf``: Transformers ``DPTForDepthEstimation``, random init from
  ``DPTConfig``, eval, ``no_grad``; the reference of every ratio.
* ``ours``: dpt_mm's model converted from it (:mod:`dpt_mm.converters`),
  with the default accelerator setting (``--accel``, default ``'auto'``:
  the measured per-machine decision of :mod:`dpt_mm.accel`).
* ``accel``: the same with the accelerator forced on (``'on'``).
* ``baseline`` (``--baseline REV``): dpt_mm as of REV, same weights and
  input, in its own process (its own imports), timed there.
* ``compile`` (``--compile``) and ``bf16`` (native bf16 only, ``--no-bf16``
  to skip): ``torch.compile`` of ``ours``, and ``ours`` under bf16 autocast
  (lossy: its error is reported, no parity claim).
* ``matmul`` / ``matmul_onednn``: large float32 GEMMs through MKL
  (``torch.mm``) and oneDNN (a 1×1 convolution), the practical ceilings
  against which each case's FLOP/s is set.

Every float32 case must agree with Transformers within
:data:`harness.PARITY_RTOL` or the run stops: timings of different
computations would mean nothing.
"""
import copy
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch

from . import harness
from .harness import PARITY_RTOL, median, rel_err

__all__ = ['HF_VARIANTS', 'MODEL_NAMES', 'build_inference_pair',
           'bench_inference', 'infer_worker']

MATMUL_SIZE = 2048
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
    # Depth Anything V2-L (depth-anything/Depth-Anything-V2-Large-hf): a
    # DepthAnythingConfig, run with --size 518.
    'da2l518': dict(
        model_type='depth_anything',
        backbone_config=dict(
            model_type='dinov2', hidden_size=1024, num_hidden_layers=24,
            num_attention_heads=16, image_size=518, patch_size=14,
            reshape_hidden_states=False, out_indices=[5, 12, 18, 24]),
        reassemble_hidden_size=1024, neck_hidden_sizes=[256, 512, 1024, 1024],
        fusion_hidden_size=256),
    # --tiny: embed 32, 2 layers, two neck levels (one per layer), 64×64.
    'tiny': dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                 intermediate_size=128, image_size=64,
                 backbone_out_indices=[0, 1], neck_hidden_sizes=[16, 32],
                 reassemble_factors=[4, 2], fusion_hidden_size=32,
                 initializer_range=0.2),
}
MODEL_NAMES = {'vitb': 'DPT ViT-B/16', 'vitl': 'DPT ViT-L/16',
               'hybrid': 'DPT-Hybrid', 'tiny': 'tiny DPT',
               'beitl512': 'DPT BEiT-L/16 512', 'swin2l384': 'DPT SwinV2-L 384',
               'da2l518': 'Depth Anything V2-L 518'}


def build_inference_pair(variant: str, device: torch.device
                         ) -> Tuple[torch.nn.Module, torch.nn.Module]:
    """Random-init Transformers DPT and the dpt_mm twin with its weights.

    Both processes of a ``--baseline`` run build the same weights: the
    seed is fixed before Transformers initialises.

    Args:
        variant (str): A key of :data:`HF_VARIANTS`.
        device (torch.device): Where both models go.

    Returns:
        tuple: ``(hf_model, mm_model)``, both in eval mode.
    """
    from mmengine.registry import init_default_scope
    from transformers import (DepthAnythingConfig,
                              DepthAnythingForDepthEstimation, DPTConfig,
                              DPTForDepthEstimation)

    import dpt_mm  # noqa: F401
    from dpt_mm.converters import (convert_hf_state_dict,
                                   hf_config_to_mm_config, load_converted)
    from mmseg.registry import MODELS

    init_default_scope('mmseg')
    torch.manual_seed(0)
    kwargs = dict(HF_VARIANTS[variant])
    if kwargs.pop('model_type', 'dpt') == 'depth_anything':
        config_cls, model_cls = (DepthAnythingConfig,
                                 DepthAnythingForDepthEstimation)
    else:
        config_cls, model_cls = DPTConfig, DPTForDepthEstimation
    hf_config = config_cls(**kwargs)
    hf_model = model_cls(hf_config).eval().to(device)
    mm_model = MODELS.build(
        hf_config_to_mm_config(hf_config, task='depth')).eval()
    load_converted(mm_model,
                   convert_hf_state_dict(hf_model.state_dict(), hf_config),
                   context=f'{variant} converted from Transformers')
    return hf_model, mm_model.to(device)


def _input(batch: int, size: int, device: torch.device) -> torch.Tensor:
    gen = torch.Generator().manual_seed(1)
    return torch.randn(batch, 3, size, size, generator=gen).to(device)


def _check_parity(what: str, err: float) -> None:
    if not err <= PARITY_RTOL:
        raise AssertionError(
            f'PARITY FAILURE: {what} differs by {err:.3e} relative (limit '
            f'{PARITY_RTOL:g}); the timings would compare different '
            'computations')


def _matmul_fn(device: torch.device, size: int, calls: int = 4):
    """A unit of large float32 ``torch.mm`` calls (MKL on CPU) and its
    FLOP count."""
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)

    def run():
        for _ in range(calls):
            torch.mm(a, b)

    return run, 2.0 * size**3 * calls


def _onednn_gemm_fn(size: int, calls: int = 4):
    """The same GEMM through oneDNN (a 1×1 convolution, CPU): on AMD CPUs
    MKL's ``torch.mm`` is far from the hardware's peak, oneDNN is not."""
    import torch.nn.functional as F
    a = torch.randn(size, size)
    w = torch.randn(size, size, 1, 1)
    image = a.view(1, size, 1, size).permute(0, 3, 1, 2)

    def run():
        for _ in range(calls):
            F.conv2d(image, w)

    return run, 2.0 * size**3 * calls


def _flop_rates(stats: Dict[str, Any], flops: Dict[str, Any],
                hf_flops: Dict[str, Any], batch: int, mm_flops: float,
                onednn_flops: Optional[float]) -> Dict[str, Any]:
    """FLOPs per image and each case's FLOP/s against the GEMM ceilings
    timed in the same rounds (fractions per round, then the median).

    Args:
        stats (dict): :func:`harness.summarise` of the round times.
        flops (dict): :func:`harness.count_flops` of dpt_mm's forward.
        hf_flops (dict): The same for Transformers'.
        batch (int): Images per forward.
        mm_flops (float): FLOPs of one ``matmul`` unit.
        onednn_flops (float, optional): FLOPs of one ``matmul_onednn`` unit.

    Returns:
        dict: ``flops_per_image``, ``flops_by_op``, ``hf_flops_per_image``,
        the ceilings and ``achieved`` per case.
    """
    def per_s(flop_count: float, case: str) -> List[float]:
        return [flop_count / (t / 1e3) for t in stats[case]['samples_ms']]

    out: Dict[str, Any] = dict(
        flops_per_image=flops['total'] / batch,
        flops_by_op={k: v / batch for k, v in flops['by_op'].items()},
        hf_flops_per_image=hf_flops['total'] / batch)
    ceiling = best = per_s(mm_flops, 'matmul')
    out['matmul_ceiling_flops'] = median(ceiling)
    if onednn_flops is not None:
        onednn = per_s(onednn_flops, 'matmul_onednn')
        out['onednn_ceiling_flops'] = median(onednn)
        best = [max(a, b) for a, b in zip(ceiling, onednn)]
    out['best_ceiling_flops'] = median(best)
    out['achieved'] = {}
    for name in stats:
        if name.startswith('matmul') or name == 'baseline':
            continue
        # Each model's own count: dpt_mm computes the same function with
        # fewer FLOPs (fusion out_conv before the upsample, split readout).
        samples = per_s(hf_flops['total'] if name == 'hf' else
                        flops['total'], name)
        out['achieved'][name] = dict(
            flops_per_s=median(samples),
            ceiling_fraction=median([a / c
                                     for a, c in zip(samples, ceiling)]),
            best_ceiling_fraction=median([a / c
                                          for a, c in zip(samples, best)]))
    return out


def bench_inference(variant: str, batch: int, size: int, args,
                    device: torch.device,
                    log: Callable[[str], None]) -> Dict[str, Any]:
    """Time every inference case of one model, batch and size.

    Args:
        variant (str): A key of :data:`HF_VARIANTS`.
        batch (int): Images per forward.
        size (int): Square input side.
        args (argparse.Namespace): The benchmark's options.
        device (torch.device): Where everything runs.
        log (callable): Progress lines.

    Returns:
        dict: The row of the report: times per case (see
        :func:`harness.summarise`, ratios to ``hf``), parity errors,
        FLOPs per image and achieved FLOP/s, skipped cases with reasons.
    """
    from .harness import apply_accel, timed

    hf_model, mm_model = build_inference_pair(variant, device)
    x = _input(batch, size, device)

    def run_hf():
        return hf_model(pixel_values=x).predicted_depth

    def run_ours(model=mm_model):
        return model(x, mode='tensor')[:, 0]

    result: Dict[str, Any] = dict(model=variant, name=MODEL_NAMES[variant],
                                  batch=batch, size=size, skipped={})
    forced = copy.deepcopy(mm_model)  # the plain model, for accel 'on'
    result['accel'] = apply_accel(mm_model, args.accel)
    with torch.no_grad():
        ref = run_hf()
        ours = run_ours()
    result['parity_rel_err'] = rel_err(ours, ref)
    _check_parity(f'dpt_mm {variant} (accel {args.accel!r}) against '
                  'Transformers', result['parity_rel_err'])
    fns: Dict[str, Callable[[], Any]] = dict(hf=run_hf, ours=run_ours)

    if result['accel']['available']:
        result['accel_on'] = apply_accel(forced, 'on')
        with torch.no_grad():
            result['accel_rel_err'] = rel_err(run_ours(forced), ref)
        _check_parity(f"dpt_mm {variant} (accel 'on') against Transformers",
                      result['accel_rel_err'])
        fns['accel'] = lambda: run_ours(forced)
    else:
        result['skipped']['accel'] = result['accel']['reason']
        del forced

    if args.compile:
        compiled = torch.compile(copy.deepcopy(mm_model))
        start = time.perf_counter()
        with torch.no_grad():
            out = run_ours(compiled)
        result['compile_s'] = time.perf_counter() - start
        result['compile_rel_err'] = rel_err(out, ref)
        _check_parity(f'compiled dpt_mm {variant} against Transformers',
                      result['compile_rel_err'])
        fns['compile'] = lambda: run_ours(compiled)

    if args.bf16:
        from dpt_mm.utils import bf16_supported
        if bf16_supported(device.type):

            def run_bf16():
                with torch.autocast(device.type, dtype=torch.bfloat16):
                    return run_ours()

            with torch.no_grad():
                result['bf16_rel_err'] = rel_err(run_bf16(), ref)
            fns['bf16'] = run_bf16
        else:
            result['skipped']['bf16'] = 'no native bf16 on this device'

    gemm_size = 256 if variant == 'tiny' else MATMUL_SIZE
    fns['matmul'], mm_flops = _matmul_fn(device, gemm_size)
    onednn_flops = None
    if device.type == 'cpu' and torch.backends.mkldnn.is_available():
        fns['matmul_onednn'], onednn_flops = _onednn_gemm_fn(gemm_size)

    timers = {name: timed(fn, device) for name, fn in fns.items()}
    baseline = None
    if args.baseline:
        baseline = harness.Worker('baseline inference', dict(
            kind='infer', variant=variant, batch=batch, size=size,
            device=str(device), threads=torch.get_num_threads(),
            accel=args.accel, code_root=args.baseline_root))
    try:
        if baseline is not None:
            ready = baseline.recv()
            result['baseline'] = dict(rev=args.baseline,
                                      commit=args.baseline_commit, **ready)
            timers['baseline'] = baseline.timer()
        log(f'  {MODEL_NAMES[variant]}, batch {batch}, {size}×{size}: '
            f"parity {result['parity_rel_err']:.1e}; cases "
            f"{', '.join(timers)}")
        with torch.no_grad():
            times = harness.time_interleaved(timers, args.warmup,
                                             args.repeats, log)
    finally:
        if baseline is not None:
            baseline.close()
    stats = harness.summarise(times, base='hf')
    result['times'] = stats
    if 'baseline' in times:
        # After/before per round, as the other ratios.
        result['after_before'] = {
            case: median([a / b for a, b in zip(times[case],
                                                times['baseline'])])
            for case in ('ours', 'accel') if case in times}

    result.update(_flop_rates(stats, harness.count_flops(run_ours),
                              harness.count_flops(run_hf), batch, mm_flops,
                              onednn_flops))

    if args.profile and batch == min(args.batch_sizes):
        with torch.no_grad():
            result['profile'] = {
                name: harness.profile_top_ops(fns[name], device,
                                              args.profile_top)
                for name in ('hf', 'ours', 'accel') if name in fns
            }
    return result


def infer_worker(spec: Dict[str, Any]) -> None:
    """The ``baseline`` inference case in its own process: dpt_mm from
    ``spec['code_root']``, the same weights and input as the parent's.

    Replies ``ready`` (with its parity error against Transformers and its
    accelerator setting), then one ``time_s`` per ``step``.
    """
    harness.import_dpt_mm_from(Path(spec['code_root']))
    device = torch.device(spec['device'])
    torch.set_num_threads(spec['threads'])
    hf_model, mm_model = build_inference_pair(spec['variant'], device)
    accel = harness.apply_accel(mm_model, spec['accel'])
    x = _input(spec['batch'], spec['size'], device)
    with torch.no_grad():
        err = rel_err(mm_model(x, mode='tensor')[:, 0],
                      hf_model(pixel_values=x).predicted_depth)
    _check_parity(f"dpt_mm at {spec['code_root']} against Transformers", err)
    del hf_model
    harness.release_memory()

    def step() -> Dict[str, Any]:
        with torch.no_grad():
            seconds = harness.timed(lambda: mm_model(x, mode='tensor'),
                                    device)()
        return dict(time_s=seconds)

    harness.send(dict(ready=True, parity_rel_err=err, accel=accel))
    harness.serve(dict(step=step))

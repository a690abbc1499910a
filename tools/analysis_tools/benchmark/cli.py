"""Command line of the benchmark: options, the run, the report."""
import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

import torch

from . import harness
from .harness import ACCEL_MODES, ALLOCATORS
from .inference import HF_VARIANTS, bench_inference, infer_worker
from .report import format_profiles, format_report
from .training import (TRAIN_CASES, TRAIN_WARMUP, bench_training,
                       train_worker)

__all__ = ['parse_args', 'main']


def _csv(kind):
    return lambda text: [kind(v) for v in text.split(',') if v]


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """The benchmark's options (``--tiny`` shrinks every default)."""
    parser = argparse.ArgumentParser(
        prog='benchmark.py',
        description='dpt_mm vs Transformers (inference) and mmseg '
        '(training), interleaved; ratios are medians of per-repeat ratios',
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
    parser.add_argument('--accel', default='auto', choices=ACCEL_MODES,
                        help="dpt_mm.accel setting of the 'ours' inference "
                        "case and of our training cases (the 'accel' "
                        "inference case is always 'on')")
    parser.add_argument('--train-size', type=int, default=512)
    parser.add_argument('--train-batch', type=int, default=2)
    parser.add_argument('--train-repeats', type=int, default=3,
                        help='timed training steps per case')
    parser.add_argument('--train-warmup', type=int, default=None,
                        help=f'untimed training rounds; default '
                        f'{TRAIN_WARMUP} (--warmup with --tiny): mmseg\'s '
                        'step takes that long to settle')
    parser.add_argument('--train-cases', type=_csv(str),
                        default=list(TRAIN_CASES), help=', '.join(TRAIN_CASES))
    parser.add_argument('--baseline', default=None, metavar='REV',
                        help='also run dpt_mm as of this git revision, in '
                        'its own processes: one inference case per model '
                        'and the --baseline-case of training (before/after '
                        'in one run)')
    parser.add_argument('--baseline-case', default='ours',
                        choices=[c for c in TRAIN_CASES if c != 'theirs'],
                        help='the training case --baseline trains')
    parser.add_argument('--allocator', default='system',
                        choices=list(ALLOCATORS),
                        help='C allocator of every training worker (all '
                        'cases alike), preloaded with LD_PRELOAD (Linux); it '
                        'decides how much freed memory peak RSS still '
                        'counts')
    parser.add_argument('--no-inference', action='store_true')
    parser.add_argument('--no-train', action='store_true')
    parser.add_argument('--compile', action='store_true',
                        help="also time torch.compile of the 'ours' case "
                        '(slow to compile on CPU)')
    parser.add_argument('--no-bf16', dest='bf16', action='store_false',
                        help='skip the (lossy) bf16 autocast case')
    parser.add_argument('--profile', action='store_true',
                        help='top operators, ours vs theirs')
    parser.add_argument('--profile-top', type=int, default=12)
    parser.add_argument('--tiny', action='store_true',
                        help='smoke test: embed 32, 2 layers, 64×64')
    parser.add_argument('--device', default='auto',
                        help='cpu, cuda or auto')
    parser.add_argument('--threads', type=int, default=None,
                        help="torch.set_num_threads (default: torch's)")
    parser.add_argument('--json', dest='json_out', default=None,
                        help='write the full results here')
    parser.add_argument('--worker', default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker is not None:
        return args
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
    if (args.baseline and not args.no_train
            and args.baseline_case not in args.train_cases):
        parser.error(f'--baseline-case {args.baseline_case} is not among '
                     f'--train-cases {args.train_cases}')
    try:
        args.allocator_lib = harness.find_allocator(args.allocator)
    except RuntimeError as err:
        parser.error(str(err))
    if args.train_warmup is None:
        args.train_warmup = args.warmup if args.tiny else TRAIN_WARMUP
    if args.repeats < 1 or args.train_repeats < 1:
        parser.error('--repeats must be >= 1')
    return args


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    """Run the benchmark, print the report, write ``--json``.

    Returns:
        dict: The report (empty in a worker process).
    """
    args = parse_args(argv)
    if args.worker is not None:
        spec = json.loads(args.worker)
        (infer_worker if spec['kind'] == 'infer' else train_worker)(spec)
        return {}
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(('cuda' if torch.cuda.is_available() else 'cpu')
                          if args.device == 'auto' else args.device)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    report: Dict[str, Any] = dict(
        meta=harness.machine_info(device),
        args={k: v for k, v in vars(args).items() if k != 'worker'},
        command=' '.join([Path(sys.argv[0]).name] + list(
            sys.argv[1:] if argv is None else argv)))
    accel = harness.accel_module()
    if accel is not None:
        report['meta']['accel_decision'] = harness.jsonable(
            accel.accel_decision())
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix='dpt_mm_baseline_') as tmp:
        args.baseline_root = args.baseline_commit = None
        if args.baseline:
            # The old tree once, for every baseline worker of the run.
            args.baseline_commit = harness.extract_revision(args.baseline,
                                                            tmp)
            args.baseline_root = tmp
            report['args'].update(baseline_commit=args.baseline_commit)
        # Training first: its workers hold several GiB each, and the parent
        # is smallest before it has built any inference model.
        if not args.no_train:
            report['training'] = bench_training(args, device, log)
        if not args.no_inference:
            report['inference'] = []
            for variant in args.models:
                for batch in args.batch_sizes_by_model.get(
                        variant, args.batch_sizes):
                    report['inference'].append(bench_inference(
                        variant, batch, args.size, args, device, log))
                    harness.release_memory()
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

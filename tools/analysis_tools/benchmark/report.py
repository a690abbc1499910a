"""The printed report: Markdown tables of the measured ratios, so that
docs/benchmark.md can quote them. It states what was measured and on which
machine; it judges nothing (targets and their verdicts live in the docs).
"""
from typing import Any, Dict, List

from .harness import fmt, ratio

__all__ = ['format_report', 'format_profiles']

# Inference cases in table order, with their column labels.
INFERENCE_COLUMNS = (('ours', 'ours'), ('accel', 'accel on'),
                     ('baseline', 'baseline'), ('compile', 'compile'),
                     ('bf16', 'bf16'))


def _machine_line(meta: Dict[str, Any]) -> str:
    flags = ' '.join(meta.get('cpu_flags') or []) or 'none of note'
    line = (f"machine: {meta['cpu']} (flags: {flags}), {meta['threads']} "
            f"threads, torch {meta['torch']}, device {meta['device']}")
    if meta.get('gpu'):
        line += f" ({meta['gpu']})"
    if meta.get('commit'):
        line += f", commit {meta['commit'][:12]}"
    decision = meta.get('accel_decision')
    if decision:
        # What accel 'auto' chose on this machine, kernel by kernel.
        chosen = ', '.join(f"{k} {'on' if v else 'off'}"
                           for k, v in decision.get('kernels', {}).items())
        line += f'; accel auto: {chosen or "nothing to choose"}'
    return line + ('; medians; ratio = median of per-repeat ratios '
                   '(case / reference), below 1 is faster')


def _inference_lines(report: Dict[str, Any]) -> List[str]:
    rows = report['inference']
    present = [(case, label) for case, label in INFERENCE_COLUMNS
               if any(case in r['times'] for r in rows)]
    head = ['model', 'batch', 'HF ms']
    for _, label in present:
        head += [f'{label} ms', f'{label}/HF']
    head += ['GFLOP/img', 'ours GFLOP/s', '% of torch.mm',
             '% of best GEMM', 'parity err']
    args = report['args']
    lines = ['', f"inference: {args['warmup']} warm-up + {args['repeats']} "
             f"repeats, float32 unless noted; ours = accel {args['accel']!r}"
             ', accel on = accel forced on'
             + (f", baseline = dpt_mm at {args['baseline']}"
                if args.get('baseline') else '')
             + '; outputs compared to Transformers (parity err)', '',
             '| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    for r in rows:
        t = r['times']
        cells = [r['name'], str(r['batch']), f"{t['hf']['median_ms']:.0f}"]
        for case, _ in present:
            c = t.get(case)
            cells += ([f"{c['median_ms']:.0f}", f"{c['ratio_to_ref']:.3f}"]
                      if c else ['–', '–'])
        ours = r['achieved']['ours']
        cells += [f"{r['flops_per_image'] / 1e9:.1f}",
                  f"{ours['flops_per_s'] / 1e9:.0f}",
                  f"{100 * ours['ceiling_fraction']:.0f}%",
                  f"{100 * ours['best_ceiling_fraction']:.0f}%",
                  f"{r['parity_rel_err']:.1e}"]
        lines.append('| ' + ' | '.join(cells) + ' |')
    for r in rows:
        t, tag = r['times'], f"{r['name']} b{r['batch']}"
        if 'after_before' in r:
            lines.append(
                f"\nbefore/after ({tag}, {r['baseline']['rev']} → this "
                'tree): time after/before ' + ', '.join(
                    f'{case} {value:.3f}'
                    for case, value in r['after_before'].items()))
        if 'bf16' in t:
            lines.append(f"{tag}: bf16 autocast error "
                         f"{r['bf16_rel_err']:.1e} relative (lossy)")
        for case, reason in r.get('skipped', {}).items():
            lines.append(f'{tag}: {case} skipped: {reason}')
    return lines


def _training_lines(report: Dict[str, Any]) -> List[str]:
    train, args, meta = report['training'], report['args'], report['meta']
    memory = 'CUDA allocated' if 'cuda' in meta['device'] else 'RSS'
    lines = ['', f"training: one SGD step, batch {train['batch']}, "
             f"{train['size']}×{train['size']}, {args['train_warmup']} "
             f"warm-up + {args['train_repeats']} repeats; accel "
             f"{args['accel']!r} in our cases; memory = peak {memory} minus "
             'the RSS after imports, each case in its own process; allocated '
             '= peak of live tensor bytes in one more step, weights, '
             'optimiser state and batch included; C allocator: '
             f"{train.get('allocator', 'system')}"
             + (f" ({train['allocator_lib']})"
                if train.get('allocator_lib') else ''), '',
             '| case | step ms | ratio to mmseg | peak MiB | memory ratio '
             'to mmseg | peak allocated MiB | allocated ratio to mmseg | '
             'params (M) | GFLOP/step | GFLOP/s |',
             '|---|---|---|---|---|---|---|---|---|---|']
    cases = train['cases']
    ref = cases.get('theirs', next(iter(cases.values())))
    for c in cases.values():
        lines.append(
            f"| {c['label']} | {c['median_ms']:.0f} | "
            f"{c['ratio_to_ref']:.3f} | {c['train_peak_mb']:.0f} | "
            f"{fmt(ratio(c['train_peak_mb'], ref['train_peak_mb']))} | "
            f"{c['alloc_peak_mb']:.0f} | "
            f"{fmt(ratio(c['alloc_peak_mb'], ref['alloc_peak_mb']))} | "
            f"{c['num_params'] / 1e6:.1f} | "
            f"{fmt(c.get('gflop'), '.0f')} | {fmt(c.get('gflops'), '.0f')} |")

    def memory_ratios(num: Dict[str, Any], den: Dict[str, Any]) -> str:
        return (f"{fmt(ratio(num['train_peak_mb'], den['train_peak_mb']))} "
                '(allocated: '
                f"{fmt(ratio(num['alloc_peak_mb'], den['alloc_peak_mb']))})")

    if 'baseline_time_ratio' in train:
        case = train['baseline']['case']
        lines.append(
            f"\nbefore/after ({train['baseline']['rev']} → this tree, "
            f"{case}): step time after/before "
            f"{train['baseline_time_ratio']:.3f}, peak memory after/before "
            f"{memory_ratios(cases[case], cases['ours_baseline'])}")
    if 'cp_time_ratio' in train:
        lines.append(
            f"\ngradient checkpointing: step time on/off "
            f"{train['cp_time_ratio']:.3f}, peak memory off/on "
            f"{memory_ratios(cases['ours'], cases['ours_cp'])}")
    return lines


def format_report(report: Dict[str, Any]) -> str:
    """The run's tables as Markdown.

    Args:
        report (dict): What :func:`benchmark.cli.main` collected.

    Returns:
        str: The machine line, the inference table, the training table and
        the before/after and checkpointing ratios.
    """
    lines = [_machine_line(report['meta'])]
    if report.get('inference'):
        lines += _inference_lines(report)
    if report.get('training'):
        lines += _training_lines(report)
    return '\n'.join(lines)


def format_profiles(report: Dict[str, Any]) -> str:
    """Top operators by self time, per model and case."""
    lines = []

    def add(title: str, ops: List[Dict[str, Any]]) -> None:
        lines.append(f'\nprofile {title}:')
        lines.extend(f"  {o['op']:<55} {o['self_ms']:9.1f} ms "
                     f"{100 * o['share']:5.1f}% x{o['calls']}" for o in ops)

    for row in report.get('inference', []):
        for who, ops in row.get('profile', {}).items():
            add(f"{row['name']} batch {row['batch']}, {who}", ops)
    for who, ops in report.get('training', {}).get('profile', {}).items():
        add(f'training step, {who}', ops)
    return '\n'.join(lines)

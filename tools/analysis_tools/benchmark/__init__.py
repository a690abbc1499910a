"""Side-by-side speed and memory of dpt_mm's DPT against the references.

One run measures, each comparison interleaved (the cases alternate within
every round, so load from other processes hits them alike) and summarised
by medians after warm-up:

* :mod:`.inference`: Transformers' DPT, dpt_mm with the default
  accelerator setting and with the accelerator on (same converted weights,
  outputs checked equal), and with ``--baseline REV`` dpt_mm as of an older
  commit in its own process;
* :mod:`.training`: one SGD step of dpt_mm's DPT ViT-B segmentation config
  against mmseg's own DPT config, and with gradient checkpointing, each in
  its own worker process (peak RSS and peak live tensor bytes);
* :mod:`.report`: the tables (ratios only, no verdicts) and the machine
  (CPU model and flags from ``lscpu``);
* :mod:`.harness`: what they share (timing, memory probes, workers).

Measured numbers live in ``docs/benchmark.md``, not here.

Examples::

    python tools/analysis_tools/benchmark.py --json work_dirs/bench.json
    python tools/analysis_tools/benchmark.py --models vitl --batch-sizes 1 \\
        --no-train --baseline main
    python tools/analysis_tools/benchmark.py --tiny --json /tmp/tiny.json
"""
from .cli import main, parse_args
from .harness import rel_err, step_peak_bytes, time_interleaved

__all__ = ['main', 'parse_args', 'rel_err', 'step_peak_bytes',
           'time_interleaved']

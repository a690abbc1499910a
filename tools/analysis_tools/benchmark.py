#!/usr/bin/env python
"""Entry point of the benchmark package next to this file
(``tools/analysis_tools/benchmark/``); see its ``__init__`` for what it
measures and ``docs/benchmark.md`` for the numbers.

    python tools/analysis_tools/benchmark.py --tiny
"""
import os
import sys
from pathlib import Path

os.environ.setdefault('HF_HUB_OFFLINE', '1')
os.environ.setdefault('TRANSFORMERS_OFFLINE', '1')
HERE = Path(__file__).resolve().parent
# This folder first, so that ``benchmark`` is the package beside this file
# (a package takes precedence over a module of the same name); the
# repository next, for dpt_mm.
sys.path[:0] = [str(HERE), str(HERE.parents[1])]

from benchmark.cli import main  # noqa: E402

if __name__ == '__main__':
    main()

"""``python tools/analysis_tools/benchmark [options]`` (the folder itself)."""
import sys
from pathlib import Path

if __package__ in (None, ''):
    # Run as a folder: make the package importable by its name.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from benchmark.cli import main
else:
    from .cli import main

main()

"""``--help`` imports nothing slow; the toy-data tool never imports dpt_mm.

Checked by the modules a fresh interpreter has loaded after running the
tool, not by the clock (this machine is shared): torch, mmseg and dpt_mm
(which imports both) take seconds, argparse and NumPy do not.
"""
import json
import os
import os.path as osp
import subprocess
import sys
from typing import List

import pytest

REPO = osp.abspath(osp.join(osp.dirname(__file__), '../..'))
SLOW = ('torch', 'mmseg', 'dpt_mm', 'mmengine.runner', 'transformers')
# Runs a tool as __main__ and reports which slow modules it loaded.
PROBE = '''
import json, runpy, sys
tool, args = sys.argv[1], sys.argv[2:]
sys.argv = [tool] + args
try:
    runpy.run_path(tool, run_name='__main__')
except SystemExit as done:
    code = done.code
else:
    code = 0
slow = sorted(m for m in sys.modules if m in {slow!r})
print(json.dumps(dict(code=code, slow=slow)))
'''.replace('{slow!r}', repr(set(SLOW)))


def _probe(tool: str, *args: str) -> dict:
    env = dict(os.environ, PYTHONPATH=REPO)
    proc = subprocess.run(
        [sys.executable, '-c', PROBE,
         osp.join(REPO, tool), *args], cwd=REPO, env=env,
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


# The converters and the ONNX exporter need torch (and the converters'
# variant tables) to build their parsers; every other tool is instant.
FAST_HELP: List[str] = [
    'tools/train.py', 'tools/test.py', 'tools/infer.py', 'tools/demo.py',
    'tools/misc/check_dataset.py', 'tools/misc/make_toy_data.py',
    'tools/dataset_converters/nyu.py',
    'tools/dataset_converters/kitti_depth.py'
]


@pytest.mark.parametrize('tool', FAST_HELP)
def test_help_imports_nothing_slow(tool) -> None:
    result = _probe(tool, '--help')
    assert result['code'] == 0
    assert result['slow'] == [], f'{tool} --help imported {result["slow"]}'


def test_make_toy_data_runs_without_dpt_mm(tmp_path) -> None:
    out = str(tmp_path / 'toy')
    result = _probe('tools/misc/make_toy_data.py', out, '--num-train', '1',
                    '--num-val', '1', '--size', '32', '48', '--layouts',
                    'nyu', 'relative', '--quiet')
    assert result['code'] == 0
    assert result['slow'] == []
    assert sorted(os.listdir(out)) == ['nyu', 'relative']
    assert len(os.listdir(osp.join(out, 'nyu', 'annotations', 'train'))) == 1

"""A user's mistake ends a tool with a message and a hint, not a traceback.

The subprocess cases are few (each imports dpt_mm: seconds); which errors
count as the user's is checked in-process.
"""
import os
import os.path as osp
import subprocess
import sys
from typing import List

import pytest

from dpt_mm.compat import MissingCompiledOpError
from dpt_mm.converters import CheckpointMismatchError
from dpt_mm.datasets.transforms.loading import DataFileError
from dpt_mm.models import ConfigError
from dpt_mm.utils import (InputError, RegistryNameError,
                          UnsafeCheckpointError, UserError)
from dpt_mm.utils.checkpoint import CorruptCheckpointError
from dpt_mm.utils.cli import describe_user_error, exit_if_user_error

REPO = osp.abspath(osp.join(osp.dirname(__file__), '../..'))


def _run(*argv: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=REPO)
    return subprocess.run([sys.executable, *argv], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)


def _assert_short_error(proc: subprocess.CompletedProcess,
                        expected: List[str]) -> None:
    assert proc.returncode == 2, proc.stderr
    assert 'Traceback' not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith('error: ')]
    assert len(errors) == 1, proc.stderr
    for text in expected:
        assert text in proc.stderr
    assert any(line.startswith('hint: ') for line in lines)


def test_train_config_typo_prints_message_and_hint() -> None:
    proc = _run('tools/train.py', 'configs/toy/dpt_toy_dept.py')
    _assert_short_error(proc, [
        'error: config file not found: configs/toy/dpt_toy_dept.py',
        'configs/toy/dpt_toy_depth.py',  # the close name
        'hint: check the path'
    ])


def test_test_missing_checkpoint(tmp_path) -> None:
    missing = str(tmp_path / 'iter_9.pth')
    proc = _run('tools/test.py', 'configs/toy/dpt_toy_depth.py', missing)
    _assert_short_error(proc, [f'error: checkpoint not found: {missing}'])


@pytest.mark.parametrize('error, hint', [
    (ConfigError(['neck (DPTNeck): unknown key \'chanels\'']),
     'fix these keys'),
    (RegistryNameError("unknown model type 'DPTNek': did you mean "
                       'DPTNeck?'), 'fix the type name'),
    (KeyError('DPTNek is not in the mmseg::model registry. Please check '
              'whether the value of `DPTNek` is correct'),
     'custom_imports'),
    (FileNotFoundError('checkpoint not found: x.pth'), 'check the path'),
    (CheckpointMismatchError(['a'], [], [], 'x.pth'), 'another model'),
    (UnsafeCheckpointError('x.pth holds a callable'),
     'DPT_MM_TRUST_CHECKPOINTS=1'),
    (MissingCompiledOpError('mmcv.ops.nms needs the compiled mmcv'),
     'full mmcv'),
    (DataFileError('bad.png: cannot decode'), 'check_dataset.py'),
    (InputError('--shape must be multiples of 32'), ''),
    (OSError(28, 'no space left to write iter_9.pth'), 'free some disk'),
    (CorruptCheckpointError('x.pth is cut short'), 'download it again'),
])
def test_user_errors_have_a_message_and_hint(error, hint) -> None:
    message, found_hint = describe_user_error(error)
    assert message == (error.args[0] if isinstance(error, KeyError) else
                       str(error))
    assert not message.startswith("'")  # no KeyError quotes
    assert hint in found_hint


def test_bugs_keep_their_traceback(capsys) -> None:
    for bug in (RuntimeError('shape mismatch'), KeyError('state_dict'),
                TypeError('forward() got an unexpected keyword'),
                ValueError('math domain error')):
        assert describe_user_error(bug) is None
        exit_if_user_error(bug, argv=['tool.py'])  # returns: caller raises
    assert capsys.readouterr().err == ''


def test_exit_if_user_error_prints_and_exits(capsys) -> None:
    error = UserError('data_root does not exist: /nonexistent')
    error.hint = 'point data_root at your copy of the data set'
    with pytest.raises(SystemExit) as exit_info:
        exit_if_user_error(error, argv=['tool.py'])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.splitlines() == [
        'error: data_root does not exist: /nonexistent',
        'hint: point data_root at your copy of the data set',
        '(run with --debug to see the traceback)'
    ]
    exit_if_user_error(error, argv=['tool.py', '--debug'])  # returns


def test_every_tool_uses_the_handler_and_takes_debug() -> None:
    tools = []
    for folder, _, files in os.walk(osp.join(REPO, 'tools')):
        tools += [osp.join(folder, f) for f in files if f.endswith('.py')]
    missing = []
    for path in sorted(tools):
        with open(path, encoding='utf-8') as f:
            source = f.read()
        if "if __name__ == '__main__':" not in source:
            continue  # a module the tools import (cpu_dist.py)
        if 'analysis_tools' in path:
            continue  # the benchmark's output is its report; bench owns it
        if 'exit_if_user_error' not in source or "'--debug'" not in source:
            missing.append(osp.relpath(path, REPO))
    assert not missing, f'tools without the shared error handler: {missing}'


def test_hf2mm_unsupported_model_is_a_message(tmp_path, capsys) -> None:
    """A DPT setting dpt_mm does not implement: one line, no traceback."""
    import importlib.util

    from transformers import DPTConfig, DPTForDepthEstimation
    config = DPTConfig(hidden_size=32, num_hidden_layers=4,
                       num_attention_heads=4, intermediate_size=64,
                       image_size=64, patch_size=16,
                       backbone_out_indices=[0, 1, 2, 3],
                       neck_hidden_sizes=[8, 16, 24, 32],
                       fusion_hidden_size=16, hidden_act='relu')
    src = tmp_path / 'hf'
    DPTForDepthEstimation(config).save_pretrained(src)
    path = osp.join(REPO, 'tools', 'model_converters', 'hf2mm.py')
    spec = importlib.util.spec_from_file_location('hf2mm_cli_errors', path)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    assert tool.main([str(src), str(tmp_path / 'mm.pth')]) == 1
    err = capsys.readouterr().err
    assert "error: hidden_act='relu' is not supported" in err
    assert not (tmp_path / 'mm.pth').exists()

"""tools/analysis_tools/gpu_check.py on the machine at hand: every check
either runs, or is skipped with its reason (CUDA-only parts on CPU), and a
failure makes the exit code non-zero."""
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
GPU_CHECK = REPO / 'tools' / 'analysis_tools' / 'gpu_check.py'
CHECKS = ('dropout_replay', 'amp_bf16', 'amp_fp16', 'ddp',
          'compile_graph_breaks', 'compile_run', 'export', 'step_vs_mmseg')
# The toy segmentation model at 32×32 with a 32-wide ViT: seconds per check.
TINY_CONFIG = """_base_ = [r'{base}']
crop_size = (32, 32)
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(img_size=crop_size, embed_dims=32),
    neck=dict(in_channels=32))
"""


def load_gpu_check():
    spec = importlib.util.spec_from_file_location('gpu_check', GPU_CHECK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(torch.cuda.is_available(),
                    reason='the CPU summary; a GPU runs every check')
def test_gpu_check_on_cpu_runs_what_it_can_and_says_what_it_skipped(
        tmp_path):
    config = tmp_path / 'tiny_seg.py'
    config.write_text(TINY_CONFIG.format(
        base=REPO / 'configs' / 'toy' / 'dpt_toy_seg.py'))
    out = tmp_path / 'gpu_check.json'
    proc = subprocess.run(
        [sys.executable, str(GPU_CHECK), '--config', str(config),
         '--step-warmup', '0', '--step-repeats', '1', '--json', str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=900)
    report = json.loads(out.read_text())
    rows = {r['name']: r for r in report['results']}
    assert tuple(rows) == CHECKS
    for name in CHECKS:  # one summary row each
        assert f'| {name} | {rows[name]["status"]} |' in proc.stdout
    # Nothing fails on CPU: the exit code says so, and the summary line.
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert '6 ran, 2 skipped, 0 failed' in proc.stdout
    assert report['meta']['cpu'] in proc.stdout.splitlines()[0]

    # CUDA-only parts are skipped with the reason.
    assert rows['amp_fp16']['status'] == 'skipped'
    assert 'CUDA' in rows['amp_fp16']['detail']
    assert rows['compile_run']['status'] == 'skipped'
    assert '--compile-run' in rows['compile_run']['detail']
    # What a CPU can run, runs, with its numbers.
    replay = rows['dropout_replay']
    assert replay['status'] == 'ran', replay['detail']
    assert replay['numbers']['grad_rel_err'] <= 1e-4
    assert replay['numbers']['checkpointed'] == ['backbone', 'neck',
                                                 'decode_head']
    bf16 = rows['amp_bf16']
    assert bf16['status'] == 'ran', bf16['detail']
    assert bf16['numbers']['grad_cosine'] >= 0.95
    ddp = rows['ddp']
    assert ddp['status'] == 'ran', ddp['detail']
    assert 'SyncBN runs on CUDA only' in ddp['detail']
    assert ddp['numbers']['grad_rel_err'] <= 1e-4
    assert ddp['numbers']['rank_param_diff'] == 0
    # The plain nn.* model compiles as one graph and exports strictly.
    breaks = rows['compile_graph_breaks']
    assert breaks['status'] == 'ran', breaks['detail']
    assert breaks['numbers']['graph_count'] == 1
    assert breaks['numbers']['graph_break_count'] == 0
    export = rows['export']
    assert export['status'] == 'ran', export['detail']
    assert export['numbers']['rel_err'] <= 1e-4
    step = rows['step_vs_mmseg']
    assert step['status'] == 'ran', step['detail']
    assert step['numbers']['time_ratio'] > 0
    assert all(v > 0 for v in step['numbers']['peak_mib'].values())


def test_dropout_replay_fails_when_recomputation_draws_new_masks(
        tmp_path, monkeypatch):
    """The check has teeth: checkpointing without RNG replay (new dropout
    masks in the recomputation) is reported as a failure."""
    import functools

    import torch.utils.checkpoint as tuc
    gpu_check = load_gpu_check()
    config = tmp_path / 'tiny_seg.py'
    config.write_text(TINY_CONFIG.format(
        base=REPO / 'configs' / 'toy' / 'dpt_toy_seg.py'))
    args = gpu_check.parse_args(['--config', str(config)])
    ctx = gpu_check.Context(torch.device('cpu'),
                            gpu_check.load_model_config(args.config),
                            gpu_check.config_input_size(args.config), 2,
                            args)
    monkeypatch.setattr(tuc, 'checkpoint', functools.partial(
        tuc.checkpoint, preserve_rng_state=False))
    result = gpu_check.run_check('dropout_replay', ctx)
    assert result.status == 'failed'
    assert 'did not replay the dropout masks' in result.detail


def test_an_exception_is_a_failed_row_and_the_rest_still_run(
        monkeypatch, capsys):
    gpu_check = load_gpu_check()
    calls = []

    def broken(ctx):
        calls.append('broken')
        raise RuntimeError('boom\nsecond line')

    def fine(ctx):
        calls.append('fine')
        return gpu_check.ran('fine', 'all good', value=1)

    monkeypatch.setattr(gpu_check, 'CHECKS',
                        dict(broken=broken, fine=fine))
    monkeypatch.setattr(gpu_check, 'load_model_config', lambda path: {})
    monkeypatch.setattr(gpu_check, 'config_input_size', lambda path: (8, 8))
    assert gpu_check.main(['--device', 'cpu']) == 1
    assert calls == ['broken', 'fine']
    out = capsys.readouterr().out
    assert '| broken | failed | RuntimeError: boom second line |' in out
    assert '| fine | ran | all good |' in out
    assert '1 ran, 0 skipped, 1 failed' in out


def test_bad_options_name_the_problem(capsys):
    gpu_check = load_gpu_check()
    for argv, message in ((['--config', 'no/such.py'],
                           '--config no/such.py: no such file'),
                          (['--checks', 'dropout,export'],
                           "unknown checks ['dropout']"),
                          (['--batch', '1'], '--batch must be >= 2')):
        with pytest.raises(SystemExit) as exit_info:
            gpu_check.parse_args(argv)
        assert exit_info.value.code == 2
        assert message in capsys.readouterr().err

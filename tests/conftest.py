"""Shared test set-up: offline Hugging Face, mmseg default scope."""
import os

import pytest

os.environ.setdefault('HF_HUB_OFFLINE', '1')
os.environ.setdefault('TRANSFORMERS_OFFLINE', '1')
# The accelerator's per-machine decision is cached in a folder of this run
# (the tools the tests start inherit it), never in the user's home.
_CACHE = None
if 'DPT_MM_CACHE_DIR' not in os.environ:
    import tempfile
    _CACHE = tempfile.mkdtemp(prefix='dpt_mm_test_cache_')
    os.environ['DPT_MM_CACHE_DIR'] = _CACHE

# The suite is laid out like mmseg's (tests/test_models/test_backbones/...);
# a few modules share helpers across folders (test_inference's tiny models,
# test_checkpoint_safety's runner), so every test folder is importable.
import sys  # noqa: E402

_HERE = os.path.dirname(os.path.abspath(__file__))
for _dir, _, _ in sorted(os.walk(_HERE)):
    if os.path.basename(_dir).startswith('test_') and _dir not in sys.path:
        sys.path.append(_dir)

import dpt_mm  # noqa: E402,F401  (registers components)
import torch  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402


def pytest_configure(config):
    # The suite's models are tiny: one thread avoids oversubscribing the
    # cores (2 threads made tiny convs ~70x slower on a loaded 2-core box).
    torch.set_num_threads(1)
    config.addinivalue_line(
        'markers', 'slow: full-size checks, run with DPT_MM_SLOW=1')


def pytest_unconfigure(config):
    if _CACHE is not None:
        import shutil
        shutil.rmtree(_CACHE, ignore_errors=True)


def pytest_collection_modifyitems(config, items):
    if os.environ.get('DPT_MM_SLOW') == '1':
        return
    skip = pytest.mark.skip(reason='slow: set DPT_MM_SLOW=1 to run')
    for item in items:
        if 'slow' in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _mmseg_scope():
    init_default_scope('mmseg')
    yield

"""ONNX export with dynamic batch/height/width, checked with onnxruntime.

Tolerance: max |onnxruntime - PyTorch| / max |PyTorch| <= 1e-4, float32,
at two input sizes that differ from the traced one.
"""
import importlib.util
import os.path as osp

import numpy as np
import pytest
import torch

from dpt_mm.apis import init_model
from test_inference import write_tiny_model

onnx = pytest.importorskip('onnx')
ort = pytest.importorskip('onnxruntime')

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '../..'))
SIZES = [(64, 64), (96, 128)]
RTOL = 1e-4


@pytest.fixture(scope='module')
def exporter():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: threads only contend
    spec = importlib.util.spec_from_file_location(
        'dpt_pytorch2onnx',
        osp.join(ROOT, 'tools', 'deployment', 'pytorch2onnx.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield module
    torch.set_num_threads(threads)


def test_depth_export_cli(exporter, tmp_path, capsys):
    cfg, ckpt = write_tiny_model(str(tmp_path), 'depth')
    out = str(tmp_path / 'depth.onnx')
    # --shape 64 64 is the native position-embedding grid: the exporter
    # must still produce a size-generic graph.
    assert exporter.main([cfg, ckpt, out, '--shape', '64', '64']) == 0
    assert 'onnxruntime vs PyTorch' in capsys.readouterr().out
    model = init_model(cfg, ckpt)
    errors = exporter.verify_onnx(model, out, SIZES, batch=2, rtol=RTOL)
    assert max(errors) <= RTOL
    meta = {p.key: p.value for p in onnx.load(out).metadata_props}
    assert meta['task'] == 'depth' and meta['output_mode'] == 'inverse_depth'
    graph_input = onnx.load(out).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param for d in graph_input] == ['batch', '', 'height',
                                                  'width']


def test_seg_export_matches_pytorch(exporter, tmp_path):
    cfg, ckpt = write_tiny_model(str(tmp_path), 'seg')
    model = init_model(cfg, ckpt)
    out = exporter.export_onnx(model, str(tmp_path / 'seg.onnx'),
                               shape=(96, 96))
    errors = exporter.verify_onnx(model, out, SIZES, rtol=RTOL)
    assert max(errors) <= RTOL
    session = ort.InferenceSession(out, providers=['CPUExecutionProvider'])
    logits = session.run(None, {'input': np.zeros((1, 3, 64, 96),
                                                  np.float32)})[0]
    assert logits.shape == (1, 5, 64, 96)


def _tiny_hybrid_model(folder) -> tuple:
    from mmengine.config import Config
    from mmseg.registry import MODELS
    from test_inference import randomize, tiny_model_cfg
    from toy_utils import HYBRID_NECK, TINY_HYBRID
    cfg = tiny_model_cfg('depth')
    cfg.update(backbone=dict(TINY_HYBRID, img_size=64),
               neck=dict(HYBRID_NECK))
    config = osp.join(folder, 'tiny_hybrid.py')
    Config(dict(model=cfg)).dump(config)
    model = randomize(MODELS.build(cfg))
    ckpt = osp.join(folder, 'tiny_hybrid.pth')
    torch.save(dict(state_dict=model.state_dict(), meta={}), ckpt)
    return config, ckpt


def test_hybrid_export_is_shape_dynamic(exporter, tmp_path, capsys):
    """The BiT stem's "same" padding is computed from the traced size; with
    math.ceil it was a constant and the output kept the traced size."""
    cfg, ckpt = _tiny_hybrid_model(str(tmp_path))
    out = str(tmp_path / 'hybrid.onnx')
    assert exporter.main([cfg, ckpt, out, '--shape', '64', '64']) == 0
    model = init_model(cfg, ckpt)
    errors = exporter.verify_onnx(model, out, SIZES + [(64, 128)], rtol=RTOL)
    assert max(errors) <= RTOL


def test_failed_verification_removes_the_file(exporter, tmp_path, capsys):
    cfg, ckpt = write_tiny_model(str(tmp_path), 'depth')
    out = tmp_path / 'depth.onnx'
    assert exporter.main([cfg, ckpt, str(out), '--shape', '64', '64',
                          '--rtol', '1e-12']) == 1
    assert f'removed {out}' in capsys.readouterr().err
    assert not out.exists()


def test_same_padding_amount_is_the_ceil_formula():
    import math
    from dpt_mm.models.layers.bit_resnet import _same_pad_amount
    for size in range(1, 70):
        for kernel, stride, dilation in ((1, 2, 1), (3, 1, 1), (3, 2, 1),
                                         (7, 2, 1), (3, 2, 2), (4, 3, 1)):
            expected = max((math.ceil(size / stride) - 1) * stride +
                           (kernel - 1) * dilation + 1 - size, 0)
            args = (kernel, stride, dilation)
            assert _same_pad_amount(size, *args) == expected
            # A traced size (a tensor under ONNX tracing) gives the same.
            assert int(_same_pad_amount(torch.tensor(size), *args)) == \
                expected

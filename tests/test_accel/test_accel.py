"""dpt_mm.accel: the CPU kernels equal the plain ops, fall back wherever
they cannot run, are swapped in by one switch chosen by a measurement
cached per machine, and change no model's outputs or gradients."""
import copy
import glob
import json
import os.path as osp

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData

import dpt_mm  # noqa: F401,I001  registers; shim before any mmseg import
from dpt_mm import accel
from dpt_mm.accel import (ACCEL_MODES, BandedConv2d, FusedCrossEntropyLoss,
                          OneDNNLinear, SplitReadout, accel_decision,
                          accelerate, accelerate_from_cfg, banded_conv2d,
                          fused_resize_cross_entropy)
from dpt_mm.accel import conv as accel_conv
from dpt_mm.accel import decision as accel_decision_module
from dpt_mm.accel import linear as accel_linear
from dpt_mm.accel import loss as accel_loss
from dpt_mm.accel import readout as accel_readout
from dpt_mm.accel.conv import conv_input_rows
from dpt_mm.models.decode_heads.fused_loss import chunked_ce_losses
from dpt_mm.models.layers import Readout, StdConv2dSame
from dpt_mm.models.losses import resize_cross_entropy
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.models.losses import CrossEntropyLoss
from mmseg.registry import MODELS
from toy_utils import seg_samples

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '../..'))
needs_onednn = pytest.mark.skipif(not torch.backends.mkldnn.is_available(),
                                  reason='oneDNN not built in')


def rel(a, b):
    """max |a − b| / max |b|."""
    return ((a.double() - b.double()).abs().max() /
            b.double().abs().max().clamp_min(1e-30)).item()


@pytest.fixture
def calls(monkeypatch):
    """Count the accelerated kernels' calls."""
    seen = []
    for module, name in ((accel_linear, 'onednn_linear'),
                         (accel_conv, 'banded_conv2d'),
                         (accel_readout, 'split_readout'),
                         (accel_loss, 'fused_resize_cross_entropy')):
        fn = getattr(module, name)

        def spy(*args, _fn=fn, _name=name, **kwargs):
            seen.append(_name)
            return _fn(*args, **kwargs)

        monkeypatch.setattr(module, name, spy)
    return seen


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    """Decisions cached in a test folder, never in the user's home."""
    monkeypatch.setenv(accel_decision_module.CACHE_ENV, str(tmp_path))
    monkeypatch.setattr(accel_decision_module, '_decision', None)
    return tmp_path


# ---------------------------------------------------------------------------
# Kernels
# ---------------------------------------------------------------------------
@needs_onednn
@pytest.mark.parametrize('make_x', [
    lambda: torch.randn(7, 24), lambda: torch.randn(2, 5, 24),
    lambda: torch.randn(5, 2, 24).transpose(0, 1), lambda: torch.randn(1, 24)
], ids=['2d', '3d', 'non_contiguous', 'one_row'])
@pytest.mark.parametrize('bias', [True, False])
def test_onednn_linear_equals_nn_linear(calls, make_x, bias):
    torch.manual_seed(0)
    ref = nn.Linear(24, 40, bias=bias)
    lin = copy.deepcopy(ref)
    lin.__class__ = OneDNNLinear
    x = make_x()
    xs = [x.clone().requires_grad_() for _ in range(2)]
    out, ref_out = lin(xs[0]), ref(xs[1])
    g = torch.randn_like(ref_out)
    out.backward(g)
    ref_out.backward(g)
    assert calls == ['onednn_linear'] and out.shape == ref_out.shape
    assert rel(out, ref_out) <= 1e-5
    assert rel(xs[0].grad, xs[1].grad) <= 1e-5
    for p, q in zip(lin.parameters(), ref.parameters()):
        assert rel(p.grad, q.grad) <= 1e-5


@pytest.mark.parametrize('rows', [1, 2, 5])
@pytest.mark.parametrize('kernel,padding,dilation', [
    (3, (1, 1), (1, 1)), (3, (2, 2), (2, 2)), (3, (0, 1), (1, 1)),
    ((3, 1), (1, 0), (1, 1))])
@pytest.mark.parametrize('bias', [False, True])
def test_banded_conv2d_equals_f_conv2d(rows, kernel, padding, dilation,
                                       bias):
    torch.manual_seed(0)
    k = (kernel, kernel) if isinstance(kernel, int) else kernel
    x = torch.randn(2, 4, 11, 6, dtype=torch.float64).contiguous(
        memory_format=torch.channels_last)
    w = torch.randn(5, 4, *k, dtype=torch.float64)
    b = torch.randn(5, dtype=torch.float64) if bias else None

    def run(fn):
        leaves = [t.clone().requires_grad_() for t in (x, w, b)
                  if t is not None]
        out = fn(*leaves, *([None] if b is None else []))
        out.backward(torch.ones_like(out))
        return [out] + [t.grad for t in leaves]

    got = run(lambda *a: banded_conv2d(*a, padding, dilation, rows))
    ref = run(lambda *a: F.conv2d(*a, 1, padding, dilation))
    for a, r in zip(got, ref):
        assert torch.allclose(a, r, atol=1e-12), (a - r).abs().max()


def test_banded_conv2d_gradcheck():
    x = torch.randn(1, 2, 7, 5, dtype=torch.float64, requires_grad=True)
    w = torch.randn(3, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    b = torch.randn(3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda *a: banded_conv2d(*a, (1, 1), (1, 1), 2), (x, w, b))


def test_conv_input_rows_pads_only_outside_the_map():
    x = torch.arange(2 * 6 * 1.).view(1, 1, 6, 2)
    rows = conv_input_rows(x, 0, 2, 3, 1, 1)
    assert rows.shape[2] == 4 and torch.equal(rows[:, :, 0],
                                              torch.zeros(1, 1, 2))
    rows = conv_input_rows(x, 2, 4, 3, 1, 1)
    assert rows.data_ptr() == x[:, :, 1].data_ptr()  # a view, no copy


def banded(conv: nn.Conv2d, band_bytes: int) -> nn.Conv2d:
    conv = copy.deepcopy(conv)
    conv.__class__ = BandedConv2d
    conv.band_bytes = band_bytes
    return conv


def test_banded_conv_module_equals_nn_conv2d(calls):
    torch.manual_seed(0)
    ref = nn.Conv2d(4, 6, 3, padding=1)
    conv = banded(ref, 2 * 6 * 8 * 4 * 3)  # 3 rows per band
    x = torch.randn(2, 4, 10, 8).requires_grad_()
    x2 = x.detach().clone().requires_grad_()
    out, ref_out = conv(x), ref(x2)
    out.sum().backward()
    ref_out.sum().backward()
    assert calls == ['banded_conv2d']
    assert rel(out, ref_out) <= 1e-6 and rel(x.grad, x2.grad) <= 1e-5
    for p, q in zip(conv.parameters(), ref.parameters()):
        assert rel(p.grad, q.grad) <= 1e-5


def test_split_readout_equals_the_papers_readout(calls):
    """concat → Linear → GELU, with the class token's half of the Linear
    computed once per image: same output and gradients."""
    torch.manual_seed(0)
    ref = Readout(8, 'project')
    fast = copy.deepcopy(ref)
    fast.__class__ = SplitReadout
    feat = torch.randn(2, 8, 3, 5, requires_grad=True)
    cls_token = torch.randn(2, 8, requires_grad=True)
    outs, grads = [], []
    for module in (fast, ref):
        out = module(feat, cls_token)
        out.pow(2).sum().backward()
        outs.append(out)
        grads.append([feat.grad.clone(), cls_token.grad.clone()] +
                     [p.grad.clone() for p in module.parameters()])
        feat.grad = cls_token.grad = None
    assert calls == ['split_readout']
    assert rel(outs[0], outs[1]) <= 1e-6
    for a, b in zip(*grads):
        assert rel(a, b) <= 1e-5
    for kind in ('ignore', 'add'):  # nothing to split: the plain forward
        other = Readout(8, kind)
        other.__class__ = SplitReadout
        assert torch.equal(other(feat, cls_token),
                           Readout(8, kind)(feat, cls_token))
    assert calls == ['split_readout']


# logits h×w, labels H×W, align_corners, class weights, output rows per band
LOSS_CASES = {
    'upsample_x2': ((8, 9), (16, 18), False, None, 3),
    'align_corners_weighted': ((8, 9), (16, 18), True,
                               [0.5, 0.5, 2.0, 2.0, 2.0], 5),
    'same_size': ((16, 16), (16, 16), False, None, 4),
    'odd_factor_default_bands': ((7, 5), (30, 11), False, None, None),
    'width_only': ((8, 8), (8, 20), True, None, 2),
}


@pytest.mark.parametrize('avg_non_ignore', [False, True])
@pytest.mark.parametrize('case', sorted(LOSS_CASES))
def test_fused_loss_equals_the_chunked_loss(case, avg_non_ignore):
    """Loss, accuracy and gradient of the plain chunked loss (itself
    tested against mmseg's resize + CrossEntropyLoss + accuracy), with
    ignored pixels, class weights and overlapping bands."""
    (h, w), (height, width), align_corners, weight, rows = LOSS_CASES[case]
    torch.manual_seed(0)
    logits = torch.randn(2, 5, h, w, requires_grad=True)
    label = torch.randint(0, 5, (2, height, width))
    label[0, :3] = 255
    kwargs = dict(align_corners=align_corners, class_weight=weight,
                  chunk_rows=rows, avg_non_ignore=avg_non_ignore,
                  loss_weight=0.7)
    results = []
    for fn in (fused_resize_cross_entropy, resize_cross_entropy):
        loss, acc = fn(logits, label, **kwargs)
        (2 * loss).backward()
        results.append((loss, acc, logits.grad))
        logits.grad = None
    (loss, acc, grad), (ref_loss, ref_acc, ref_grad) = results
    assert loss.dtype == ref_loss.dtype and acc.shape == ref_acc.shape
    assert rel(loss, ref_loss) <= 1e-6 and torch.equal(acc, ref_acc)
    assert rel(grad, ref_grad) <= 1e-5


def test_fused_loss_gradcheck():
    torch.manual_seed(0)
    logits = torch.randn(1, 3, 4, 5, dtype=torch.float64,
                         requires_grad=True)
    label = torch.randint(0, 3, (1, 8, 10))
    label[0, 0] = 255
    assert torch.autograd.gradcheck(
        lambda x: fused_resize_cross_entropy(
            x, label, align_corners=False, class_weight=[1.0, 2.0, 0.5],
            chunk_rows=3)[0], (logits, ))


def test_fused_loss_is_taken_by_the_heads_like_mmsegs():
    """The chunked loss accepts the accelerator's CrossEntropyLoss (mmseg's
    forward) and still refuses a subclass with a forward of its own."""

    class OwnForward(CrossEntropyLoss):

        def forward(self, *args, **kwargs):
            return super().forward(*args, **kwargs)

    head = MODELS.build(dict(type='DPTSegHead', in_channels=8, channels=8,
                             num_classes=3))
    accelerate(head, 'on')
    assert type(head.loss_decode) is FusedCrossEntropyLoss
    assert chunked_ce_losses(head) == [head.loss_decode]
    head.loss_decode.__class__ = OwnForward
    assert chunked_ce_losses(head) is None


# ---------------------------------------------------------------------------
# Every fallback branch, forced
# ---------------------------------------------------------------------------
def _linear():
    lin = nn.Linear(8, 4)
    lin.__class__ = OneDNNLinear
    return lin


FALLBACKS = {
    'meta': lambda m, x: (m.to('meta'), x.to('meta')),
    'float64': lambda m, x: (m.double(), x.double()),
    'bfloat16': lambda m, x: (m.bfloat16(), x.bfloat16()),
}


@pytest.mark.parametrize('case', ['meta', 'float64', 'bfloat16', 'autocast',
                                  'compiling', 'tracing', 'onnx_export',
                                  'empty'])
@pytest.mark.parametrize('kind', ['linear', 'conv'])
def test_fallback_is_the_plain_op(monkeypatch, calls, case, kind):
    """Off CPU (the meta device stands for any), in another dtype, under
    autocast, while compiling, tracing or exporting: the plain forward."""
    torch.manual_seed(0)
    if kind == 'linear':
        module, x = _linear(), torch.randn(3, 5, 8)
        if case == 'empty':
            x = torch.randn(0, 8)
    else:
        module = banded(nn.Conv2d(4, 4, 3, padding=1), 1)
        x = torch.randn(1, 4, 6, 5)
        if case == 'empty':
            x = torch.randn(0, 4, 6, 5)
    plain = copy.deepcopy(module)
    plain.__class__ = nn.Linear if kind == 'linear' else nn.Conv2d
    if case in FALLBACKS:
        module, x = FALLBACKS[case](module, x)
        plain = FALLBACKS[case](plain, x)[0]
    if case == 'compiling':
        monkeypatch.setattr(torch.compiler, 'is_compiling', lambda: True)
    if case == 'tracing':
        monkeypatch.setattr(torch.jit, 'is_tracing', lambda: True)
    if case == 'onnx_export':
        monkeypatch.setattr(torch.onnx, 'is_in_onnx_export', lambda: True)
    with torch.autocast('cpu', dtype=torch.bfloat16,
                        enabled=case == 'autocast'):
        out = module(x)
        ref = plain(x)
    assert calls == []
    assert out.dtype == ref.dtype and out.device == ref.device
    if case != 'meta':
        assert torch.equal(out, ref)


@pytest.mark.parametrize('case', ['meta', 'float64', 'bfloat16', 'autocast',
                                  'compiling', 'tracing', 'onnx_export'])
def test_readout_fallback_is_the_plain_readout(monkeypatch, calls, case):
    torch.manual_seed(0)
    module = Readout(8)
    module.__class__ = SplitReadout
    plain = copy.deepcopy(module)
    plain.__class__ = Readout
    feat, cls_token = torch.randn(2, 8, 3, 4), torch.randn(2, 8)
    if case in FALLBACKS:
        module, feat = FALLBACKS[case](module, feat)
        plain, cls_token = FALLBACKS[case](plain, cls_token)
    switch = dict(compiling=(torch.compiler, 'is_compiling'),
                  tracing=(torch.jit, 'is_tracing'),
                  onnx_export=(torch.onnx, 'is_in_onnx_export'))
    if case in switch:
        monkeypatch.setattr(*switch[case], lambda: True)
    with torch.autocast('cpu', dtype=torch.bfloat16,
                        enabled=case == 'autocast'):
        out = module(feat, cls_token)
        ref = plain(feat, cls_token)
    assert calls == []
    assert out.dtype == ref.dtype and out.device == ref.device
    if case != 'meta':
        assert torch.equal(out, ref)


@pytest.mark.parametrize('case', ['meta', 'float64', 'bfloat16', 'autocast',
                                  'compiling', 'no_grad', 'frozen'])
def test_loss_fallback_is_the_plain_loss(monkeypatch, calls, case):
    """Off CPU, in another dtype, under autocast, while compiling and
    where no gradient is wanted: the plain chunked loss."""
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 4, 6)
    label = torch.randint(0, 5, (2, 8, 12))
    if case == 'meta':
        logits, label = logits.to('meta'), label.to('meta')
    if case in ('float64', 'bfloat16'):
        logits = logits.to(getattr(torch, case))
    logits.requires_grad_(case != 'frozen')
    if case == 'compiling':
        monkeypatch.setattr(torch.compiler, 'is_compiling', lambda: True)
    loss = CrossEntropyLoss()
    loss.__class__ = FusedCrossEntropyLoss
    with torch.autocast('cpu', dtype=torch.bfloat16,
                        enabled=case == 'autocast'), \
            torch.set_grad_enabled(case != 'no_grad'):
        out = loss.resize_cross_entropy(logits, label, align_corners=False)
        ref = resize_cross_entropy(logits, label, align_corners=False)
    assert calls == []
    for a, b in zip(out, ref):
        assert a.dtype == b.dtype and a.device == b.device
        if case != 'meta':
            assert torch.equal(a, b)


@pytest.mark.parametrize('case', ['stride', 'groups', 'same', 'reflect',
                                  'frozen', 'no_grad', 'one_band'])
def test_conv_fallback_where_banding_does_not_apply(calls, case):
    conv = nn.Conv2d(4, 4, 3, stride=2 if case == 'stride' else 1,
                     padding='same' if case == 'same' else 1,
                     groups=2 if case == 'groups' else 1,
                     padding_mode='reflect' if case == 'reflect' else 'zeros')
    conv.weight.requires_grad_(case != 'frozen')
    accel_conv_ = banded(conv, 1 << 30 if case == 'one_band' else 1)
    x = torch.randn(1, 4, 9, 9)
    with torch.set_grad_enabled(case != 'no_grad'):
        assert torch.equal(accel_conv_(x), conv(x))
    assert calls == []


def test_torch_jit_trace_of_accelerated_modules_records_plain_ops(calls):
    model = nn.Sequential(_linear())
    traced = torch.jit.trace(model, torch.randn(2, 8), check_trace=False)
    assert calls == []
    assert 'convolution' not in str(traced.graph)


# ---------------------------------------------------------------------------
# The switch
# ---------------------------------------------------------------------------
class _Net(nn.Module):

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)
        self.conv = nn.Conv2d(2, 2, 3, padding=1)
        self.strided = nn.Conv2d(2, 2, 3, stride=2)
        self.std = StdConv2dSame(2, 2, 3)


def test_accelerate_swaps_in_place_keeps_keys_and_restores():
    net = _Net()
    state = {k: v.clone() for k, v in net.state_dict().items()}
    params = [id(p) for p in net.parameters()]
    assert accelerate(net, 'on') == 3
    assert type(net.fc) is OneDNNLinear and type(net.conv) is BandedConv2d
    assert type(net.std) is StdConv2dSame  # its own forward: left alone
    assert [id(p) for p in net.parameters()] == params
    assert net.state_dict().keys() == state.keys()
    assert isinstance(net.fc, nn.Linear) and repr(net.fc).startswith(
        'OneDNNLinear(in_features=8')
    assert accelerate(net, 'on') == 0  # already swapped
    assert accelerate(net, 'off') == 0
    assert type(net.fc) is nn.Linear and type(net.conv) is nn.Conv2d
    assert all(torch.equal(v, state[k]) for k, v in net.state_dict().items())
    loaded = copy.deepcopy(net)
    accelerate(loaded, 'on')
    loaded.load_state_dict(state)  # strict: same keys


def test_accelerate_auto_follows_the_decision(monkeypatch):
    monkeypatch.setattr(accel_decision_module, '_measure', lambda: dict(
        linear=dict(plain_ms=2.0, accel_ms=1.0),
        conv=dict(plain_ms=1.0, accel_ms=1.0),
        readout=dict(plain_ms=1.0, accel_ms=1.0),
        loss=dict(plain_ms=1.0, accel_ms=1.0)))
    net = _Net()
    assert accelerate(net, 'auto') == 1
    assert type(net.fc) is OneDNNLinear and type(net.conv) is nn.Conv2d


def test_bad_mode_names_the_source():
    assert ACCEL_MODES == ('auto', 'on', 'off')
    with pytest.raises(ValueError, match="accelerate: accel must be one of"):
        accelerate(_Net(), 'fast')
    with pytest.raises(ValueError, match="config key 'accel'"):
        accelerate_from_cfg(_Net(), Config(dict(accel='yes')))
    net = _Net()
    assert accelerate_from_cfg(net, Config(dict(accel='off')), 'on') == 3
    assert accelerate_from_cfg(net, Config(dict(accel='off'))) == 0
    assert type(net.fc) is nn.Linear


def test_decision_is_measured_once_and_cached_per_machine(
        monkeypatch, cache_dir):
    measured = []

    def measure():
        measured.append(1)
        return dict(linear=dict(plain_ms=1.0, accel_ms=1.0),
                    conv=dict(plain_ms=3.0, accel_ms=2.0),
                    readout=dict(plain_ms=1.0, accel_ms=1.0),
                    loss=dict(plain_ms=1.0, accel_ms=1.0))

    monkeypatch.setattr(accel_decision_module, '_measure', measure)
    first = accel_decision()
    assert first['kernels'] == dict(linear=False, conv=True, readout=False,
                                    loss=False)
    assert first['enabled'] is True and len(measured) == 1
    files = glob.glob(str(cache_dir / 'accel-*.json'))
    assert len(files) == 1 and accel_decision_module.machine_key() in files[0]
    # Another process: the file, not a new measurement.
    monkeypatch.setattr(accel_decision_module, '_decision', None)
    assert accel_decision() == json.loads(json.dumps(first))
    assert len(measured) == 1
    accel_decision(refresh=True)
    assert len(measured) == 2
    # A file from another machine (or a broken one) is measured over.
    with open(files[0], 'w') as f:
        json.dump(dict(first, machine='other'), f)
    monkeypatch.setattr(accel_decision_module, '_decision', None)
    accel_decision()
    with open(files[0], 'w') as f:
        f.write('{')
    monkeypatch.setattr(accel_decision_module, '_decision', None)
    accel_decision()
    assert len(measured) == 4
    # A file written before a kernel existed lacks it: measured again.
    with open(files[0], 'w') as f:
        json.dump(dict(first, kernels=dict(linear=False, conv=True)), f)
    monkeypatch.setattr(accel_decision_module, '_decision', None)
    assert set(accel_decision()['kernels']) == set(accel.KERNELS)
    assert len(measured) == 5


def test_real_measurement_is_small_and_well_formed():
    decision = accel_decision(refresh=True)
    assert set(decision['kernels']) == set(accel.KERNELS)
    for times in decision['times'].values():
        assert times['plain_ms'] > 0 and times['accel_ms'] > 0
    assert decision['enabled'] == any(decision['kernels'].values())


# ---------------------------------------------------------------------------
# Every config: accelerator on vs off
# ---------------------------------------------------------------------------
CONFIGS = sorted(
    osp.relpath(p, ROOT)
    for p in glob.glob(osp.join(ROOT, 'configs', '**', '*.py'),
                       recursive=True) if '_base_' not in p)
SIZE = (32, 32)


def input_size(backbone: dict) -> tuple:
    """A small input the backbone takes: multiples of its patch size (14
    for DINOv2), else :data:`SIZE`."""
    patch = backbone.get('patch_size', 16)
    return (3 * patch, 4 * patch) if patch % 16 else SIZE


def tiny_model(path: str) -> nn.Module:
    """The config's model with small widths and depths (same types)."""
    model = Config.fromfile(osp.join(ROOT, path)).model
    backbone = model.backbone
    backbone.pop('init_cfg', None)
    if 'toy' not in path:
        in_channels = 32
        if backbone.type == 'DPTSwinV2':
            # Four stages of widths 8..64, windows of 2 on the 8×8 grid.
            backbone.update(img_size=SIZE[0], embed_dims=8,
                            depths=(1, 1, 1, 1), num_heads=(1, 1, 2, 2),
                            window_size=2,
                            pretrained_window_sizes=(0, 0, 0, 0))
            in_channels = (8, 16, 32, 64)
        else:
            backbone.update(embed_dims=32, num_layers=4, num_heads=2,
                            out_indices=(0, 1, 2, 3),
                            img_size=input_size(backbone))
        if backbone.type == 'DPTViTHybrid':
            backbone.update(stem_channels=8, stem_depths=(1, 1, 1),
                            stem_widths=(16, 32, 64), norm_groups=4,
                            num_layers=2, out_indices=(0, 1))
        neck = model.neck
        if neck.type == 'DPTNeck':
            hybrid = backbone.type == 'DPTViTHybrid'
            neck.in_channels = (16, 32, 32, 32) if hybrid else in_channels
            neck.reassemble_channels = (16, 32, 32, 32) if hybrid else (
                in_channels if isinstance(in_channels, tuple) else
                (8, 16, 32, 32))
            neck.channels = 16
            head_in = 16
        else:  # MultiLevelNeck of the UPerHead ablation
            neck.in_channels = [32] * 4
            neck.out_channels = 16
            head_in = 16
        for key in ('decode_head', 'auxiliary_head'):
            head = model.get(key)
            if not head:
                continue
            if isinstance(head.in_channels, (list, tuple)):
                head.in_channels = [head_in] * len(head.in_channels)
            else:
                head.in_channels = head_in
            head.channels = 8 if head.type == 'DPTDepthHead' else 16
            if 'num_classes' in head and head.type != 'DPTDepthHead':
                head.num_classes = 5
    model.data_preprocessor.size = None
    init_default_scope('mmseg')
    return revert_sync_batchnorm(MODELS.build(model))


def train_step(model: nn.Module, x: torch.Tensor) -> tuple:
    """Outputs and every parameter's gradient of one training step: the
    segmentation (and joint depth) losses of every head, the chunked loss
    included, or the depth prediction."""
    model.train()
    model.zero_grad()
    torch.manual_seed(1)  # dropout, drop path
    out = model(x, mode='tensor')
    if hasattr(model, 'auxiliary_head'):
        samples = seg_samples(x.shape[0], x.shape[-2:],
                              model.decode_head.num_classes)
        for sample in samples:  # the joint depth + segmentation model
            sample.gt_depth_map = PixelData(
                data=torch.rand(1, *x.shape[-2:]) * 5 + 0.5)
        losses = model.loss(x, samples)
        total = sum(v for k, v in losses.items() if 'loss' in k)
        out = list(out if isinstance(out, tuple) else [out]) + [
            v for k, v in sorted(losses.items())]
    else:
        total = (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum()
        out = [out]
    total.backward()
    return out, {n: p.grad.clone() for n, p in model.named_parameters()
                 if p.grad is not None}


@needs_onednn
@pytest.mark.parametrize('path', CONFIGS)
def test_accel_on_equals_off_for_every_config(monkeypatch, calls, path):
    # Small bands, so that the tiny maps are split too.
    monkeypatch.setattr(BandedConv2d, 'band_bytes', 4096)
    torch.manual_seed(0)
    plain = tiny_model(path)
    fast = copy.deepcopy(plain)
    assert accelerate(fast, 'on') > 0
    backbone = Config.fromfile(osp.join(ROOT, path)).model.backbone
    size = (96, 128) if 'toy' in path else input_size(backbone)
    if 'toy' in path and backbone.get('patch_size', 16) % 16:
        size = (98, 140)  # the toy images padded to multiples of 14
    x = torch.randn(2, 3, *size)
    outs, grads = train_step(plain, x)
    assert calls == []
    fast_outs, fast_grads = train_step(fast, x)
    assert 'onednn_linear' in calls and 'banded_conv2d' in calls
    if any(getattr(m, 'readout_type', None) == 'project'
           for m in plain.modules()):
        assert 'split_readout' in calls, path
    if any(chunked_ce_losses(m) for m in plain.modules()
           if isinstance(m, BaseDecodeHead)):
        assert 'fused_resize_cross_entropy' in calls, path
    for a, b in zip(fast_outs, outs):
        assert rel(a, b) <= 1e-5, path
    assert fast_grads.keys() == grads.keys() and len(grads) == len(
        list(plain.parameters())), path
    # A gradient that is zero in exact arithmetic (a conv bias before
    # BatchNorm) is rounding noise either way: measured against 1e-4 of
    # the model's largest gradient instead of its own size.
    floor = 1e-4 * max(g.abs().max().item() for g in grads.values())
    exact = None
    for name, grad in grads.items():
        err = (fast_grads[name] - grad).abs().max().item()
        limit = 1e-4 * max(grad.abs().max().item(), floor)
        if err > limit:
            # A gradient summed over many pixels with cancellation (the
            # classifier weight of a deep model): both float32 paths are
            # then measured against float64 of the plain model, and the
            # kernel must be no further from it than twice plain float32.
            if exact is None:
                exact = train_step(copy.deepcopy(plain).double(),
                                   x.double())[1]
            truth = exact[name].float()
            plain_err = (grad - truth).abs().max().item()
            fast_err = (fast_grads[name] - truth).abs().max().item()
            assert fast_err <= 2 * plain_err, (path, name, err, fast_err,
                                               plain_err)


# ---------------------------------------------------------------------------
# Where models are built: init_model and the tools
# ---------------------------------------------------------------------------
def test_init_model_takes_the_mode_from_the_argument_or_the_config():
    from dpt_mm.apis import init_model
    path = osp.join(ROOT, 'configs', 'toy', 'dpt_toy_depth.py')

    def kinds(model):
        return {type(m) for m in model.modules()}

    assert Config.fromfile(path).accel == 'auto'  # default_runtime.py
    on = init_model(path, accel='on')
    assert {OneDNNLinear, BandedConv2d} <= kinds(on)
    off = init_model(path, cfg_options={'accel': 'off'})
    assert not {OneDNNLinear, BandedConv2d} & kinds(off)
    with pytest.raises(ValueError, match="config key 'accel'"):
        init_model(path, cfg_options={'accel': 'fastest'})


def _load_tool(name):
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        f'dpt_tool_{name}', osp.join(ROOT, 'tools', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize('tool,args', [
    ('train', ['cfg.py']), ('test', ['cfg.py', 'ckpt.pth']),
    ('infer', ['cfg.py', 'ckpt.pth', 'img.png', '--out-dir', 'out'])])
def test_tools_take_an_accel_flag(monkeypatch, capsys, tool, args):
    monkeypatch.setenv('LOCAL_RANK', '0')  # parse_args sets it if unset
    module = _load_tool(tool)

    def parse(argv):
        monkeypatch.setattr('sys.argv', [f'{tool}.py', *argv])
        return module.parse_args(argv) if tool == 'infer' \
            else module.parse_args()

    assert parse(args).accel is None  # the config decides
    assert parse(args + ['--accel', 'off']).accel == 'off'
    with pytest.raises(SystemExit):
        parse(args + ['--accel', 'fast'])
    assert "invalid choice: 'fast'" in capsys.readouterr().err

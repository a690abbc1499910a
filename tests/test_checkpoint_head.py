"""checkpoint_conv_classifier: the plain head's values and gradients,
BN statistics moved once, dropout masks replayed, only bands alive."""
import copy

import pytest
import torch
import torch.nn as nn
import torch.utils.checkpoint as cp
from mmcv.cnn import ConvModule

from dpt_mm.models.layers import (Dropout, checkpoint_conv_classifier,
                                  conv_classifier, fusable_conv_classifier)
from toy_utils import load_bench


def make_head(in_ch=6, ch=8, classes=5, bias=False, dilation=1,
              dropout=None, dtype=torch.float64):
    torch.manual_seed(0)
    conv = ConvModule(in_ch, ch, 3, padding=dilation, dilation=dilation,
                      bias=bias, norm_cfg=dict(type='BN')).train()
    # Non-trivial affine BN, so γ and β matter in every gradient.
    nn.init.uniform_(conv.bn.weight, 0.5, 1.5)
    nn.init.uniform_(conv.bn.bias, -0.2, 0.2)
    return conv.to(dtype), dropout, nn.Conv2d(ch, classes, 1).to(dtype)


def step(fn, conv, dropout, cls, x, g):
    x = x.clone().requires_grad_()
    out = fn(conv, dropout, cls, x)
    out.backward(g)
    params = [*conv.parameters(), *cls.parameters()]
    return out, [x.grad] + [p.grad for p in params], [
        b.clone() for b in conv.buffers()]


def plain(conv, dropout, cls, x):
    return conv_classifier(conv, dropout, cls, x)


@pytest.mark.parametrize('rows', [None, 1, 3, 50])
@pytest.mark.parametrize('channels_last', [False, True])
@pytest.mark.parametrize('bias,dilation', [(False, 1), (True, 2)])
@pytest.mark.parametrize('dropout', [None, nn.Dropout(0.0),
                                     nn.Dropout2d(0.0)])
def test_same_as_plain_head(rows, channels_last, bias, dilation, dropout):
    conv, drop, cls = make_head(bias=bias, dilation=dilation,
                                dropout=dropout)
    x = torch.randn(2, 6, 13, 7, dtype=torch.float64)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    g = torch.randn(2, 5, 13, 7, dtype=torch.float64)
    ref = step(plain, copy.deepcopy(conv), drop, copy.deepcopy(cls), x, g)
    got = step(lambda *a: checkpoint_conv_classifier(*a, rows=rows),
               conv, drop, cls, x, g)
    assert torch.allclose(got[0], ref[0], atol=1e-12)
    for a, b in zip(got[1] + got[2], ref[1] + ref[2]):
        assert torch.allclose(a.double(), b.double(), atol=1e-11)
    # Running statistics moved once, as without checkpointing.
    assert int(conv.bn.num_batches_tracked) == 1


def test_gradcheck():
    conv, drop, cls = make_head(in_ch=3, ch=4, classes=2)
    conv.bn.momentum = 0.0  # gradcheck calls forward many times
    x = torch.randn(2, 3, 5, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda t: checkpoint_conv_classifier(conv, drop, cls, t, rows=2),
        (x,))


@pytest.mark.parametrize('kind', ['element', 'fast', 'channel'])
def test_dropout_masks_replayed_and_rng_stream_kept(kind):
    """With an identity classifier and BN shifted so ReLU passes
    everything, the output is the dropout mask times the BN output; the
    gradients must be those of that very mask."""
    dropout = dict(element=nn.Dropout, fast=Dropout,
                   channel=nn.Dropout2d)[kind](0.5)
    conv, drop, cls = make_head(ch=16, classes=16, dropout=dropout)
    nn.init.constant_(conv.bn.bias, 10.0)
    with torch.no_grad():
        cls.weight.copy_(torch.eye(16).view(16, 16, 1, 1))
        cls.bias.zero_()
    x = torch.randn(2, 6, 12, 5, dtype=torch.float64)
    g = torch.randn(2, 16, 12, 5, dtype=torch.float64)
    torch.manual_seed(1)
    x1 = x.clone().requires_grad_()
    out = checkpoint_conv_classifier(conv, drop, cls, x1, rows=5)
    after_forward = torch.get_rng_state()
    out.backward(g)
    assert torch.equal(torch.get_rng_state(), after_forward)
    mask = (out != 0).double() * 2
    assert 0.2 < (mask > 0).double().mean() < 0.8
    if kind == 'channel':  # one draw per sample and channel
        assert torch.equal(mask.amax((2, 3)), mask.amin((2, 3)))
    ref_conv, ref_cls = make_head(ch=16, classes=16)[0], copy.deepcopy(cls)
    nn.init.constant_(ref_conv.bn.bias, 10.0)
    x2 = x.clone().requires_grad_()
    ref = ref_cls(ref_conv(x2) * mask)
    ref.backward(g)
    assert torch.allclose(out, ref, atol=1e-12)
    assert torch.allclose(x1.grad, x2.grad, atol=1e-11)
    for a, b in zip([*conv.parameters(), *cls.parameters()],
                    [*ref_conv.parameters(), *ref_cls.parameters()]):
        assert torch.allclose(a.grad, b.grad, atol=1e-10)


def test_less_alive_than_torch_checkpoint():
    """Peak live bytes of forward + backward: torch.utils.checkpoint holds
    the recomputed conv output, the ReLU gradient and BN's two buffers at
    once; the banded backward holds the input, its gradient, the
    incoming gradient and bands."""
    conv, drop, cls = make_head(in_ch=16, ch=32, classes=4,
                                dropout=nn.Dropout(0.1),
                                dtype=torch.float32)
    x = torch.randn(2, 16, 128, 32, requires_grad=True)
    g = torch.randn(2, 4, 128, 32)
    out_bytes = 2 * 32 * 128 * 32 * 4

    def run(fn):
        def go():
            x.grad = None
            fn(conv, drop, cls, x).backward(g)
        return load_bench().step_peak_bytes(go, torch.device('cpu'))

    torch_cp = run(lambda *a: cp.checkpoint(conv_classifier, *a,
                                            use_reentrant=False))
    banded = run(lambda *a: checkpoint_conv_classifier(*a, rows=8))
    assert banded + 2 * out_bytes <= torch_cp, (banded, torch_cp)
    assert banded < out_bytes + 2 * x.numel() * 4 + g.numel() * 4, banded


def test_which_heads_qualify_and_clear_errors():
    conv, _, cls = make_head()
    assert fusable_conv_classifier(conv, None)
    assert fusable_conv_classifier(conv, nn.Dropout(0.1))
    assert fusable_conv_classifier(conv, Dropout(0.1))
    assert not fusable_conv_classifier(conv, nn.AlphaDropout(0.1))
    gn = ConvModule(6, 8, 3, padding=1,
                    norm_cfg=dict(type='GN', num_groups=2))
    assert not fusable_conv_classifier(gn, None)
    assert not fusable_conv_classifier(conv.eval(), None)  # running stats
    with pytest.raises(ValueError, match='GroupNorm'):
        checkpoint_conv_classifier(gn, None, cls, torch.randn(1, 6, 4, 4))
    with pytest.raises(ValueError, match='B×C×H×W'):
        checkpoint_conv_classifier(conv.train(), None, cls,
                                   torch.randn(6, 4, 4, dtype=torch.float64))


@pytest.mark.parametrize('case', ['bfloat16', 'autocast'])
def test_low_precision_falls_back_to_torch_checkpoint(monkeypatch, case):
    calls = []
    checkpoint = cp.checkpoint

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return checkpoint(*args, **kwargs)

    monkeypatch.setattr(cp, 'checkpoint', spy)
    dtype = torch.bfloat16 if case == 'bfloat16' else torch.float32
    conv, drop, cls = make_head(dtype=dtype)
    ref = copy.deepcopy(conv)
    x = torch.randn(2, 6, 8, 5, dtype=dtype, requires_grad=True)
    with torch.autocast('cpu', enabled=case == 'autocast'):
        out = conv_classifier(conv, drop, cls, x, with_cp=True)
        ref(x.detach())
    out.float().sum().backward()
    assert len(calls) == 1 and calls[0]['use_reentrant'] is False
    assert x.grad is not None and conv.conv.weight.grad is not None
    # The recomputation left BatchNorm's running statistics as one
    # forward set them.
    for name, buf in ref.norm.named_buffers():
        torch.testing.assert_close(getattr(conv.norm, name), buf, msg=name)


def test_frozen_conv_weight_gets_no_gradient():
    conv, drop, cls = make_head()
    conv.conv.weight.requires_grad_(False)
    x = torch.randn(2, 6, 9, 5, dtype=torch.float64)
    g = torch.randn(2, 5, 9, 5, dtype=torch.float64)
    ref_conv, ref_cls = copy.deepcopy(conv), copy.deepcopy(cls)
    ref = step(plain, ref_conv, drop, ref_cls, x, g)
    got = step(lambda *a: checkpoint_conv_classifier(*a, rows=2),
               conv, drop, cls, x, g)
    assert conv.conv.weight.grad is None
    for a, b in zip(got[1], ref[1]):
        assert (a is None) == (b is None)
        if a is not None:
            assert torch.allclose(a, b, atol=1e-11)

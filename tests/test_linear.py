"""The oneDNN-routed Linear: same function and gradients as nn.Linear."""
import copy

import pytest
import torch
import torch.nn as nn
from torch.profiler import ProfilerActivity, profile

from dpt_mm.models.layers import Linear, linear, linear_backend

needs_onednn = pytest.mark.skipif(
    not torch.backends.mkldnn.is_available(), reason='oneDNN not built in')


def _ops(fn) -> set:
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    return {event.key for event in prof.key_averages()}


def _pair(in_features: int = 24, out_features: int = 40, bias: bool = True):
    torch.manual_seed(0)
    ref = nn.Linear(in_features, out_features, bias=bias).double()
    ours = Linear(in_features, out_features, bias=bias)
    ours.load_state_dict({k: v.float() for k, v in ref.state_dict().items()})
    return ours, ref


@needs_onednn
@pytest.mark.parametrize('bias', [True, False])
@pytest.mark.parametrize('make_x', [
    lambda: torch.randn(7, 24),
    lambda: torch.randn(2, 5, 24),
    lambda: torch.randn(5, 2, 24).transpose(0, 1),  # non-contiguous
    lambda: torch.randn(1, 24),
    lambda: torch.randn(2, 3, 4, 24),
])
def test_forward_and_gradients_match_float64_reference(make_x, bias):
    ours, ref = _pair(bias=bias)
    x = make_x()
    x64 = x.detach().double().requires_grad_()
    x32 = x.detach().clone().requires_grad_()
    out, out_ref = ours(x32), ref(x64)
    assert out.shape == out_ref.shape and out.dtype == torch.float32
    assert torch.allclose(out.double(), out_ref, rtol=1e-5, atol=1e-5)
    grad = torch.randn_like(out_ref)
    out.backward(grad.float())
    out_ref.backward(grad)
    assert torch.allclose(x32.grad.double(), x64.grad, atol=1e-5)
    for name, param in ours.named_parameters():
        ref_grad = dict(ref.named_parameters())[name].grad
        assert torch.allclose(param.grad.double(), ref_grad, atol=1e-4), name


@needs_onednn
def test_onednn_backend_runs_convolution_not_blas():
    ours, _ = _pair()
    x = torch.randn(2, 9, 24, requires_grad=True)
    ops = _ops(lambda: ours(x).sum().backward())
    assert 'aten::convolution' in ops and 'aten::addmm' not in ops
    with linear_backend('blas'):
        ops = _ops(lambda: ours(x).sum().backward())
    assert 'aten::addmm' in ops and 'aten::convolution' not in ops


def test_falls_back_where_onednn_does_not_apply():
    ours, _ = _pair()
    for x in (torch.randn(0, 24), torch.randn(3, 24).double()):
        lin = ours.double() if x.dtype == torch.float64 else ours
        assert 'aten::convolution' not in _ops(lambda: lin(x))
        assert lin(x).shape == (x.shape[0], 40)
    ours = ours.float()
    with torch.autocast('cpu', dtype=torch.bfloat16):
        ops = _ops(lambda: ours(torch.randn(3, 24)))
    assert 'aten::convolution' not in ops


def test_keys_and_functional_form():
    ours, _ = _pair()
    assert isinstance(ours, nn.Linear)
    assert set(ours.state_dict()) == {'weight', 'bias'}
    x = torch.randn(4, 24)
    assert torch.allclose(linear(x, ours.weight, ours.bias),
                          torch.nn.functional.linear(x, ours.weight,
                                                     ours.bias), atol=1e-5)


def test_bad_backend_name_is_named():
    with pytest.raises(ValueError, match="one of .*'onednn'.*got 'mkl'"):
        with linear_backend('mkl'):
            pass


def test_module_copy_keeps_routing():
    ours, _ = _pair()
    clone = copy.deepcopy(ours)
    assert type(clone) is Linear

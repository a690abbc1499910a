"""dpt_mm's Dropout: nn.Dropout's distribution, scaling and gradients with
a fast CPU mask that follows torch's seed; F.dropout wherever it cannot
run."""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from dpt_mm.models.layers import Dropout, dropout, dropout_mask


@pytest.mark.parametrize('p', [0.1, 0.5, 0.9])
def test_keep_rate_and_independence(p):
    x = torch.empty(4, 64, 64, 64)
    mask = dropout_mask(x, p).double()
    q, n = 1 - p, mask.numel()
    sigma = (q * p / n)**0.5
    assert abs(mask.mean().item() - q) < 5 * sigma
    # Neighbours in memory are independent: P(both kept) = q².
    flat = mask.flatten()
    both = (flat[1:] * flat[:-1]).mean().item()
    assert abs(both - q * q) < 5 * (q * q * (1 - q * q) / n)**0.5 * 2


def test_values_scale_and_gradient_match_the_mask():
    torch.manual_seed(0)
    x = torch.randn(2, 8, 16, 16, dtype=torch.float64, requires_grad=True)
    out = dropout(x, 0.25)
    kept = out != 0
    assert torch.allclose(out[kept], x[kept] / 0.75, rtol=0, atol=1e-15)
    g = torch.randn_like(out)
    out.backward(g)
    assert torch.allclose(x.grad, g * kept / 0.75, rtol=0, atol=1e-15)
    assert torch.autograd.gradcheck(
        lambda t: (torch.manual_seed(3), dropout(t, 0.3))[1],
        (x.detach()[:1, :2].clone().requires_grad_(), ))


def test_float32_equals_f_dropout_with_the_same_mask():
    x = torch.randn(3, 5, 7)
    torch.manual_seed(1)
    out = dropout(x, 0.1)
    torch.manual_seed(1)
    mask = dropout_mask(x, 0.1)
    # F.dropout's CPU kernel: x * (bernoulli / (1 - p)).
    assert torch.equal(out, x * (mask.float() / (1 - 0.1)))


def test_follows_torch_seed_and_advances_it():
    x = torch.randn(2, 3, 9, 9)
    torch.manual_seed(5)
    a, b = dropout(x, 0.5), dropout(x, 0.5)
    torch.manual_seed(5)
    assert torch.equal(dropout(x, 0.5), a)
    assert not torch.equal(a, b)


def test_mask_keeps_the_input_layout():
    x = torch.randn(2, 6, 5, 4).contiguous(memory_format=torch.channels_last)
    mask = dropout_mask(x, 0.5)
    assert mask.stride() == x.stride()
    out = dropout(x, 0.5)
    assert out.is_contiguous(memory_format=torch.channels_last)
    # A non-dense band of a channels-last map.
    band = x[:, :, 1:3]
    out = dropout(band, 0.5)
    kept = out != 0
    assert torch.allclose(out[kept], band[kept] * 2)


def test_module_is_an_nn_dropout():
    m = Dropout(0.2)
    assert isinstance(m, nn.Dropout) and m.p == 0.2
    assert repr(m) == 'Dropout(p=0.2, inplace=False)'
    x = torch.randn(4, 5)
    assert torch.equal(m.eval()(x), x)
    assert torch.equal(dropout(x, 0.0), x)
    assert torch.equal(dropout(x, 1.0), torch.zeros_like(x))
    # A threshold that rounds to 2^32 keeps nothing (no uint32 overflow).
    assert not dropout_mask(x, 1 - 2**-40).any()


def test_falls_back_to_f_dropout():
    x = torch.randn(4, 5)
    y = x.clone()
    torch.manual_seed(2)
    dropout(y, 0.5, inplace=True)  # in place: F.dropout's own
    torch.manual_seed(2)
    assert torch.equal(y, F.dropout(x, 0.5))
    meta = torch.empty(4, 5, device='meta')
    assert dropout(meta, 0.5).device.type == 'meta'


def test_bad_probability_and_device_are_clear_errors():
    with pytest.raises(ValueError, match=r'in \[0, 1\], got 1.5'):
        dropout(torch.randn(3), 1.5)
    with pytest.raises(ValueError, match='CPU masks; x is on meta'):
        dropout_mask(torch.empty(3, device='meta'), 0.5)

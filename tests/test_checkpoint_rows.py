"""checkpoint_rows: same values and gradients, masks replayed, less alive."""
import pytest
import torch
import torch.nn as nn

from dpt_mm.models.layers import checkpoint_rows


def per_pixel_segment(p: float = 0.0) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Dropout(p), nn.Conv2d(6, 5, 1), nn.ReLU())


@pytest.mark.parametrize('rows', [None, 1, 3, 16])
@pytest.mark.parametrize('channels_last', [False, True])
def test_same_output_and_gradients_without_randomness(rows, channels_last):
    seg = per_pixel_segment().train()
    x = torch.randn(2, 6, 7, 9)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    g = torch.randn(2, 5, 7, 9)
    ref_x = x.clone().requires_grad_()
    seg(ref_x).backward(g)
    ref = [ref_x.grad] + [p.grad.clone() for p in seg.parameters()]
    seg.zero_grad()
    x.requires_grad_()
    out = checkpoint_rows(seg, x, module=seg, rows=rows)
    assert torch.allclose(out, seg(x), atol=1e-6)
    out.backward(g)
    for got, want in zip([x.grad] + [p.grad for p in seg.parameters()],
                         ref):
        assert torch.allclose(got, want, atol=1e-5)


def test_dropout_masks_replayed_and_rng_stream_kept():
    """Backward's recomputation draws the forward masks: the gradient of
    a dropout is g·mask/(1−p), and mask is where the output is non-zero."""
    drop = nn.Dropout(0.5).train()
    x = (torch.rand(2, 3, 10, 8) + 0.5).requires_grad_()
    g = torch.randn(2, 3, 10, 8)
    torch.manual_seed(1)
    out = checkpoint_rows(drop, x, rows=3)
    after_forward = torch.get_rng_state()
    out.backward(g)
    assert torch.equal(torch.get_rng_state(), after_forward)
    mask = (out != 0).float()
    assert 0.3 < mask.mean() < 0.7
    assert torch.allclose(x.grad, g * mask * 2)


def test_only_one_band_alive_in_backward():
    """Peak of saved activations during backward: one band, not all."""
    seg = nn.Sequential(nn.Conv2d(8, 8, 1), nn.ReLU(), nn.Conv2d(8, 8, 1))
    x = torch.randn(1, 8, 64, 16, requires_grad=True)
    saved = []

    def pack(t):
        saved.append(t.numel())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        checkpoint_rows(seg, x, module=seg, rows=8).sum().backward()
    # Forward saves x only; each band's recomputation saves band-sized
    # tensors (the input and the ReLU output: 8 rows of 8×16).
    assert max(saved) == x.numel()
    assert sorted(saved)[-2] <= 8 * 16 * 8


def test_bad_input_named():
    with pytest.raises(ValueError, match='B×C×H×W'):
        checkpoint_rows(nn.Identity(), torch.randn(3, 4))

"""dpt_mm's Conv2d: nn.Conv2d's function, parameters and gradients, with
the weight gradient summed over row bands on CPU."""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule, build_conv_layer

from dpt_mm.models.layers import Conv2d, conv2d, conv_input_rows
from dpt_mm.models.layers.conv import _BandedWeightGrad


def grads(fn, x, w, b, g):
    x, w = x.clone().requires_grad_(), w.clone().requires_grad_()
    b = None if b is None else b.clone().requires_grad_()
    out = fn(x, w, b)
    out.backward(g)
    return [out, x.grad, w.grad] + ([] if b is None else [b.grad])


@pytest.mark.parametrize('rows', [None, 1, 2, 5])
@pytest.mark.parametrize('kernel,padding,dilation', [
    (3, (1, 1), (1, 1)), (3, (2, 2), (2, 2)), (3, (0, 1), (1, 1)),
    ((3, 1), (1, 0), (1, 1)), (1, (0, 0), (1, 1))])
@pytest.mark.parametrize('bias', [False, True])
@pytest.mark.parametrize('channels_last', [False, True])
def test_same_values_and_gradients_as_f_conv2d(rows, kernel, padding,
                                                dilation, bias,
                                                channels_last):
    torch.manual_seed(0)
    k = (kernel, kernel) if isinstance(kernel, int) else kernel
    x = torch.randn(2, 4, 11, 6, dtype=torch.float64)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    w = torch.randn(5, 4, *k, dtype=torch.float64)
    b = torch.randn(5, dtype=torch.float64) if bias else None
    out_shape = F.conv2d(x, w, b, 1, padding, dilation).shape
    g = torch.randn(out_shape, dtype=torch.float64)
    ref = grads(lambda *a: F.conv2d(*a, 1, padding, dilation), x, w, b, g)
    got = grads(lambda *a: conv2d(*a, (1, 1), padding, dilation, 1,
                                  rows=rows), x, w, b, g)
    for a, r in zip(got, ref):
        assert torch.allclose(a, r, atol=1e-12), (a - r).abs().max()


def test_banded_path_is_taken_and_gradcheck():
    x = torch.randn(1, 2, 7, 5, dtype=torch.float64, requires_grad=True)
    w = torch.randn(3, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    b = torch.randn(3, dtype=torch.float64, requires_grad=True)
    out = conv2d(x, w, b, padding=(1, 1), rows=2)
    assert out.grad_fn.name().startswith(_BandedWeightGrad.__name__)
    assert torch.autograd.gradcheck(
        lambda *a: conv2d(*a, padding=(1, 1), rows=2), (x, w, b))


@pytest.mark.parametrize('case', ['stride', 'groups', 'same', 'frozen',
                                  'one_band', 'no_grad'])
def test_plain_f_conv2d_where_banding_does_not_apply(case):
    x = torch.randn(1, 4, 9, 9)
    w = torch.randn(4, 4 // (2 if case == 'groups' else 1), 3, 3,
                    requires_grad=case != 'frozen')
    kwargs = dict(stride=(2, 2) if case == 'stride' else (1, 1),
                  padding='same' if case == 'same' else (1, 1),
                  groups=2 if case == 'groups' else 1,
                  rows=9 if case == 'one_band' else 2)
    with torch.set_grad_enabled(case != 'no_grad'):
        out = conv2d(x, w, **kwargs)
        ref = F.conv2d(x, w, None, kwargs['stride'], kwargs['padding'],
                       (1, 1), kwargs['groups'])
    assert torch.equal(out, ref)
    name = out.grad_fn.name() if out.grad_fn is not None else ''
    assert not name.startswith(_BandedWeightGrad.__name__)


def test_band_height_must_be_positive():
    x = torch.randn(1, 2, 7, 5)
    w = torch.randn(3, 2, 3, 3, requires_grad=True)
    with pytest.raises(ValueError, match='rows must be >= 1, got 0'):
        conv2d(x, w, padding=(1, 1), rows=0)


def test_conv_input_rows_pads_only_outside_the_map():
    x = torch.arange(2 * 6 * 1.).view(1, 1, 6, 2)
    rows, first, pad = conv_input_rows(x, 0, 2, 3, 1, 1)
    assert (first, pad) == (0, 1) and rows.shape[2] == 4
    assert torch.equal(rows[:, :, 0], torch.zeros(1, 1, 2))
    rows, first, pad = conv_input_rows(x, 2, 4, 3, 1, 1)
    assert (first, pad) == (1, 0)
    assert rows.data_ptr() == x[:, :, 1].data_ptr()  # a view, no copy
    rows, first, pad = conv_input_rows(x, 4, 6, 5, 2, 1)
    assert (first, pad) == (2, 0) and rows.shape[2] == 6


def test_module_is_a_drop_in_nn_conv2d():
    torch.manual_seed(0)
    ref = nn.Conv2d(4, 6, 3, padding=1)
    conv = Conv2d(4, 6, 3, padding=1)
    assert isinstance(conv, nn.Conv2d) and repr(conv) == repr(ref)
    conv.load_state_dict(ref.state_dict())
    x = torch.randn(2, 4, 40, 8)
    assert torch.allclose(conv(x), ref(x))
    assert isinstance(build_conv_layer(dict(type='DPTConv2d'), 4, 6, 3),
                      Conv2d)
    module = ConvModule(4, 6, 3, padding=1, conv_cfg=dict(type='DPTConv2d'),
                        norm_cfg=dict(type='BN'))
    assert type(module.conv) is Conv2d
    # Non-zero padding modes keep nn.Conv2d's own path.
    reflect = Conv2d(4, 6, 3, padding=1, padding_mode='reflect')
    ref_reflect = nn.Conv2d(4, 6, 3, padding=1, padding_mode='reflect')
    ref_reflect.load_state_dict(reflect.state_dict())
    assert torch.equal(reflect(x), ref_reflect(x))


@pytest.mark.parametrize('head', ['DPTSegHead', 'DPTFCNHead'])
def test_seg_heads_use_it_unless_configured_otherwise(head):
    from mmseg.registry import MODELS
    import dpt_mm  # noqa: F401
    cfg = dict(type=head, in_channels=8, channels=8, num_classes=3)
    if head == 'DPTFCNHead':
        cfg.update(num_convs=1, concat_input=False)

    def convs(built):
        return [type(m.conv) for m in built.modules()
                if isinstance(m, ConvModule)]

    assert convs(MODELS.build(cfg)) == [Conv2d]
    assert convs(MODELS.build(dict(cfg, conv_cfg=dict(
        type='Conv2d')))) == [nn.Conv2d]

"""Chunked resize + cross-entropy against mmseg's unfused loss."""
import copy
import importlib

import pytest
import torch
import torch.nn.functional as F

import dpt_mm  # noqa: F401,I001  registers; shim before any mmseg import
from dpt_mm.models.decode_heads import fused_loss
from dpt_mm.models.losses import resize_cross_entropy
from mmengine.structures import PixelData
from mmseg.models.losses import CrossEntropyLoss, accuracy
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

# The modules (the package attributes of these names are functions).
rce_module = importlib.import_module(
    'dpt_mm.models.losses.resize_cross_entropy')
TOL = 1e-5  # relative, float32


def reference(logits, label, align_corners, **ce):
    """mmseg: bilinear resize → CrossEntropyLoss → accuracy."""
    ignore_index = ce.pop('ignore_index', 255)
    x = F.interpolate(logits, size=label.shape[1:], mode='bilinear',
                      align_corners=align_corners)
    loss = CrossEntropyLoss(**ce)(x, label, ignore_index=ignore_index)
    return loss, accuracy(x, label, ignore_index=ignore_index)


def rel(a, b):
    """max |a − b| / max |b|."""
    return ((a.double() - b.double()).abs().max() /
            b.double().abs().max().clamp_min(1e-30)).item()


def compare(logits, label, align_corners, chunk_rows=None, **ce):
    """Loss, accuracy and gradient differences, chunked vs reference."""
    logits = logits.detach().requires_grad_()
    ref_loss, ref_acc = reference(logits, label, align_corners,
                                  **copy.deepcopy(ce))
    ref_grad, = torch.autograd.grad(ref_loss, logits)
    loss, acc = resize_cross_entropy(logits, label,
                                     align_corners=align_corners,
                                     chunk_rows=chunk_rows, **ce)
    grad, = torch.autograd.grad(loss, logits)
    assert loss.shape == ref_loss.shape and acc.shape == ref_acc.shape
    assert loss.dtype == ref_loss.dtype and grad.dtype == logits.dtype
    return rel(loss, ref_loss), rel(acc, ref_acc), rel(grad, ref_grad)


def random_case(batch, classes, low, high, ignore=0.2, seed=0):
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(batch, classes, *low, generator=gen) * 3
    label = torch.randint(0, classes, (batch, *high), generator=gen)
    label[torch.rand(batch, *high, generator=gen) < ignore] = 255
    return logits, label


SIZES = [((8, 8), (8, 8)),  # factor 1: the identity
         ((8, 8), (16, 16)), ((8, 8), (32, 32)), ((4, 4), (32, 32)),
         ((17, 23), (64, 80)),  # non-integer factors
         ((9, 6), (5, 13))]  # down in height, up in width


@pytest.mark.parametrize('low,high', SIZES)
@pytest.mark.parametrize('align_corners', [True, False])
@pytest.mark.parametrize('chunk_rows', [None, 1, 3, 7])
def test_matches_unfused_reference(low, high, align_corners, chunk_rows):
    logits, label = random_case(2, 5, low, high)
    diffs = compare(logits, label, align_corners, chunk_rows)
    assert max(diffs) <= TOL, diffs


@pytest.mark.parametrize('ce', [
    dict(avg_non_ignore=True),
    dict(loss_weight=0.4),
    dict(avg_non_ignore=True, loss_weight=0.2),
    # mmseg indexes class_weight by every label, ignored ones included, so
    # a class weight only works with an ignore index that is a class.
    dict(class_weight=[0.5, 1.0, 2.0, 0.1, 3.0], ignore_index=0),
    dict(class_weight=[0.5, 1.0, 2.0, 0.1, 3.0], ignore_index=0,
         avg_non_ignore=True, loss_weight=0.7),
    dict(class_weight=[0.5, 1.0, 2.0, 0.1, 3.0], ignore_index=7),
])
@pytest.mark.parametrize('align_corners', [True, False])
def test_options_match_unfused_reference(ce, align_corners):
    logits, label = random_case(3, 5, (9, 7), (20, 27))
    ignore_index = ce.get('ignore_index', 255)
    # With ignore_index 7 (not a class) no pixel is ignored.
    label[label == 255] = 1 if ignore_index == 7 else ignore_index
    diffs = compare(logits, label, align_corners, chunk_rows=4, **ce)
    assert max(diffs) <= TOL, diffs


@pytest.mark.parametrize('avg_non_ignore', [True, False])
def test_all_ignored_batch_is_zero_like_mmseg(avg_non_ignore):
    logits = torch.randn(2, 4, 5, 5, requires_grad=True)
    label = torch.full((2, 10, 10), 255)
    loss, acc = resize_cross_entropy(logits, label, align_corners=False,
                                     avg_non_ignore=avg_non_ignore)
    grad, = torch.autograd.grad(loss, logits)
    ref_loss, ref_acc = reference(logits, label, False,
                                  avg_non_ignore=avg_non_ignore)
    assert loss.item() == 0 == ref_loss.item()
    assert torch.equal(grad, torch.zeros_like(grad))
    # mmseg's eps over eps: an all-ignored batch has accuracy 100.
    torch.testing.assert_close(acc, ref_acc)


@pytest.mark.parametrize('low,high', [((8, 8), (16, 16)), ((8, 8), (8, 8))])
def test_channels_last_logits(low, high):
    """A conv hands over channels-last logits."""
    logits, label = random_case(2, 5, low, high)
    logits = logits.contiguous(memory_format=torch.channels_last)
    errors = compare(logits, label, align_corners=True, chunk_rows=3)
    assert max(errors) <= TOL, errors


def test_default_bands_by_memory(monkeypatch):
    """The default chunk size comes from CHUNK_BYTES (here ~3 rows)."""
    logits, label = random_case(2, 6, (7, 9), (25, 33))
    monkeypatch.setattr(rce_module, 'CHUNK_BYTES', 3 * 2 * 6 * 33 * 4)
    seen = []
    band = rce_module._band

    def spy(label, *args):
        seen.append(label.shape[1])
        return band(label, *args)

    monkeypatch.setattr(rce_module, '_band', spy)
    diffs = compare(logits, label, False)
    assert max(diffs) <= TOL, diffs
    # Forward: 9 bands (8 of 3 rows, 1 of 1); backward recomputes each.
    assert seen[:9] == [3] * 8 + [1] and len(seen) == 18


@pytest.mark.parametrize('align_corners', [True, False])
def test_gradcheck_float64(align_corners):
    logits, label = random_case(2, 3, (3, 4), (7, 9), ignore=0.3)
    logits = logits.double().requires_grad_()
    options = dict(ignore_index=255)
    if align_corners:  # class weights, with a class as the ignore index
        label[label == 255] = 1
        options = dict(class_weight=[1.0, 2.0, 0.5], ignore_index=1)
    assert torch.autograd.gradcheck(
        lambda x: resize_cross_entropy(
            x, label, align_corners=align_corners, chunk_rows=2,
            **options)[0], (logits, ))


@pytest.mark.parametrize('align_corners', [True, False])
def test_bfloat16_logits_like_mmseg_under_autocast(align_corners):
    """Under CPU autocast mmseg's resize stays in bfloat16 (CUDA's would run
    in float32) and its cross-entropy runs in float32: the chunked loss
    gives the same dtypes and, up to resized logits one bfloat16 step
    apart (rare: the float32 lerp before rounding differs from ATen's by
    an ulp at most), the same numbers."""
    logits, label = random_case(2, 5, (8, 8), (24, 20))
    logits = logits.bfloat16().requires_grad_()
    with torch.autocast('cpu', dtype=torch.bfloat16):
        loss, acc = resize_cross_entropy(logits, label,
                                         align_corners=align_corners,
                                         chunk_rows=5)
        ref_loss, ref_acc = reference(logits, label, align_corners)
    grad, = torch.autograd.grad(loss, logits)
    ref_grad, = torch.autograd.grad(ref_loss, logits)
    assert loss.dtype == ref_loss.dtype == torch.float32
    assert grad.dtype == torch.bfloat16
    assert rel(loss, ref_loss) <= 1e-4 and rel(acc, ref_acc) <= 1e-3
    assert rel(grad, ref_grad) <= 1e-2


@pytest.mark.parametrize('align_corners', [True, False])
def test_float32_logits_under_autocast_like_mmseg(align_corners):
    """float32 logits under CPU autocast: mmseg's resize and cross-entropy
    stay float32; so do ours (the band GEMM is not autocast to bfloat16)."""
    logits, label = random_case(2, 5, (8, 8), (24, 20))
    logits.requires_grad_()
    with torch.autocast('cpu', dtype=torch.bfloat16):
        loss, acc = resize_cross_entropy(logits, label,
                                         align_corners=align_corners,
                                         chunk_rows=5)
        ref_loss, ref_acc = reference(logits, label, align_corners)
    grad, = torch.autograd.grad(loss, logits)
    ref_grad, = torch.autograd.grad(ref_loss, logits)
    assert loss.dtype == ref_loss.dtype == torch.float32
    assert rel(loss, ref_loss) <= TOL and rel(acc, ref_acc) <= TOL
    assert rel(grad, ref_grad) <= TOL


def test_no_host_sync(monkeypatch):
    """No .item()/.tolist()/bool() of a tensor in the loss: it never waits
    for the device."""
    logits, label = random_case(2, 5, (8, 8), (24, 20))
    logits.requires_grad_()

    def forbidden(*args, **kwargs):
        raise AssertionError('host sync')

    for name in ('item', 'tolist', '__bool__'):
        monkeypatch.setattr(torch.Tensor, name, forbidden)
    loss, _ = resize_cross_entropy(logits, label, align_corners=False,
                                   chunk_rows=4, class_weight=[1.] * 5,
                                   avg_non_ignore=True)
    loss.backward()


@pytest.mark.parametrize('logits,label,error,match', [
    (torch.randn(2, 3, 4, 4), torch.zeros(3, 8, 8, dtype=torch.long),
     ValueError, r'logits \(2, 3, 4, 4\) and label \(3, 8, 8\)'),
    (torch.randn(2, 3, 4, 4), torch.zeros(2, 1, 8, 8, dtype=torch.long),
     ValueError, r'label \(2, 1, 8, 8\)'),
    (torch.randn(3, 4, 4), torch.zeros(2, 8, 8, dtype=torch.long),
     ValueError, r'logits \(3, 4, 4\)'),
    (torch.randn(2, 3, 4, 4), torch.zeros(2, 8, 8),
     TypeError, 'label must be torch.long'),
])
def test_bad_inputs_clear_errors(logits, label, error, match):
    with pytest.raises(error, match=match):
        resize_cross_entropy(logits, label, align_corners=False)


def test_bad_options_clear_errors():
    logits, label = random_case(2, 3, (4, 4), (8, 8))
    with pytest.raises(ValueError, match=r'class_weight has shape \(2,\)'):
        resize_cross_entropy(logits, label, align_corners=False,
                             class_weight=[1.0, 2.0])
    with pytest.raises(ValueError, match='chunk_rows'):
        resize_cross_entropy(logits, label, align_corners=False,
                             chunk_rows=0)


# ---------------------------------------------------------------------------
# Heads
# ---------------------------------------------------------------------------
CLASSES = 6
SEG_HEAD = dict(type='DPTSegHead', in_channels=8, channels=8,
                num_classes=CLASSES, norm_cfg=dict(type='BN'),
                align_corners=False)
FCN_HEAD = dict(type='FCNHead', in_channels=8, channels=8, in_index=1,
                num_convs=1, concat_input=False, num_classes=CLASSES,
                norm_cfg=dict(type='BN'), align_corners=False,
                loss_decode=dict(type='CrossEntropyLoss', loss_weight=0.4))


def samples(batch, size, seed=0):
    gen = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(batch):
        label = torch.randint(0, CLASSES, (1, *size), generator=gen)
        label[torch.rand(1, *size, generator=gen) < 0.1] = 255
        sample = SegDataSample()
        sample.gt_sem_seg = PixelData(data=label)
        sample.set_metainfo(dict(img_shape=size, ori_shape=size))
        out.append(sample)
    return out


def neck_outputs(batch=2, size=(8, 12), seed=1):
    gen = torch.Generator().manual_seed(seed)
    h, w = size
    return [torch.randn(batch, 8, h, w, generator=gen).requires_grad_(),
            torch.randn(batch, 8, h // 2, w // 2,
                        generator=gen).requires_grad_()]


def head_loss(cfg, data, inputs=None, seed=0, loss=None):
    """Loss dict and parameter + input gradients of one training step
    (``loss(head, inputs, data)``; default ``head.loss``)."""
    torch.manual_seed(0)
    head = MODELS.build(copy.deepcopy(cfg)).train()
    inputs = [x.detach().requires_grad_() for x in inputs or neck_outputs()]
    torch.manual_seed(seed)  # the dropout mask
    if loss is None:
        losses = head.loss(inputs, data, dict())
    else:
        losses = loss(head, inputs, data)
    total = sum(v for k, v in losses.items() if k.startswith('loss'))
    total.backward()
    grads = {n: p.grad for n, p in head.named_parameters()}
    grads.update({f'input{i}': x.grad for i, x in enumerate(inputs)
                  if x.grad is not None})
    return head, losses, grads


def assert_same_step(a, b):
    (_, losses_a, grads_a), (_, losses_b, grads_b) = a, b
    assert list(losses_a) == list(losses_b)
    for key in losses_a:
        assert rel(losses_a[key], losses_b[key]) <= TOL, key
    assert grads_a.keys() == grads_b.keys()
    for name in grads_a:
        assert rel(grads_a[name], grads_b[name]) <= TOL, name


def spy_calls(monkeypatch):
    calls = []

    def spy(*args, **kwargs):
        calls.append(kwargs['align_corners'])
        return resize_cross_entropy(*args, **kwargs)

    # Where the heads' loss terms find the plain kernel
    # (resize_cross_entropy_of).
    monkeypatch.setattr(rce_module, 'resize_cross_entropy', spy)
    return calls


@pytest.mark.parametrize('label_size', [(16, 24), (21, 30)])
def test_seg_head_chunked_equals_unfused(monkeypatch, label_size):
    data = samples(2, label_size)
    unfused = head_loss(dict(SEG_HEAD, chunked_loss=False), data)
    calls = spy_calls(monkeypatch)
    chunked = head_loss(SEG_HEAD, data)
    assert_same_step(chunked, unfused)
    assert list(chunked[1]) == ['loss_ce', 'acc_seg']
    # At twice the fused map (8×12) the head's ×2 upsample (align_corners
    # True) runs inside the loss; elsewhere forward's output is resized as
    # mmseg does (the head's align_corners=False).
    assert calls == [label_size == (16, 24)]


@pytest.mark.parametrize('norm', ['BN', 'GN'])
def test_seg_head_with_cp_same_step_less_saved(norm):
    """With dropout off the checkpointed step equals the plain one, BN's
    running statistics included (they move once)."""
    norm_cfg = dict(type='BN') if norm == 'BN' else dict(
        type='GN', num_groups=2)
    cfg = dict(SEG_HEAD, dropout_ratio=0.0, norm_cfg=norm_cfg)
    data = samples(2, (16, 24))
    plain = head_loss(cfg, data, seed=3)
    ckpt = head_loss(dict(cfg, with_cp=True), data, seed=3)
    assert_same_step(ckpt, plain)
    for (name, a), b in zip(plain[0].named_buffers(), ckpt[0].buffers()):
        assert torch.allclose(a.float(), b.float(), atol=1e-6), name
    inputs = neck_outputs()
    saved = {}
    for with_cp in (False, True):
        head = MODELS.build(dict(cfg, with_cp=with_cp)).train()
        saved[with_cp] = saved_bytes(lambda: head.loss(inputs, data, {}))[1]
    assert saved[True] < saved[False], saved


def test_seg_head_with_cp_replays_dropout():
    """Dropout under checkpointing: the recomputation replays the forward's
    mask (torch.utils.checkpoint restores the RNG state), so the gradient
    equals the plain step's under the same seed."""
    cfg = dict(SEG_HEAD, dropout_ratio=0.5)
    data = samples(2, (16, 24))
    assert_same_step(head_loss(dict(cfg, with_cp=True), data, seed=5),
                     head_loss(cfg, data, seed=5))


def test_seg_head_label_check_on_both_paths():
    for label_size in [(16, 24), (20, 30)]:
        data = samples(2, label_size)
        data[1].gt_sem_seg.data[0, 2, 3] = CLASSES
        data[1].set_metainfo(dict(seg_map_path='ann/bad.png'))
        with pytest.raises(ValueError, match=r'ann/bad.png: label values'):
            head_loss(SEG_HEAD, data)


def test_old_aux_head_name_builds_mmseg_fcn_head():
    """Configs and checkpoints naming DPTFCNHead still build (FCNHead, the
    same keys)."""
    old = MODELS.build(dict(FCN_HEAD, type='DPTFCNHead'))
    assert type(old) is type(MODELS.build(FCN_HEAD))


def test_two_ce_terms_keep_mmseg_keys():
    cfg = dict(SEG_HEAD, loss_decode=[
        dict(type='CrossEntropyLoss', loss_weight=0.4),
        dict(type='CrossEntropyLoss', loss_weight=0.1, avg_non_ignore=True),
        dict(type='CrossEntropyLoss', loss_weight=1.0, loss_name='loss_x')])
    data = samples(2, (16, 24))
    plain = head_loss(dict(cfg, chunked_loss=False), data)
    chunked = head_loss(cfg, data)
    assert list(chunked[1]) == ['loss_ce', 'loss_x', 'acc_seg']
    assert_same_step(chunked, plain)


@pytest.mark.parametrize('change', [
    dict(sampler=dict(type='OHEMPixelSampler', thresh=0.7, min_kept=50)),
    dict(loss_decode=dict(type='DiceLoss')),
    dict(loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=True)),
    dict(loss_decode=[dict(type='CrossEntropyLoss'),
                      dict(type='LovaszLoss', reduction='none')]),
])
def test_fallback_is_plain_mmseg(monkeypatch, change):
    calls = spy_calls(monkeypatch)
    data = samples(2, (16, 24))
    ours = head_loss(dict(SEG_HEAD, **change), data)
    plain = head_loss(dict(SEG_HEAD, chunked_loss=False, **change), data)
    assert ours[0].chunked_ce_losses() is None and not calls
    assert_same_step(ours, plain)


def saved_bytes(fn):
    """Bytes saved for backward while fn runs: summed over every save, and
    over the distinct storages (a tensor saved twice counted once)."""
    every, storages = [0], {}

    def pack(tensor):
        every[0] += tensor.numel() * tensor.element_size()
        storage = tensor.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return every[0], sum(storages.values())


def test_chunked_saves_less():
    """mmseg's path saves log_softmax's B×C×H×W output (twice: log_softmax
    and nll_loss); the chunked loss saves nothing of that size but its
    input, the logits, which it keeps for the bands' recomputation."""
    batch, classes, size = 2, 150, (64, 64)
    cfg = dict(SEG_HEAD, num_classes=classes)
    inputs = neck_outputs(batch, (size[0] // 2, size[1] // 2))
    data = [SegDataSample(gt_sem_seg=PixelData(
        data=torch.randint(0, classes, (1, *size)))) for _ in range(batch)]
    saved = {}
    for chunked in (True, False):
        head = MODELS.build(dict(cfg, chunked_loss=chunked)).train()
        saved[chunked] = saved_bytes(lambda: head.loss(inputs, data, {}))
    full_res = batch * classes * size[0] * size[1] * 4
    assert saved[False][0] - saved[True][0] >= full_res, saved
    # The ×2 upsample runs in the bands: nothing of the label size is kept,
    # not even forward's logits (the bands keep the fused map's).
    assert saved[True][1] < full_res / 2 <= saved[False][1], saved


def aux_loss(cfg, data, chunked, seed=0):
    """:func:`head_loss` through :func:`fused_loss.head_loss`, the
    segmentors' call for an mmseg head."""
    return head_loss(cfg, data, seed=seed, loss=lambda head, x, d:
                     fused_loss.head_loss(head, x, d, dict(), chunked))


@pytest.mark.parametrize('label_size', [(16, 24), (21, 30)])
def test_mmseg_fcn_head_chunked_equals_its_own_loss(monkeypatch,
                                                   label_size):
    """The auxiliary head stays mmseg's FCNHead; the segmentor's
    head_loss gives its loss and gradients band by band."""
    data = samples(2, label_size)
    plain = head_loss(FCN_HEAD, data)  # FCNHead.loss itself
    calls = spy_calls(monkeypatch)
    chunked = aux_loss(FCN_HEAD, data, chunked=True)
    assert calls == [False]
    assert_same_step(chunked, plain)
    calls.clear()
    assert_same_step(aux_loss(FCN_HEAD, data, chunked=False), plain)
    assert not calls
    # A sampler is not exact band by band: the head's own loss.
    ohem = dict(FCN_HEAD, sampler=dict(type='OHEMPixelSampler', thresh=0.7,
                                       min_kept=50))
    assert_same_step(aux_loss(ohem, data, chunked=True),
                     head_loss(ohem, data))
    assert not calls


def test_mmseg_fcn_head_chunked_saves_less():
    batch, classes, size = 2, 150, (64, 64)
    cfg = dict(FCN_HEAD, num_classes=classes, in_index=0)
    inputs = neck_outputs(batch, (size[0] // 2, size[1] // 2))
    data = [SegDataSample(gt_sem_seg=PixelData(
        data=torch.randint(0, classes, (1, *size)))) for _ in range(batch)]
    saved = {}
    for chunked in (True, False):
        head = MODELS.build(cfg).train()
        saved[chunked] = saved_bytes(lambda: fused_loss.head_loss(
            head, inputs, data, {}, chunked))
    full_res = batch * classes * size[0] * size[1] * 4
    assert saved[False][0] - saved[True][0] >= full_res, saved


def test_segmentor_aux_loss_chunked_same_step():
    """DPTEncoderDecoder with chunked_aux_loss on and off: same losses
    (mmseg's keys) and the same gradient for every parameter."""
    model = dict(type='DPTEncoderDecoder',
                 backbone=dict(type='DPTViT', img_size=32, embed_dims=16,
                               num_layers=2, num_heads=2, out_indices=(0, 1)),
                 neck=dict(type='DPTNeck', in_channels=16,
                           reassemble_channels=(8, 16),
                           resample_factors=(4, 2), channels=8),
                 decode_head=dict(SEG_HEAD, dropout_ratio=0.0),
                 auxiliary_head=[dict(FCN_HEAD, dropout_ratio=0.0),
                                 dict(FCN_HEAD, in_index=0,
                                      dropout_ratio=0.0)])
    data = samples(2, (32, 32))
    images = torch.randn(2, 3, 32, 32, generator=torch.Generator()
                         .manual_seed(2))
    steps = []
    for chunked in (True, False):
        torch.manual_seed(0)
        seg = MODELS.build(dict(model, chunked_aux_loss=chunked)).train()
        losses = seg.loss(images, data)
        sum(v for k, v in losses.items() if 'loss' in k).backward()
        steps.append((losses, {n: p.grad for n, p in seg.named_parameters()}))
    (ours, grads), (plain, plain_grads) = steps
    assert list(ours) == list(plain)
    assert {'aux_0.loss_ce', 'aux_1.acc_seg'} <= set(ours)
    for key in ours:
        assert rel(ours[key], plain[key]) <= TOL, key
    for name, grad in plain_grads.items():
        assert grad is not None, name
        assert rel(grads[name], grad) <= TOL, name


def test_config_check_knows_the_new_keys():
    from dpt_mm.models import ConfigError, check_model_config
    model = dict(type='EncoderDecoder',
                 backbone=dict(type='DPTViT', img_size=32, embed_dims=16,
                               num_layers=4, num_heads=2,
                               out_indices=(0, 1, 2, 3)),
                 neck=dict(type='DPTNeck', in_channels=16,
                           reassemble_channels=(8, 8, 16, 16), channels=8),
                 decode_head=dict(SEG_HEAD, with_cp=True,
                                  chunked_loss=False),
                 auxiliary_head=FCN_HEAD)
    check_model_config(model)
    model['decode_head'] = dict(SEG_HEAD, chunked_los=False)
    with pytest.raises(ConfigError, match="did you mean chunked_loss"):
        check_model_config(model)


def test_seg_configs_use_mmseg_fcn_aux_head():
    from mmengine.config import Config
    for name in ['configs/_base_/models/dpt_vit-b16_seg.py',
                 'configs/dpt_vitb_ade20k.py', 'configs/toy/dpt_toy_seg.py']:
        model = Config.fromfile(name).model
        assert model.auxiliary_head.type == 'FCNHead', name
        assert model.decode_head.type == 'DPTSegHead', name



def test_runs_off_cpu():
    """Nothing CPU-specific: on the meta device (standing for any other)
    the loss and its gradient have the right shapes, dtypes and device."""
    logits = torch.randn(2, 5, 8, 8, device='meta', requires_grad=True)
    label = torch.zeros(2, 16, 16, dtype=torch.long, device='meta')
    loss, acc = resize_cross_entropy(logits, label, align_corners=False,
                                     chunk_rows=5, class_weight=[1.0] * 5)
    assert loss.device.type == 'meta' and loss.shape == ()
    assert acc.shape == (1, ) and loss.dtype == torch.float32
    loss.backward()
    assert logits.grad.shape == logits.shape


def test_compiles_in_one_graph_forward_and_backward():
    logits, label = random_case(2, 5, (8, 8), (16, 16))
    logits.requires_grad_()

    def loss_fn(x, y):
        return resize_cross_entropy(x, y, align_corners=False,
                                    chunk_rows=8)[0]  # two bands

    torch._dynamo.reset()
    explanation = torch._dynamo.explain(loss_fn)(logits, label)
    assert explanation.graph_break_count == 0
    torch._dynamo.reset()
    compiled = torch.compile(loss_fn, backend='aot_eager', fullgraph=True)
    grad, = torch.autograd.grad(compiled(logits, label), logits)
    torch._dynamo.reset()
    ref, = torch.autograd.grad(loss_fn(logits, label), logits)
    assert rel(grad, ref) <= TOL

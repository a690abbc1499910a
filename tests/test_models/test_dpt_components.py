"""Behaviour of the DPT components: shapes, gradients, hooks, checkpointing."""
import copy

import pytest
import torch
from mmengine.config import Config

from dpt_mm.models.layers import resize_pos_embed
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from mmengine.structures import PixelData
from toy_utils import (HYBRID_NECK, TINY_HYBRID, TINY_NECK, TINY_VIT,
                       seg_samples)

PREPROC = dict(type='SegDataPreProcessor', mean=[127.5] * 3, std=[127.5] * 3,
               bgr_to_rgb=True, size_divisor=32, seg_pad_val=0)


def depth_model(backbone=TINY_VIT, neck=TINY_NECK, **head):
    head_cfg = dict(type='DPTDepthHead', in_channels=16, channels=8,
                    loss_decode=dict(type='ScaleShiftInvariantLoss'))
    head_cfg.update(head)
    return MODELS.build(
        dict(type='DPTDepthEstimator', data_preprocessor=PREPROC,
             backbone=copy.deepcopy(backbone), neck=copy.deepcopy(neck),
             decode_head=head_cfg, test_cfg=dict(mode='whole')))


def seg_model(backbone=TINY_VIT, neck=TINY_NECK, num_classes=5):
    norm = dict(type='BN')
    neck = dict(neck, fusion_norm_cfg=norm)
    return MODELS.build(
        dict(type='EncoderDecoder',
             data_preprocessor=dict(PREPROC, seg_pad_val=255),
             backbone=copy.deepcopy(backbone), neck=neck,
             decode_head=dict(type='DPTSegHead', in_channels=16, channels=16,
                              num_classes=num_classes, norm_cfg=norm),
             auxiliary_head=dict(type='DPTFCNHead', in_channels=16,
                                 channels=16, in_index=1, num_convs=1,
                                 concat_input=False,
                                 num_classes=num_classes, norm_cfg=norm,
                                 loss_decode=dict(type='CrossEntropyLoss',
                                                  loss_weight=0.2)),
             test_cfg=dict(mode='whole')))


def depth_samples(batch, size):
    samples = []
    for _ in range(batch):
        sample = SegDataSample()
        depth = torch.rand(1, *size) * 5 + 0.5
        sample.gt_depth_map = PixelData(data=depth)
        sample.set_metainfo(dict(img_shape=size, ori_shape=size,
                                 pad_shape=size))
        samples.append(sample)
    return samples


@pytest.mark.parametrize('size', [(32, 32), (64, 96), (96, 64)])
@pytest.mark.parametrize('backbone,neck', [(TINY_VIT, TINY_NECK),
                                           (TINY_HYBRID, HYBRID_NECK)])
def test_tensor_output_at_input_resolution(size, backbone, neck):
    depth = depth_model(backbone, neck).eval()
    seg = seg_model(backbone, neck).eval()
    x = torch.randn(2, 3, *size)
    with torch.no_grad():
        out = depth(x, mode='tensor')
        logits = seg(x, mode='tensor')
    assert out.shape == (2, 1, *size)
    assert (out >= 0).all()  # non-negative by the final ReLU
    assert logits.shape == (2, 5, *size)


def test_backbone_hooks_return_what_config_says():
    backbone = MODELS.build(dict(TINY_VIT, out_indices=(1, 3)))
    outs = backbone(torch.randn(2, 3, 48, 64))
    assert len(outs) == 2
    for feat, cls_token in outs:
        assert feat.shape == (2, 32, 3, 4)
        assert cls_token.shape == (2, 32)
    # The hooked map is block 1's output tokens, reshaped row-major.
    tokens, grid, _ = backbone.embed(torch.randn(1, 3, 48, 64))
    x = torch.randn(1, 3, 48, 64)
    tokens, grid, _ = backbone.embed(x)
    for layer in backbone.layers[:2]:
        tokens = layer(tokens)
    feat, cls_token = backbone(x)[0]
    torch.testing.assert_close(cls_token, tokens[:, 0])
    torch.testing.assert_close(feat[0, :, 1, 2], tokens[0, 1 + 1 * 4 + 2])

    hybrid = MODELS.build(TINY_HYBRID)
    outs = hybrid(torch.randn(1, 3, 64, 32))
    assert [tuple(o.shape) for o in outs[:2]] == [(1, 16, 16, 8),
                                                  (1, 32, 8, 4)]
    assert outs[2][0].shape == (1, 32, 4, 2)


def test_hooks_in_the_given_order_and_repeatable():
    """out_indices (3, 1, 1): block 3 first, block 1 twice (Transformers'
    backbone_out_indices allow both); a neck reading four repeated hooks
    builds and runs."""
    torch.manual_seed(0)
    x = torch.randn(1, 3, 32, 32)
    plain = MODELS.build(dict(TINY_VIT, out_indices=(1, 3))).eval()
    shuffled = MODELS.build(dict(TINY_VIT, out_indices=(3, 1, 1))).eval()
    shuffled.load_state_dict(plain.state_dict())
    with torch.no_grad():
        one, three = plain(x)
        outs = shuffled(x)
    assert len(outs) == 3
    for got, want in zip(outs, (three, one, one)):
        torch.testing.assert_close(got[0], want[0])
        torch.testing.assert_close(got[1], want[1])

    model = MODELS.build(dict(
        type='DepthEstimator',
        backbone=dict(TINY_VIT, out_indices=(0, 0, 1, 1)), neck=TINY_NECK,
        decode_head=dict(type='DPTDepthHead', in_channels=16, channels=8)))
    assert model(torch.randn(1, 3, 32, 32), mode='tensor').shape[-2:] == (
        32, 32)


def test_pos_embed_resize_exact_at_native_size_and_bilinear_elsewhere():
    pos = torch.randn(1, 1 + 6 * 6, 8)
    assert resize_pos_embed(pos, (6, 6)) is pos
    resized = resize_pos_embed(pos, (3, 9))
    assert resized.shape == (1, 1 + 27, 8)
    torch.testing.assert_close(resized[:, :1], pos[:, :1])
    grid = pos[:, 1:].reshape(1, 6, 6, 8).permute(0, 3, 1, 2)
    ref = torch.nn.functional.interpolate(grid, size=(3, 9), mode='bilinear',
                                          align_corners=False)
    torch.testing.assert_close(resized[:, 1:],
                               ref.permute(0, 2, 3, 1).reshape(1, 27, 8))


def test_input_not_multiple_of_patch_size_is_a_clear_error():
    backbone = MODELS.build(TINY_VIT)
    with pytest.raises(ValueError, match='not a multiple of the patch size'):
        backbone(torch.randn(1, 3, 40, 32))


@pytest.mark.parametrize('kind', ['depth', 'seg', 'hybrid_depth'])
def test_every_parameter_gets_a_gradient(kind):
    torch.manual_seed(0)
    if kind == 'seg':
        model = seg_model()
        samples = seg_samples(2, (32, 32), 5)
    else:
        backbone, neck = (TINY_HYBRID, HYBRID_NECK) if kind == 'hybrid_depth' \
            else (TINY_VIT, TINY_NECK)
        model = depth_model(backbone, neck)
        samples = depth_samples(2, (32, 32))
    model.init_weights()
    model.train()
    losses = model(torch.randn(2, 3, 32, 32), samples, mode='loss')
    total = sum(v for k, v in losses.items() if k.startswith(('decode.loss',
                                                            'aux.loss')))
    total.backward()
    missing = [n for n, p in model.named_parameters()
               if p.requires_grad and (p.grad is None or
                                       not torch.isfinite(p.grad).all() or
                                       p.grad.abs().sum() == 0)]
    assert not missing, f'parameters without gradient: {missing}'


def test_gradient_checkpointing_same_outputs_and_gradients():
    torch.manual_seed(0)
    plain = depth_model()
    plain.init_weights()
    ckpt = depth_model(dict(TINY_VIT, with_cp=True),
                       dict(TINY_NECK, with_cp=True))
    ckpt.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 32, 48)
    outs = []
    for model in (plain, ckpt):
        model.train()
        out = model(x, mode='tensor')
        out.square().mean().backward()
        outs.append((out, {n: p.grad.clone()
                           for n, p in model.named_parameters()}))
    torch.testing.assert_close(outs[0][0], outs[1][0])
    for name, grad in outs[0][1].items():
        torch.testing.assert_close(grad, outs[1][1][name], msg=name)


def test_neck_checkpointing_same_step_and_batchnorm_stats_once():
    """A segmentation neck (BatchNorm in the fusion units) with ``with_cp``:
    same outputs and gradients, and the recomputations (the per-block
    checkpoints and the finest block's nested lateral unit) leave the
    running statistics as one forward moves them."""
    torch.manual_seed(0)
    cfg = dict(TINY_NECK, fusion_norm_cfg=dict(type='BN'))
    plain = MODELS.build(cfg)
    ckpt = MODELS.build(dict(cfg, with_cp=True))
    ckpt.load_state_dict(plain.state_dict())
    feats = MODELS.build(TINY_VIT)(torch.randn(2, 3, 32, 48))
    results = []
    for neck in (plain, ckpt):
        neck.train()
        inputs = [(f.detach().requires_grad_(), c.detach())
                  for f, c in feats]
        outs = neck(inputs)
        sum(o.square().mean() for o in outs).backward()
        results.append((outs, [i[0].grad for i in inputs],
                        dict(neck.named_parameters()),
                        dict(neck.named_buffers())))
    (outs, in_grads, params, buffers), ckpt_result = results
    for a, b in zip(outs, ckpt_result[0]):
        torch.testing.assert_close(a, b)
    for a, b in zip(in_grads, ckpt_result[1]):
        torch.testing.assert_close(a, b)
    for name, p in params.items():
        torch.testing.assert_close(p.grad, ckpt_result[2][name].grad,
                                   msg=name)
    assert any('num_batches_tracked' in n for n in buffers)
    for name, buf in buffers.items():
        torch.testing.assert_close(buf, ckpt_result[3][name], msg=name)


def test_finest_fusion_block_recomputes_its_lateral_unit_alone():
    """Nested in the block's checkpoint, the lateral unit's four saved maps
    no longer live through the second unit's backward: the backward's
    peak of live tensor bytes drops by at least three maps."""
    from torch.utils.checkpoint import checkpoint

    from dpt_mm.models.layers import FeatureFusionBlock
    from toy_utils import load_bench
    block = FeatureFusionBlock(8, norm_cfg=dict(type='BN')).train()
    x, lateral = (torch.randn(2, 8, 32, 32, requires_grad=True)
                  for _ in range(2))
    map_bytes = x.numel() * x.element_size()
    peaks, grads = {}, {}
    for nested in (False, True):
        out = checkpoint(block, x, lateral, nested, use_reentrant=False)
        grad = torch.ones_like(out)
        peaks[nested] = load_bench().step_peak_bytes(
            lambda: out.backward(grad), torch.device('cpu'))
        grads[nested] = (x.grad, lateral.grad)
        x.grad = lateral.grad = None
    torch.testing.assert_close(grads[True], grads[False])
    assert peaks[False] - peaks[True] >= 3 * map_bytes, peaks


def test_frozen_stages_freeze_embeddings_and_first_blocks():
    backbone = MODELS.build(dict(TINY_VIT, frozen_stages=2))
    backbone.train()
    frozen = {n for n, p in backbone.named_parameters()
              if not p.requires_grad}
    assert {'cls_token', 'pos_embed', 'patch_embed.proj.weight'} <= frozen
    assert any(n.startswith('layers.1.') for n in frozen)
    assert not any(n.startswith('layers.2.') for n in frozen)


@pytest.mark.parametrize('readout', ['ignore', 'add', 'project'])
def test_readout_types(readout):
    neck = MODELS.build(dict(TINY_NECK, readout_type=readout))
    has_project = any('readout.project' in n
                      for n, _ in neck.named_parameters())
    assert has_project == (readout == 'project')
    backbone = MODELS.build(TINY_VIT)
    outs = neck(backbone(torch.randn(1, 3, 32, 32)))
    assert [o.shape[-1] for o in outs] == [16, 8, 4, 2]


def test_neck_reads_mmseg_vision_transformer():
    vit = MODELS.build(dict(type='VisionTransformer', img_size=(32, 32),
                            embed_dims=32, num_layers=4, num_heads=2,
                            out_indices=(0, 1, 2, 3), final_norm=False,
                            with_cls_token=True, output_cls_token=True))
    neck = MODELS.build(TINY_NECK)
    outs = neck(vit(torch.randn(1, 3, 64, 64)))
    assert outs[0].shape == (1, 16, 32, 32)


def test_neck_handles_odd_grids():
    # A 3×5 patch grid: the 1/32 map is 2×3, so each fusion output is twice
    # the deeper one and the laterals (3×5 at 1/16 ...) are resized to it,
    # as Transformers does. Inputs that are multiples of 32 (what
    # SegDataPreProcessor(size_divisor=32) gives) keep the exact sizes.
    backbone = MODELS.build(TINY_VIT)
    neck = MODELS.build(TINY_NECK)
    outs = neck(backbone(torch.randn(1, 3, 48, 80)))
    assert [tuple(o.shape[-2:]) for o in outs] == [(32, 48), (16, 24),
                                                   (8, 12), (4, 6)]


def test_depth_head_metric_mode_and_clamps():
    model = depth_model(output_mode='metric_from_inverse', depth_scale=0.5,
                        depth_shift=0.1, min_depth=0.5, max_depth=4.0).eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        feats = model.extract_feat(x)
        head = model.decode_head
        raw = torch.relu(head.cls_seg(torch.relu(head.conv2(
            torch.nn.functional.interpolate(
                head.conv1(feats[0]), scale_factor=2, mode='bilinear',
                align_corners=True)))))
        torch.testing.assert_close(head(feats),
                                   1 / torch.clamp(0.5 * raw + 0.1, min=1e-8))
        pred = model.predict(x)[0].pred_depth_map.data
    assert pred.min() >= 0.5 and pred.max() <= 4.0


def test_uperhead_on_dpt_backbone():
    """The paper's decoder ablation: mmseg's UPerHead instead of DPT's."""
    model = MODELS.build(
        dict(type='EncoderDecoder', data_preprocessor=dict(PREPROC),
             backbone=dict(TINY_VIT, output_cls_token=False),
             neck=dict(type='MultiLevelNeck', in_channels=[32] * 4,
                       out_channels=32, scales=[4, 2, 1, 0.5]),
             decode_head=dict(type='UPerHead', in_channels=[32] * 4,
                              in_index=[0, 1, 2, 3], channels=16,
                              num_classes=3, norm_cfg=dict(type='BN')),
             test_cfg=dict(mode='whole')))
    model.train()
    losses = model(torch.randn(2, 3, 32, 32), seg_samples(2, (32, 32), 3),
                   mode='loss')
    losses['decode.loss_ce'].backward()
    assert model.backbone.layers[0].attn.qkv.weight.grad is not None


def test_base_configs_build_with_expected_sizes():
    for name, params in [('dpt_vit-b16_depth', 109.7),
                         ('dpt_hybrid_depth', 121.2)]:
        cfg = Config.fromfile(f'configs/_base_/models/{name}.py')
        model = MODELS.build(cfg.model)
        count = sum(p.numel() for p in model.parameters()) / 1e6
        # Paper Table 9 (112 M / 123 M) also counts timm's unused classifier
        # head, final norm and the deepest block's unused residual unit.
        assert abs(count - params) < 0.1, (name, count)


def test_depth_slide_inference_really_slides():
    model = depth_model().eval()
    model.test_cfg = type(model.test_cfg)(mode='slide', crop_size=(32, 32),
                                          stride=(16, 16))
    calls = []
    original = model.encode_decode

    def spy(inputs, metas):
        calls.append(tuple(inputs.shape[-2:]))
        return original(inputs, metas)

    model.encode_decode = spy
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        pred = model.predict(x)[0].pred_depth_map.data
    assert pred.shape == (1, 64, 64)
    assert calls == [(32, 32)] * 9


def test_seg_and_depth_heads_stacked_on_one_backbone():
    norm = dict(type='BN')
    model = MODELS.build(
        dict(type='DepthSegEstimator',
             data_preprocessor=dict(PREPROC, seg_pad_val=255),
             backbone=dict(TINY_VIT),
             neck=dict(TINY_NECK, fusion_norm_cfg=norm),
             decode_head=dict(type='DPTSegHead', in_channels=16, channels=16,
                              num_classes=4, norm_cfg=norm),
             depth_head=dict(type='DPTDepthHead', in_channels=16, channels=8,
                             loss_decode=dict(type='DepthSiLogLoss')),
             test_cfg=dict(mode='whole')))
    samples = seg_samples(2, (32, 32), 4)
    for sample, depth in zip(samples, depth_samples(2, (32, 32))):
        sample.gt_depth_map = depth.gt_depth_map
    model.train()
    losses = model(torch.randn(2, 3, 32, 32), samples, mode='loss')
    assert {'decode.loss_ce', 'depth.loss_silog'} <= set(losses)
    (losses['decode.loss_ce'] + losses['depth.loss_silog']).backward()
    assert model.depth_head.conv_seg.weight.grad is not None
    assert model.decode_head.conv_seg.weight.grad is not None
    model.eval()
    with torch.no_grad():
        logits, depth = model(torch.randn(1, 3, 32, 64), mode='tensor')
        pred = model.predict(torch.randn(1, 3, 32, 64))[0]
    assert logits.shape == (1, 4, 32, 64) and depth.shape == (1, 1, 32, 64)
    assert pred.pred_sem_seg.data.shape == (1, 32, 64)
    assert pred.pred_depth_map.data.shape == (1, 32, 64)


def test_out_of_range_label_names_the_annotation_file():
    model = seg_model(num_classes=5)
    samples = seg_samples(2, (32, 32), 5)
    samples[1].gt_sem_seg.data[0, 3, 4] = 200
    samples[1].set_metainfo(dict(seg_map_path='ann/bad_0007.png'))
    samples[0].gt_sem_seg.data[0, 0, 0] = 255  # the ignore index is fine
    model.train()
    with pytest.raises(ValueError, match=r'ann/bad_0007.png: label values '
                       r'\[200\] are outside \[0, 5\)'):
        model(torch.randn(2, 3, 32, 32), samples, mode='loss')
    samples[1].gt_sem_seg.data[0, 3, 4] = 4
    losses = model(torch.randn(2, 3, 32, 32), samples, mode='loss')
    assert torch.isfinite(losses['decode.loss_ce'])

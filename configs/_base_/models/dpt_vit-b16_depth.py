# DPT-Base for monocular depth (relative inverse depth, MiDaS losses).
# Depth models have no BatchNorm in the fusion blocks (their RCU convs carry
# a bias instead). seg_pad_val=0 marks padded depth pixels invalid.
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[127.5, 127.5, 127.5],
    std=[127.5, 127.5, 127.5],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=0,
    # Training pads to the crop size (set `size` in the experiment); test
    # images are padded to multiples of 32 for the patch grid and fusion.
    test_cfg=dict(size_divisor=32))
model = dict(
    type='DPTDepthEstimator',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='DPTViT',
        img_size=384,
        patch_size=16,
        embed_dims=768,
        num_layers=12,
        num_heads=12,
        qkv_bias=True,
        norm_eps=1e-6,
        out_indices=(2, 5, 8, 11)),
    neck=dict(
        type='DPTNeck',
        in_channels=768,
        reassemble_channels=(96, 192, 384, 768),
        resample_factors=(4, 2, 1, 0.5),
        readout_type='project',
        channels=256,
        fusion_norm_cfg=None),
    decode_head=dict(
        type='DPTDepthHead',
        in_channels=256,
        channels=32,
        in_index=0,
        output_mode='inverse_depth',
        align_corners=False,
        # MiDaS: scale-and-shift-invariant trimmed loss on inverse depth
        # plus gradient matching (alpha 0.5).
        loss_decode=[
            dict(type='ScaleShiftInvariantLoss', alignment='median',
                 data_term='mae', trim=0.2, target_space='depth'),
            dict(type='GradientMatchingLoss', alignment='median',
                 target_space='depth', loss_weight=0.5),
        ]),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
# tools/infer.py and dpt_mm.apis: the published models' preprocessing (keep
# the aspect ratio, sides multiples of 32 around 384, bicubic).
inference_pipeline = [
    dict(type='LoadImageFromNDArray'),
    dict(type='DPTResize', size=384, ensure_multiple_of=32),
    dict(type='PackSegInputs'),
]

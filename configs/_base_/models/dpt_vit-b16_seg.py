# DPT-Base for semantic segmentation (ViT-B/16, hooks 2, 5, 8, 11).
# Normalisation: mean = std = 0.5 on [0, 1] RGB, as all published DPT models.
norm_cfg = dict(type='SyncBN', requires_grad=True)
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[127.5, 127.5, 127.5],
    std=[127.5, 127.5, 127.5],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
    # Training pads to the crop size (set `size` in the experiment); test
    # images are padded to multiples of 32 for the patch grid and fusion.
    test_cfg=dict(size_divisor=32))
model = dict(
    type='DPTEncoderDecoder',
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
        fusion_norm_cfg=norm_cfg),
    decode_head=dict(
        type='DPTSegHead',
        in_channels=256,
        channels=256,
        in_index=0,
        num_classes=150,
        dropout_ratio=0.1,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    # The paper's auxiliary head: penultimate fusion output (in_index=1),
    # weight 0.2. Transformers applies it to in_index=0 with weight 0.4.
    # DPTFCNHead is mmseg's FCNHead (same weights) with the chunked loss.
    auxiliary_head=dict(
        type='DPTFCNHead',
        in_channels=256,
        channels=256,
        in_index=1,
        num_convs=1,
        kernel_size=3,
        concat_input=False,
        dropout_ratio=0.1,
        num_classes=150,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=0.2)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
# tools/infer.py and dpt_mm.apis: the published segmentation models run at
# 480 (keep the aspect ratio, sides multiples of 32, bicubic).
inference_pipeline = [
    dict(type='LoadImageFromNDArray'),
    dict(type='DPTResize', size=480, ensure_multiple_of=32),
    dict(type='PackSegInputs'),
]

# DPT on DINOv2 ViT-S/14 (Meta's DPT heads for NYU/KITTI, Transformers
# facebook/dpt-dinov2-*): DPT's project readout from the DINOv2 class token
# (hooked outputs not normed), fusion convs without bias or norm, the
# add_projection conv before the head, ×2 head upsampling (output 16/14 of
# the input, resized back at test time). The head outputs metric depth
# directly. Transformers numerics (size-based position-embedding resize).
# Base/large/giant (dpt_dinov2_vit{b,l,g}.py) follow the DINOv2 repository's
# depth heads: hooks (2, 5, 8, 11) / (4, 11, 17, 23) / (9, 19, 29, 39) and
# reassemble widths D/8, D/4, D/2, D; verify against a Hub config.json
# (hf2mm.py --config-out writes the exact one).
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=0,
    test_cfg=dict(size_divisor=14))
model = dict(
    type='DPTDepthEstimator',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='DPTDINOv2',
        img_size=518,
        patch_size=14,
        embed_dims=384,
        num_layers=12,
        num_heads=6,
        out_indices=(2, 5, 8, 11),
        norm_outputs=False,
        output_cls_token=True),
    neck=dict(
        type='DPTNeck',
        in_channels=384,
        reassemble_channels=(48, 96, 192, 384),
        resample_factors=(4, 2, 1, 0.5),
        readout_type='project',
        channels=256,
        fusion_norm_cfg=None,
        fusion_bias=False),
    decode_head=dict(
        type='DPTDepthHead',
        in_channels=256,
        channels=32,
        add_projection=True,
        in_index=0,
        output_mode='depth',
        align_corners=False,
        loss_decode=[dict(type='DepthSiLogLoss', lambd=0.5)]),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
# The Hub processor neither resizes nor rescales: it pads to multiples of
# 14 (the data preprocessor's size_divisor; Transformers pads centred, mmseg
# bottom-right).
inference_pipeline = [
    dict(type='LoadImageFromNDArray'),
    dict(type='PackSegInputs'),
]

# Depth Anything (V2 hooks) with a DINOv2 ViT-S/14 encoder: relative inverse
# depth. A DPT decoder without readout (class token dropped), fusion blocks
# that upsample to the next level's size, and a head that upsamples to
# 14 × the patch grid and ends in ReLU. ImageNet normalisation; inputs are
# multiples of 14. vitb/vitl change only the sizes (depth_anything_vit*.py).
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
        # Depth Anything V2 hooks ViT-S/B blocks 2, 5, 8, 11 (V1: the last
        # four), normed by the final LayerNorm.
        out_indices=(2, 5, 8, 11),
        norm_outputs=True,
        output_cls_token=False,
        # The release code's position-embedding resizing (dinov2.py,
        # interpolate_offset=0.1); 0 is Transformers' (hf2mm writes 0).
        pos_embed_interp_offset=0.1),
    neck=dict(
        type='DPTNeck',
        in_channels=384,
        reassemble_channels=(48, 96, 192, 384),
        resample_factors=(4, 2, 1, 0.5),
        readout_type='ignore',
        channels=64,
        fusion_norm_cfg=None,
        fusion_bias=True,
        upsample_to_lateral=True),
    decode_head=dict(
        type='DPTDepthHead',
        in_channels=64,
        channels=32,
        # 8 × the patch grid → 14 × the grid.
        upsample_factor=1.75,
        in_index=0,
        output_mode='inverse_depth',
        align_corners=False,
        # Affine-invariant loss on disparity plus gradient matching (the
        # MiDaS losses Depth Anything trains its relative models with).
        loss_decode=[
            dict(type='ScaleShiftInvariantLoss', alignment='median',
                 data_term='mae', trim=0.2, target_space='depth'),
            dict(type='GradientMatchingLoss', alignment='median',
                 target_space='depth', loss_weight=0.5),
        ]),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
# The release's inference resize (depth_anything_v2/dpt.py image2tensor):
# keep the aspect ratio, the shorter side at least 518, multiples of 14,
# bicubic.
inference_pipeline = [
    dict(type='LoadImageFromNDArray'),
    dict(type='DPTResize', size=518, ensure_multiple_of=14,
         resize_method='lower_bound'),
    dict(type='PackSegInputs'),
]

# A small Depth Anything V2 metric model (same component types and options
# as configs/depth_anything/: DPTDINOv2, no readout, fusion to the next
# level's size, head to 14 × the patch grid, depth = max_depth · sigmoid)
# trained on the toy scenes like dpt_toy_depth.py. Inputs are padded to
# multiples of 14.
_base_ = './dpt_toy_depth.py'
pad_size = (98, 140)  # the 96×128 toy images, padded
max_depth = 10.0
model = dict(
    data_preprocessor=dict(
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        size=pad_size,
        test_cfg=dict(size_divisor=14)),
    backbone=dict(
        _delete_=True, type='DPTDINOv2', img_size=pad_size, patch_size=14,
        embed_dims=64, num_layers=4, num_heads=2, out_indices=(0, 1, 2, 3),
        output_cls_token=False),
    neck=dict(readout_type='ignore', fusion_bias=True,
              upsample_to_lateral=True),
    decode_head=dict(
        upsample_factor=1.75,
        output_mode='bounded_depth',
        max_depth=max_depth,
        loss_decode=[
            dict(type='DepthSiLogLoss', lambd=0.5, min_depth=1e-3,
                 max_depth=max_depth, pool='batch'),
            dict(type='GradientMatchingLoss', alignment='none',
                 target_space='disparity', loss_weight=0.5),
        ]))
inference_pipeline = [
    dict(type='LoadImageFromNDArray'),
    dict(type='DPTResize', size=(98, 126), ensure_multiple_of=14,
         resize_method='lower_bound'),
    dict(type='PackSegInputs'),
]

# The toy depth model (configs/toy/dpt_toy_depth.py: same data and schedule
# bases, same losses) with
# a small Swin V2 encoder (DPTSwinV2): its four stage maps (1/4 ... 1/32)
# feed the neck's convs directly, every level passing through without
# readout or reassembly.
_base_ = [
    '../_base_/models/dpt_vit-b16_depth.py', '../_base_/datasets/toy_nyu.py',
    '../_base_/schedules/schedule_toy.py',
    '../_base_/default_runtime.py'
]
crop_size = (96, 128)
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(
        _delete_=True, type='DPTSwinV2', img_size=128, patch_size=4,
        embed_dims=16, depths=(1, 1, 2, 1), num_heads=(1, 2, 2, 4),
        window_size=4, pretrained_window_sizes=(0, 0, 0, 0),
        out_indices=(0, 1, 2, 3)),
    neck=dict(
        in_channels=(16, 32, 64, 128), reassemble_channels=(16, 32, 64, 128),
        resample_factors=(1, 1, 1, 1), readout_type='ignore',
        passthrough_indices=(0, 1, 2, 3), channels=32),
    decode_head=dict(
        in_channels=32, channels=16, output_mode='depth', min_depth=1e-3,
        max_depth=10.0,
        loss_decode=[
            dict(type='DepthSiLogLoss', max_depth=10.0),
            dict(type='GradientMatchingLoss', alignment='none',
                 target_space='disparity', loss_weight=0.5),
        ]))
default_hooks = dict(
    logger=dict(interval=50),
    checkpoint=dict(interval=1500, max_keep_ckpts=1))
inference_pipeline = [
    dict(type='LoadImageFromNDArray'),
    dict(type='DPTResize', size=(96, 128), ensure_multiple_of=32),
    dict(type='PackSegInputs'),
]
randomness = dict(seed=0)

# A small DPT (same component types as the paper models: DPTViT, DPTNeck,
# DPTDepthHead) trained on the toy scenes written in mmseg's NYU layout
# (16-bit depth PNGs in millimetres) by tools/misc/make_toy_data.py. Point
# data_root at another NYU-layout folder with --cfg-options to train on it.
# The toy depth is metric, so the head predicts depth directly.
_base_ = [
    '../_base_/models/dpt_vit-b16_depth.py', '../_base_/datasets/toy_nyu.py',
    '../_base_/schedules/schedule_toy.py',
    '../_base_/default_runtime.py'
]
crop_size = (96, 128)
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(
        img_size=crop_size, embed_dims=64, num_layers=4, num_heads=2,
        out_indices=(0, 1, 2, 3)),
    neck=dict(
        in_channels=64, reassemble_channels=(16, 32, 64, 64), channels=32),
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

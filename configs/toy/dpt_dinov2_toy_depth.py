# A small DPT-DINOv2 (the component types and options of configs/
# dpt_dinov2/: DPTDINOv2 with the class token projected in by the readout,
# fusion convs without bias, add_projection, metric depth out of the ReLU)
# trained on the toy scenes with the data, schedule and optimiser of
# dpt_toy_depth.py (the toy_nyu data and schedule_toy bases). Inputs are
# padded to multiples of 14.
_base_ = [
    '../_base_/models/dpt_dinov2_vits.py', '../_base_/datasets/toy_nyu.py',
    '../_base_/schedules/schedule_toy.py',
    '../_base_/default_runtime.py'
]
pad_size = (98, 140)  # the 96×128 toy images, padded
max_depth = 10.0
model = dict(
    data_preprocessor=dict(size=pad_size),
    backbone=dict(
        img_size=pad_size, embed_dims=64, num_layers=4, num_heads=2,
        out_indices=(0, 1, 2, 3)),
    neck=dict(in_channels=64, reassemble_channels=(16, 32, 64, 64),
              channels=32),
    decode_head=dict(
        in_channels=32,
        channels=16,
        min_depth=1e-3,
        max_depth=max_depth,
        loss_decode=[
            dict(type='DepthSiLogLoss', max_depth=max_depth),
            dict(type='GradientMatchingLoss', alignment='none',
                 target_space='disparity', loss_weight=0.5),
        ]))
inference_pipeline = [
    dict(type='LoadImageFromNDArray'),
    dict(type='PackSegInputs'),
]
default_hooks = dict(
    logger=dict(interval=50),
    checkpoint=dict(interval=1500, max_keep_ckpts=1))
randomness = dict(seed=0)

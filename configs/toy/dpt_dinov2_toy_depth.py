# A small DPT-DINOv2 (the component types and options of configs/
# dpt_dinov2/: DPTDINOv2 with the class token projected in by the readout,
# fusion convs without bias, add_projection, metric depth out of the ReLU)
# trained on the toy scenes with the data, schedule and optimiser of
# dpt_toy_depth.py (repeated here: inheriting it would nest configs four
# levels deep). Inputs are padded to multiples of 14.
_base_ = [
    '../_base_/models/dpt_dinov2_vits.py', '../_base_/datasets/nyu.py',
    '../_base_/schedules/schedule_depth_anything.py',
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
data_root = 'data/toy/nyu'
train_pipeline = [
    dict(type='LoadImageChecked'),
    dict(type='LoadDepthMap', depth_scale=1000),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs', meta_keys={{_base_.pack_meta_keys}}),
]
train_dataloader = dict(
    batch_size=8, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(
    num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
optim_wrapper = dict(
    optimizer=dict(_delete_=True, type='AdamW', lr=1e-3, weight_decay=0.01),
    # One lr for all: the backbone is not pretrained here.
    paramwise_cfg=dict(_delete_=True))
param_scheduler = [
    dict(type='PolyLR', eta_min=1e-5, power=0.9, begin=0, end=1500,
         by_epoch=False)
]
train_cfg = dict(max_iters=1500, val_interval=1500)
default_hooks = dict(
    logger=dict(interval=50),
    checkpoint=dict(interval=1500, max_keep_ckpts=1))
randomness = dict(seed=0)

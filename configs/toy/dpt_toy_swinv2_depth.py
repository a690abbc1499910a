# The toy depth model (configs/toy/dpt_toy_depth.py: same data, losses,
# schedule; repeated here because configs inherit at most three levels) with
# a small Swin V2 encoder (DPTSwinV2): its four stage maps (1/4 ... 1/32)
# feed the neck's convs directly, every level passing through without
# readout or reassembly.
_base_ = [
    '../_base_/models/dpt_vit-b16_depth.py', '../_base_/datasets/nyu.py',
    '../_base_/schedules/schedule_depth_finetune.py',
    '../_base_/default_runtime.py'
]
data_root = 'data/toy/nyu'
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
inference_pipeline = [
    dict(type='LoadImageFromNDArray'),
    dict(type='DPTResize', size=(96, 128), ensure_multiple_of=32),
    dict(type='PackSegInputs'),
]
randomness = dict(seed=0)

# A small DPT (same component types as the paper models: DPTViT, DPTNeck,
# DPTSegHead, DPTFCNHead auxiliary) trained on the toy scenes written in the
# ADE20K layout by tools/misc/make_toy_data.py. Point data_root at another
# ADE20K-layout folder with --cfg-options to train on it instead.
# The scenes hold six ADE20K classes; mmseg's ADE20KDataset remaps them to
# 0..5 when given that subset as metainfo (drop metainfo and num_classes
# for all 150 classes).
_base_ = [
    '../_base_/models/dpt_vit-b16_seg.py', '../_base_/datasets/ade20k.py',
    '../_base_/schedules/schedule_ade20k_240e.py',
    '../_base_/default_runtime.py'
]
data_root = 'data/toy/ade'
crop_size = (96, 128)
img_scale = (128, 96)
norm_cfg = dict(type='BN', requires_grad=True)  # single process, CPU
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(
        img_size=crop_size, embed_dims=64, num_layers=4, num_heads=2,
        out_indices=(0, 1, 2, 3)),
    neck=dict(
        in_channels=64, reassemble_channels=(16, 32, 64, 64), channels=32,
        fusion_norm_cfg=norm_cfg),
    decode_head=dict(in_channels=32, channels=32, num_classes=6,
                     norm_cfg=norm_cfg),
    auxiliary_head=dict(in_channels=32, channels=32, num_classes=6,
                        norm_cfg=norm_cfg))
metainfo = dict(
    classes=('wall', 'floor', 'sky', 'cabinet', 'plate', 'tree'),
    palette=[[120, 120, 120], [80, 50, 50], [6, 230, 230], [224, 5, 255],
             [0, 255, 184], [4, 200, 3]])  # ADE20K colours
train_pipeline = [
    dict(type='LoadImageChecked'),
    dict(type='LoadAnnotationsChecked'),
    dict(type='RandomResize', scale=img_scale, ratio_range=(1.0, 1.5),
         keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageChecked'),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='LoadAnnotationsChecked'),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(
    batch_size=8, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, metainfo=metainfo,
                 pipeline=train_pipeline))
val_dataloader = dict(
    num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, metainfo=metainfo,
                 pipeline=test_pipeline))
test_dataloader = val_dataloader
# tools/test.py --tta: the base's scales and flips around this img_scale.
img_ratios = [0.5, 0.75, 1.0, 1.25, 1.5, 1.75]
tta_pipeline = [
    dict(type='LoadImageChecked'),
    dict(
        type='TestTimeAug',
        transforms=[
            [
                dict(type='Resize',
                     scale=(int(img_scale[0] * r), int(img_scale[1] * r)),
                     keep_ratio=True) for r in img_ratios
            ],
            [
                dict(type='RandomFlip', prob=0., direction='horizontal'),
                dict(type='RandomFlip', prob=1., direction='horizontal')
            ],
            [dict(type='LoadAnnotationsChecked')],
            [dict(type='PackSegInputs')],
        ])
]
# From scratch in minutes: AdamW at a higher lr than the paper's fine-tuning.
optim_wrapper = dict(
    optimizer=dict(_delete_=True, type='AdamW', lr=1e-3, weight_decay=0.01))
param_scheduler = [
    dict(type='PolyLR', eta_min=1e-5, power=0.9, begin=0, end=1000,
         by_epoch=False)
]
train_cfg = dict(max_iters=1000, val_interval=1000)
default_hooks = dict(
    logger=dict(interval=50),
    checkpoint=dict(interval=1000, max_keep_ckpts=1))
inference_pipeline = [
    dict(type='LoadImageFromNDArray'),
    dict(type='DPTResize', size=(96, 128), ensure_multiple_of=32),
    dict(type='PackSegInputs'),
]
randomness = dict(seed=0)

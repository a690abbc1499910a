# Joint depth + segmentation: one small DPT backbone and neck feeding a
# segmentation head (DPTSegHead + FCNHead auxiliary) and a metric depth
# head (DPTDepthHead), DepthSegEstimator, trained on the toy scenes written
# with both labels by tools/misc/make_toy_data.py (layout depth_seg). Test
# reports mIoU and the depth errors; tools/infer.py writes both pictures.
_base_ = [
    '../_base_/models/dpt_vit-b16_seg.py', '../_base_/datasets/depth_seg.py',
    '../_base_/schedules/schedule_toy.py',
    '../_base_/default_runtime.py'
]
data_root = 'data/toy/depth_seg'
crop_size = (96, 128)  # the toy images' size: nothing is padded
norm_cfg = dict(type='BN', requires_grad=True)  # single process, CPU
model = dict(
    type='DepthSegEstimator',
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
                        norm_cfg=norm_cfg),
    depth_head=dict(
        type='DPTDepthHead', in_channels=32, channels=16, in_index=0,
        output_mode='depth', min_depth=1e-3, max_depth=10.0,
        align_corners=False,
        loss_decode=[
            dict(type='DepthSiLogLoss', max_depth=10.0),
            dict(type='GradientMatchingLoss', alignment='none',
                 target_space='disparity', loss_weight=0.5),
        ]),
    depth_loss_weight=1.0)
metainfo = dict(
    classes=('wall', 'floor', 'sky', 'cabinet', 'plate', 'tree'),
    palette=[[120, 120, 120], [80, 50, 50], [6, 230, 230], [224, 5, 255],
             [0, 255, 184], [4, 200, 3]])  # ADE20K colours
train_pipeline = [
    dict(type='LoadImageChecked'),
    dict(type='LoadAnnotationsChecked'),
    dict(type='LoadDepthMap'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs', meta_keys={{_base_.pack_meta_keys}}),
]
train_dataloader = dict(
    batch_size=8, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, metainfo=metainfo,
                 pipeline=train_pipeline))
val_dataloader = dict(
    num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, metainfo=metainfo))
test_dataloader = val_dataloader
default_hooks = dict(
    logger=dict(interval=50),
    checkpoint=dict(interval=1500, max_keep_ckpts=1))
inference_pipeline = [
    dict(type='LoadImageFromNDArray'),
    dict(type='DPTResize', size=(96, 128), ensure_multiple_of=32),
    dict(type='PackSegInputs'),
]
randomness = dict(seed=0)

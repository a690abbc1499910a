# Pascal Context, 59 classes, read by mmseg's PascalContextDataset59: label
# PNGs hold 0 = background (ignored through reduce_zero_label) and 1..59.
# Recipe of the DPT paper (section 4): as ADE20K (resize to 520, random
# rescale 0.5-2.0, flip, 480x480 crops), fine-tuned for 50 epochs.
# Crops smaller than 480 are padded by the model's data preprocessor.
dataset_type = 'PascalContextDataset59'
data_root = 'data/VOCdevkit/VOC2010'
crop_size = (480, 480)
img_scale = (520, 520)  # keep_ratio: the longer side becomes 520
num_workers = 2

train_pipeline = [
    dict(type='LoadImageChecked'),
    dict(type='LoadAnnotationsChecked'),  # reduce_zero_label from the data set
    dict(
        type='RandomResize',
        scale=img_scale,
        ratio_range=(0.5, 2.0),
        keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageChecked'),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    # Loaded after Resize: metrics are computed at the original size.
    dict(type='LoadAnnotationsChecked'),  # reduce_zero_label from the data set
    dict(type='PackSegInputs'),
]

train_dataloader = dict(
    batch_size=4,  # per GPU; the paper's batch is 48 in total
    num_workers=num_workers,
    persistent_workers=num_workers > 0,  # override both together
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(
            img_path='JPEGImages', seg_map_path='SegmentationClassContext'),
        ann_file='ImageSets/SegmentationContext/train.txt',
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=num_workers,
    persistent_workers=num_workers > 0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(
            img_path='JPEGImages', seg_map_path='SegmentationClassContext'),
        ann_file='ImageSets/SegmentationContext/val.txt',
        pipeline=test_pipeline))
test_dataloader = val_dataloader

val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator
# tools/test.py --tta: the paper's multi-scale inference (section 4, the
# protocol of Zhang et al.): scales 0.5-1.75 of the test size, each also
# flipped; SegTTAModel averages the class probabilities.
img_ratios = [0.5, 0.75, 1.0, 1.25, 1.5, 1.75]
tta_model = dict(type='SegTTAModel')
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

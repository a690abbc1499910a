# ADE20K (150 classes), read by mmseg's ADE20KDataset.
# Recipe of the DPT paper (section 4, the protocol of Zhang et al.): images
# resized to 520 side length, random rescale in (0.5, 2.0), random flip,
# random 480x480 crops. The paper adds no photometric distortion.
# Crops smaller than 480 (small rescales) are padded by the model's data
# preprocessor (size=crop_size, seg_pad_val=255), which also normalises.
dataset_type = 'ADE20KDataset'
data_root = 'data/ade/ADEChallengeData2016'
crop_size = (480, 480)
# (520, 520) with keep_ratio: the longer side becomes 520 (x the random
# ratio), as the base_size=520 of PyTorch-Encoding.
img_scale = (520, 520)
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
            img_path='images/training', seg_map_path='annotations/training'),
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
            img_path='images/validation',
            seg_map_path='annotations/validation'),
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

# Images with a semantic label map and a depth map each, read by dpt_mm's
# DepthSegDataset, in the NYUv2 layout plus a label folder:
# images/{train,test}/<id>.jpg, labels/{train,test}/<id>.png (0 =
# unlabelled) and depth/{train,test}/<id>.png (16-bit millimetres, 0 = no
# data). Set metainfo=dict(classes=..., palette=...) in the experiment.
#
# Geometric transforms move image, labels and depth together. No random
# rescale (zooming changes apparent size without changing metric depth),
# and crops no larger than the images: mmseg's data preprocessor would pad
# depth with seg_pad_val, not 0.
dataset_type = 'DepthSegDataset'
data_root = 'data/depth_seg'
crop_size = (416, 544)
num_workers = 2
pack_meta_keys = ('img_path', 'seg_map_path', 'depth_map_path', 'ori_shape',
                  'img_shape', 'pad_shape', 'scale_factor', 'flip',
                  'flip_direction', 'reduce_zero_label')

train_pipeline = [
    dict(type='LoadImageChecked'),
    dict(type='LoadAnnotationsChecked'),  # reduce_zero_label from the data set
    dict(type='LoadDepthMap'),  # depth_scale from the data set
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs', meta_keys=pack_meta_keys),
]
test_pipeline = [
    dict(type='LoadImageChecked'),
    dict(type='LoadAnnotationsChecked'),
    dict(type='LoadDepthMap'),
    dict(type='PackSegInputs', meta_keys=pack_meta_keys),
]

train_dataloader = dict(
    batch_size=4,
    num_workers=num_workers,
    persistent_workers=num_workers > 0,  # override both together
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(
            img_path='images/train', seg_map_path='labels/train',
            depth_map_path='depth/train'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=num_workers,
    persistent_workers=num_workers > 0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        test_mode=True,
        data_prefix=dict(
            img_path='images/test', seg_map_path='labels/test',
            depth_map_path='depth/test'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader

# Both tasks are evaluated: IoU of the segmentation, depth errors (NYU's
# range and crop).
val_evaluator = [
    dict(type='IoUMetric', iou_metrics=['mIoU']),
    dict(type='DPTDepthMetric', min_depth_eval=1e-3, max_depth_eval=10.0,
         crop_type='nyu_crop', pred_space='depth'),
]
test_evaluator = val_evaluator
# tools/test.py --tta: the image and its horizontal flip; DepthSegTTAModel
# averages depth and class probabilities at the original size.
tta_model = dict(type='DepthSegTTAModel')
tta_pipeline = [
    dict(type='LoadImageChecked'),
    dict(
        type='TestTimeAug',
        transforms=[
            [
                dict(type='RandomFlip', prob=0., direction='horizontal'),
                dict(type='RandomFlip', prob=1., direction='horizontal')
            ],
            [dict(type='LoadAnnotationsChecked')],
            [dict(type='LoadDepthMap')],
            [dict(type='PackSegInputs', meta_keys=pack_meta_keys)],
        ])
]

# KITTI depth, Eigen split, read by dpt_mm's KITTIDepthDataset: raw images,
# sparse 16-bit ground truth (metres = value / 256, 0 = no LiDAR point) and
# BTS-style split files. tools/dataset_converters/kitti_depth.py writes this
# layout from the official downloads.
#
# The DPT paper gives no fine-tuning crop for KITTI. 352x704 is the crop of
# BTS: 352 rows keep nearly the whole 375-row frame (the ground truth lies in
# the lower part), 704 columns are about half the width, and both are
# multiples of 32 for the 16-pixel ViT patch grid and the fusion's 2x
# upsampling. No random rescale (it would change metric depth cues).
# Test on the whole frame; DPT's KITTI model runs on the 1216x352 KB crop,
# which this config does not apply.
# Pad depth with 0 (invalid), not 255: set seg_pad_val=0 in the model's
# data preprocessor, which pads gt_depth_map with it.
dataset_type = 'KITTIDepthDataset'
data_root = 'data/kitti'
crop_size = (352, 704)
num_workers = 2
pack_meta_keys = ('img_path', 'depth_map_path', 'ori_shape', 'img_shape',
                  'pad_shape', 'scale_factor', 'flip', 'flip_direction',
                  'focal')

train_pipeline = [
    dict(type='LoadImageChecked'),
    dict(type='LoadDepthMap'),  # depth_scale=256 comes from the data set
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5),
    # Colour jitter as BTS; it touches the image only.
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs', meta_keys=pack_meta_keys),
]
test_pipeline = [
    dict(type='LoadImageChecked'),
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
        data_prefix=dict(img_path='raw', depth_map_path='gt_depth'),
        ann_file='splits/eigen_train_files_with_gt.txt',
        depth_scale=256,
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
        data_prefix=dict(img_path='raw', depth_map_path='gt_depth'),
        # Frames without ground truth ("None") are dropped.
        ann_file='splits/eigen_test_files_with_gt.txt',
        depth_scale=256,
        pipeline=test_pipeline))
test_dataloader = val_dataloader

# BTS eval_with_pngs.py --max_depth_eval 80 --garg_crop.
val_evaluator = dict(
    type='DPTDepthMetric',
    min_depth_eval=1e-3,
    max_depth_eval=80.0,
    crop_type='garg_crop',
    pred_space='depth')
test_evaluator = val_evaluator
# tools/test.py --tta: the image and its horizontal flip; DepthTTAModel
# averages the two predictions (flipped back) at the original size.
tta_model = dict(type='DepthTTAModel')
tta_pipeline = [
    dict(type='LoadImageChecked'),
    dict(
        type='TestTimeAug',
        transforms=[
            [
                dict(type='RandomFlip', prob=0., direction='horizontal'),
                dict(type='RandomFlip', prob=1., direction='horizontal')
            ],
            [dict(type='LoadDepthMap')],
            [dict(type='PackSegInputs', meta_keys=pack_meta_keys)],
        ])
]

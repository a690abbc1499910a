# Your own images with relative disparity (or depth) maps, read by dpt_mm's
# RelativeDepthDataset; see its docstring for the folder tree. Maps are
# matched to images by file name: 16-bit PNG (value / depth_scale), float
# .npy or .pfm; optional validity masks (nonzero = valid).
#
# Recipe of the DPT paper for its MIX 6 training (section 4): the longer
# side resized to 384, random square 384 crops and random horizontal flips.
# The shorter side stays below 384 and is padded by the model's data
# preprocessor; set seg_pad_val=0 there, since it pads gt_depth_map too.
dataset_type = 'RelativeDepthDataset'
data_root = 'data/relative'
crop_size = (384, 384)
img_scale = (384, 384)  # keep_ratio: the longer side becomes 384
num_workers = 2
# 16-bit PNG disparity: stored value per unit (the toy set uses 1000).
# 1/disparity must land inside the evaluator's depth range.
depth_scale = 1000
pack_meta_keys = ('img_path', 'depth_map_path', 'ori_shape', 'img_shape',
                  'pad_shape', 'scale_factor', 'flip', 'flip_direction')

train_pipeline = [
    dict(type='LoadImageChecked'),
    dict(type='LoadDepthMap'),  # map type, scale and mask from the data set
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs', meta_keys=pack_meta_keys),
]
test_pipeline = [
    dict(type='LoadImageChecked'),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    # Loaded after Resize: metrics are computed at the original size.
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
            img_path='train/images',
            depth_map_path='train/disparity',
            mask_path='train/masks'),
        map_type='disparity',
        depth_scale=depth_scale,
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
            img_path='val/images',
            depth_map_path='val/disparity',
            mask_path='val/masks'),
        map_type='disparity',
        depth_scale=depth_scale,
        pipeline=test_pipeline))
test_dataloader = val_dataloader

# MiDaS/DPT zero-shot protocol: per image, fit the predicted disparity to
# the ground truth's by least squares (scale and shift), then evaluate in
# depth capped at max_depth_eval (10 m for the toy scenes).
val_evaluator = dict(
    type='DPTDepthMetric',
    min_depth_eval=1e-3,
    max_depth_eval=10.0,
    align='lstsq_disparity',
    pred_space='disparity')
test_evaluator = val_evaluator
# tools/test.py --tta: the image and its horizontal flip; DepthTTAModel
# averages the two predictions (flipped back) at the original size.
tta_model = dict(type='DepthTTAModel')
tta_pipeline = [
    dict(type='LoadImageChecked'),
    dict(
        type='TestTimeAug',
        transforms=[
            [dict(type='Resize', scale=img_scale, keep_ratio=True)],
            [
                dict(type='RandomFlip', prob=0., direction='horizontal'),
                dict(type='RandomFlip', prob=1., direction='horizontal')
            ],
            [dict(type='LoadDepthMap')],
            [dict(type='PackSegInputs', meta_keys=pack_meta_keys)],
        ])
]

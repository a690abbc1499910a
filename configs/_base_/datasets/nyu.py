# NYU Depth v2 (Eigen split: 795 train / 654 test of the labelled set), read
# by mmseg's NYUDataset: images/{train,test}/<scene>_<id>.jpg and
# annotations/{train,test}/<scene>_<id>.png, 16-bit depth in millimetres
# (0 = no data). tools/dataset_converters/nyu.py writes this layout.
#
# The DPT paper gives no fine-tuning crop for NYU. 416x544 is the crop of
# BTS (whose evaluation DPT follows): it lies inside the 640x480 frame and
# close to the Eigen crop (426x560), so little of the white border is seen,
# and both sides are multiples of 32, so the 16-pixel ViT patch grid and the
# fusion's 2x upsampling stay exact. No random rescale: zooming changes the
# apparent size of objects without changing their metric depth.
# Test at the native 640x480, the size DPT's NYU model runs at.
# Pad depth with 0 (invalid), not 255: set seg_pad_val=0 in the model's
# data preprocessor, which pads gt_depth_map with it.
dataset_type = 'NYUDataset'
data_root = 'data/nyu'
crop_size = (416, 544)
num_workers = 2
pack_meta_keys = ('img_path', 'depth_map_path', 'ori_shape', 'img_shape',
                  'pad_shape', 'scale_factor', 'flip', 'flip_direction',
                  'category_id')

train_pipeline = [
    dict(type='LoadImageChecked'),
    dict(type='LoadDepthMap', depth_scale=1000),  # millimetres -> metres
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5),
    # Colour jitter as BTS; it touches the image only.
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs', meta_keys=pack_meta_keys),
]
test_pipeline = [
    dict(type='LoadImageChecked'),
    dict(type='LoadDepthMap', depth_scale=1000),
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
            img_path='images/train', depth_map_path='annotations/train'),
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
            img_path='images/test', depth_map_path='annotations/test'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader

# BTS eval_with_pngs.py --max_depth_eval 10 --eigen_crop.
val_evaluator = dict(
    type='DPTDepthMetric',
    min_depth_eval=1e-3,
    max_depth_eval=10.0,
    crop_type='nyu_crop',
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
            [dict(type='LoadDepthMap', depth_scale=1000)],
            [dict(type='PackSegInputs', meta_keys=pack_meta_keys)],
        ])
]

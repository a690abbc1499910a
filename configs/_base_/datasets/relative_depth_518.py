# RelativeDepthDataset (your own images + disparity maps) at Depth
# Anything's training size: resized so the shorter side is at least 518
# (aspect kept, multiples of 14), random 518×518 crops and flips. Tested at
# the inference size, metrics at the original size.
_base_ = './relative_depth.py'
crop_size = (518, 518)
train_pipeline = [
    dict(type='LoadImageChecked'),
    dict(type='LoadDepthMap'),
    dict(type='DPTResize', size=518, ensure_multiple_of=14,
         resize_method='lower_bound'),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs', meta_keys={{_base_.pack_meta_keys}}),
]
test_pipeline = [
    dict(type='LoadImageChecked'),
    dict(type='DPTResize', size=518, ensure_multiple_of=14,
         resize_method='lower_bound'),
    dict(type='LoadDepthMap'),
    dict(type='PackSegInputs', meta_keys={{_base_.pack_meta_keys}}),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

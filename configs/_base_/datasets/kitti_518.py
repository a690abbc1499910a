# KITTI layout, standing in for Virtual KITTI 2 (outdoor, the metric-vkitti
# models' training set): point data_root at vKITTI 2 exported in this layout,
# or fine-tune on KITTI.
# Depth Anything V2's metric training transform (metric_depth/dataset):
# resize so the shorter side is at least 518 (aspect kept, multiples of 14,
# bicubic; depth nearest), random 518×518 crop, random flip. Tested at the
# inference size, metrics at the original size.
_base_ = './kitti.py'
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

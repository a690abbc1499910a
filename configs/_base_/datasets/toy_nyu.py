# The toy depth scenes of tools/misc/make_toy_data.py in mmseg's NYU layout
# (16-bit depth PNGs in millimetres), 96×128: no crop, batch 8, no worker
# processes. Point data_root at another NYU-layout folder with
# --cfg-options to train on it.
_base_ = './nyu.py'
data_root = 'data/toy/nyu'
crop_size = (96, 128)
train_pipeline = [
    dict(type='LoadImageChecked'),
    dict(type='LoadDepthMap', depth_scale=1000),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs', meta_keys={{_base_.pack_meta_keys}}),
]
train_dataloader = dict(
    batch_size=8, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(
    num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root))
test_dataloader = val_dataloader

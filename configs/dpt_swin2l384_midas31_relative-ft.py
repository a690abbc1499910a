# Fine-tune MiDaS v3.1 DPT-SwinV2-L 384 on your own relative-depth folder
# (RelativeDepthDataset): start from the converted release
# (tools/model_converters/dpt2mm.py dpt_swin2_large_384.pt
# work_dirs/dpt_swin2_large_384.pth), the MiDaS losses (scale-and-shift-
# invariant trimmed MAE + gradient matching), AdamW with layer-wise lr decay
# over the 24 Swin blocks (0.9 per block, backbone ×0.1) and gradient
# checkpointing.
# Same model and inference pipeline as dpt_swin2l384_midas31.py (repeated
# here: configs inherit at most three levels).
_base_ = [
    './_base_/models/dpt_swinv2-l24_depth.py', './_base_/datasets/relative_depth.py',
    './_base_/schedules/schedule_midas.py', './_base_/default_runtime.py'
]
crop_size = (384, 384)
model = dict(
    data_preprocessor=dict(size=crop_size), backbone=dict(with_cp=True))
train_dataloader = dict(batch_size=2)
load_from = 'work_dirs/dpt_swin2_large_384.pth'
optim_wrapper = dict(
    _delete_=True,
    type='NonFiniteGuardOptimWrapper',
    on_nonfinite='skip',
    optimizer=dict(type='AdamW', lr=1e-5, weight_decay=0.01),
    constructor='ViTLayerDecayOptimizerConstructor',
    paramwise_cfg=dict(num_layers=24, layer_decay_rate=0.9,
                       backbone_lr_mult=0.1))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, begin=0, end=500, by_epoch=False),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=500, end=20000,
         by_epoch=False)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=20000,
                 val_interval=2000)

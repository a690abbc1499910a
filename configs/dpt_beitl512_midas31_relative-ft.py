# Fine-tune MiDaS v3.1 DPT-BEiT-L 512 on your own relative-depth folder
# (RelativeDepthDataset): start from the converted release
# (tools/model_converters/dpt2mm.py dpt_beit_large_512.pt
# work_dirs/dpt_beit_large_512.pth), the MiDaS losses (scale-and-shift-
# invariant trimmed MAE + gradient matching), AdamW with layer-wise lr decay
# (0.9 per block, backbone ×0.1) and gradient checkpointing.
# Same model and inference pipeline as dpt_beitl512_midas31.py (repeated
# here: configs inherit at most three levels).
_base_ = [
    './_base_/models/dpt_beit-l16_depth.py', './_base_/datasets/relative_depth.py',
    './_base_/schedules/schedule_midas.py', './_base_/default_runtime.py'
]
crop_size = (512, 512)
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(img_size=512, with_cp=True))
train_dataloader = dict(batch_size=2)
inference_pipeline = [
    dict(type='LoadImageFromNDArray'),
    dict(type='DPTResize', size=512, ensure_multiple_of=32),
    dict(type='PackSegInputs'),
]
load_from = 'work_dirs/dpt_beit_large_512.pth'
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

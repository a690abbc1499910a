# Depth Anything V2 Base, metric depth (indoor, max 20 m): depth =
# 20 · sigmoid(out).
# Transformers: depth-anything/Depth-Anything-V2-Metric-Indoor-Base-hf.
# Release file: depth_anything_v2_metric_hypersim_vitb.pth (dpt2mm.py).
# Recipe of metric_depth/train.py + dist_train.sh: start from the relative
# model's encoder (decoder random), SiLog λ = 0.5 over one batch's valid
# pixels within [0.001, 20] m, AdamW, encoder lr 5e-6 and decoder ×10,
# poly 0.9, 518² crops, batch 4 × 8 GPUs, 120 epochs. The dataset base
# reads the NYU layout (BTS split, 24,231 images) in place of Hypersim:
# 120 epochs of it at batch 32 are 90900 iterations.
_base_ = [
    '../_base_/models/depth_anything_vitb.py',
    '../_base_/datasets/nyu_518.py',
    '../_base_/schedules/schedule_depth_anything.py',
    '../_base_/default_runtime.py'
]
max_depth = 20.0
model = dict(
    data_preprocessor=dict(size=(518, 518)),
    backbone=dict(
        init_cfg=dict(type='Pretrained', prefix='backbone.',
                      checkpoint='pretrain/depth_anything_v2_vitb_mm.pth')),
    decode_head=dict(
        output_mode='bounded_depth',
        min_depth=1e-3,
        max_depth=max_depth,
        loss_decode=[
            dict(type='DepthSiLogLoss', lambd=0.5, min_depth=1e-3,
                 max_depth=max_depth, pool='batch')
        ]))
train_dataloader = dict(batch_size=4)
max_iters = 90900
param_scheduler = [
    dict(type='PolyLR', eta_min=0.0, power=0.9, begin=0, end=max_iters,
         by_epoch=False)
]
train_cfg = dict(max_iters=max_iters, val_interval=5000)

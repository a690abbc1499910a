# DPT-Large for relative depth, the MiDaS v3 model (dpt_large-midas-2f21e586
# .pt, Transformers Intel/dpt-large). The paper trains on MIX 6 (1.4 M
# images, not redistributable); this config trains on a folder of your own
# images + depth/disparity maps (RelativeDepthDataset, see README).
_base_ = [
    './_base_/models/dpt_vit-l16_depth.py',
    './_base_/datasets/relative_depth.py',
    './_base_/schedules/schedule_midas.py', './_base_/default_runtime.py'
]
crop_size = (384, 384)
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(
        init_cfg=dict(
            type='Pretrained', checkpoint='pretrain/vit-l16_384.pth')))
train_dataloader = dict(batch_size=2)  # 8 GPUs × 2 = the paper's batch 16

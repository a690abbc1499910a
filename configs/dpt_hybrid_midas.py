# DPT-Hybrid for relative depth, the MiDaS v3 model (dpt_hybrid-midas-
# 501f0c75.pt, Transformers Intel/dpt-hybrid-midas). Trains on a folder of
# your own images + depth/disparity maps (RelativeDepthDataset, see README).
_base_ = [
    './_base_/models/dpt_hybrid_depth.py',
    './_base_/datasets/relative_depth.py',
    './_base_/schedules/schedule_midas.py', './_base_/default_runtime.py'
]
crop_size = (384, 384)
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(
        ws_mode='std',
        ws_eps=1e-5,
        init_cfg=dict(
            type='Pretrained', checkpoint='pretrain/vit-hybrid_384.pth')))
train_dataloader = dict(batch_size=2)  # 8 GPUs × 2 = the paper's batch 16

# DPT-Base on ADE20K. The paper reports DPT-Hybrid and DPT-Large on ADE20K;
# DPT-Base uses the same recipe (mmseg's own DPT ViT-B reaches 46.97 mIoU
# single-scale with its 512×512, 160k-iteration AdamW recipe).
_base_ = [
    './_base_/models/dpt_vit-b16_seg.py', './_base_/datasets/ade20k.py',
    './_base_/schedules/schedule_ade20k_240e.py',
    './_base_/default_runtime.py'
]
crop_size = (480, 480)
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(
        init_cfg=dict(
            type='Pretrained', checkpoint='pretrain/vit-b16_384.pth')))
train_dataloader = dict(batch_size=6)  # 8 GPUs × 6 = the paper's batch 48

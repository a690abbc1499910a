# DPT-Hybrid fine-tuned on Pascal Context, 59 classes (paper Table 5:
# 60.46 mIoU, 84.83 pixAcc): the ADE20K recipe for 50 epochs.
_base_ = [
    './_base_/models/dpt_hybrid_seg.py',
    './_base_/datasets/pascal_context_59.py',
    './_base_/schedules/schedule_pascal_context_50e.py',
    './_base_/default_runtime.py'
]
crop_size = (480, 480)
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(
        ws_mode='std',
        ws_eps=1e-5,
        init_cfg=dict(
            type='Pretrained', checkpoint='pretrain/vit-hybrid_384.pth')),
    decode_head=dict(num_classes=59),
    auxiliary_head=dict(num_classes=59))
train_dataloader = dict(batch_size=6)  # 8 GPUs × 6 = the paper's batch 48

# DPT-Large on ADE20K (paper Table 4: 47.63 mIoU, multi-scale).
# Same architecture as the original dpt_large-ade20k-b12dca68.pt and the
# Transformers Hub model Intel/dpt-large-ade.
_base_ = [
    './_base_/models/dpt_vit-l16_seg.py', './_base_/datasets/ade20k.py',
    './_base_/schedules/schedule_ade20k_240e.py',
    './_base_/default_runtime.py'
]
crop_size = (480, 480)
model = dict(
    data_preprocessor=dict(size=crop_size),
    # ImageNet ViT-L/16 at 384 (timm vit_large_patch16_384), converted with
    # tools/model_converters/timm2mm.py.
    backbone=dict(
        init_cfg=dict(
            type='Pretrained', checkpoint='pretrain/vit-l16_384.pth')))
train_dataloader = dict(batch_size=6)  # 8 GPUs × 6 = the paper's batch 48

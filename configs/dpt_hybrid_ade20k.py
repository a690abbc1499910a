# DPT-Hybrid on ADE20K (paper Table 4: 49.02 mIoU, 83.11 pixAcc,
# multi-scale). Architecture of dpt_hybrid-ade20k-53898607.pt.
_base_ = [
    './_base_/models/dpt_hybrid_seg.py', './_base_/datasets/ade20k.py',
    './_base_/schedules/schedule_ade20k_240e.py',
    './_base_/default_runtime.py'
]
crop_size = (480, 480)
model = dict(
    data_preprocessor=dict(size=crop_size),
    # ImageNet ViT-Hybrid (timm vit_base_resnet50_384), converted with
    # tools/model_converters/timm2mm.py. timm 0.4.5 standardises weights as
    # (w - mean) / (std + 1e-5).
    backbone=dict(
        ws_mode='std',
        ws_eps=1e-5,
        init_cfg=dict(
            type='Pretrained', checkpoint='pretrain/vit-hybrid_384.pth')))
train_dataloader = dict(batch_size=6)  # 8 GPUs × 6 = the paper's batch 48

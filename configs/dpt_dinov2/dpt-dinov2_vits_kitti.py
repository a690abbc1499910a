# DPT-DINOv2 Small for KITTI (metric depth, at most 80 m).
# Transformers: facebook/dpt-dinov2-small-kitti (hf2mm.py).
# Original: dinov2_vits14_kitti_dpt_head.pth (DINOv2 repository; its
# encoder is dinov2_vits14). Fine-tuning: the KITTI dataset base with Eigen's
# scale-invariant log loss (Meta published no training recipe for these).
_base_ = [
    '../_base_/models/dpt_dinov2_vits.py', '../_base_/datasets/kitti.py',
    '../_base_/schedules/schedule_depth_finetune.py',
    '../_base_/default_runtime.py'
]
# Pad the dataset's crop (352×704) up to multiples of 14 (padding is invalid
# depth).
pad_size = (364, 714)
max_depth = 80.0
model = dict(
    data_preprocessor=dict(size=pad_size),
    decode_head=dict(
        min_depth=1e-3,
        max_depth=max_depth,
        loss_decode=[dict(type='DepthSiLogLoss', max_depth=max_depth)]))
load_from = 'pretrain/dpt_dinov2_vits_kitti_mm.pth'

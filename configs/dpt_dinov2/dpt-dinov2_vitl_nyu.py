# DPT-DINOv2 Large for NYU (metric depth, at most 10 m).
# Transformers: facebook/dpt-dinov2-large-nyu (hf2mm.py).
# Original: dinov2_vitl14_nyu_dpt_head.pth (DINOv2 repository; its
# encoder is dinov2_vitl14). Fine-tuning: the NYU dataset base with Eigen's
# scale-invariant log loss (Meta published no training recipe for these).
_base_ = [
    '../_base_/models/dpt_dinov2_vitl.py', '../_base_/datasets/nyu.py',
    '../_base_/schedules/schedule_depth_finetune.py',
    '../_base_/default_runtime.py'
]
# Pad the dataset's crop (416×544) up to multiples of 14 (padding is invalid
# depth).
pad_size = (420, 546)
max_depth = 10.0
model = dict(
    data_preprocessor=dict(size=pad_size),
    decode_head=dict(
        min_depth=1e-3,
        max_depth=max_depth,
        loss_decode=[dict(type='DepthSiLogLoss', max_depth=max_depth)]))
load_from = 'pretrain/dpt_dinov2_vitl_nyu_mm.pth'

# Depth Anything (V1) Small, relative inverse depth: V2's architecture with
# the last four blocks hooked.
# Transformers: LiheYoung/depth-anything-small-hf (hf2mm.py).
# Release file: depth_anything_vits14.pth (dpt2mm.py, variant
# depth_anything_v1_vits). Fine-tuning as depth-anything-v2_vits_relative.py.
_base_ = [
    '../_base_/models/depth_anything_vits.py',
    '../_base_/datasets/relative_depth_518.py',
    '../_base_/schedules/schedule_depth_anything.py',
    '../_base_/default_runtime.py'
]
model = dict(
    data_preprocessor=dict(size=(518, 518)),
    backbone=dict(out_indices=(8, 9, 10, 11)))
load_from = 'pretrain/depth_anything_v1_vits_mm.pth'

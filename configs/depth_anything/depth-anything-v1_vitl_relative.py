# Depth Anything (V1) Large, relative inverse depth: V2's architecture with
# the last four blocks hooked.
# Transformers: LiheYoung/depth-anything-large-hf (hf2mm.py).
# Release file: depth_anything_vitl14.pth (dpt2mm.py, variant
# depth_anything_v1_vitl). Fine-tuning as depth-anything-v2_vitl_relative.py.
_base_ = [
    '../_base_/models/depth_anything_vitl.py',
    '../_base_/datasets/relative_depth_518.py',
    '../_base_/schedules/schedule_depth_anything.py',
    '../_base_/default_runtime.py'
]
model = dict(
    data_preprocessor=dict(size=(518, 518)),
    backbone=dict(out_indices=(20, 21, 22, 23)))
load_from = 'pretrain/depth_anything_v1_vitl_mm.pth'

# Depth Anything V2 Small, relative inverse depth.
# Transformers: depth-anything/Depth-Anything-V2-Small-hf (hf2mm.py).
# Release file: depth_anything_v2_vits.pth (dpt2mm.py, variant
# depth_anything_v2_vits). Fine-tuning on a folder of your own images and
# disparity maps with the existing scale-and-shift-invariant + gradient-
# matching losses, 518×518 crops and Depth Anything V2's optimiser (AdamW,
# encoder 5e-6, decoder ×10, poly 0.9).
_base_ = [
    '../_base_/models/depth_anything_vits.py',
    '../_base_/datasets/relative_depth_518.py',
    '../_base_/schedules/schedule_depth_anything.py',
    '../_base_/default_runtime.py'
]
model = dict(data_preprocessor=dict(size=(518, 518)))
load_from = 'pretrain/depth_anything_v2_vits_mm.pth'

# DPT-Hybrid for segmentation: BiT ResNet-50 (3 stages) + ViT-B/16 on the
# 1/16 map; hooks = ResNet stages 0, 1 (passed through) and blocks 8, 11.
_base_ = './dpt_vit-b16_seg.py'
model = dict(
    backbone=dict(type='DPTViTHybrid', out_indices=(8, 11)),
    neck=dict(
        in_channels=(256, 512, 768, 768),
        reassemble_channels=(256, 512, 768, 768),
        resample_factors=(1, 1, 1, 0.5),
        passthrough_indices=(0, 1)))

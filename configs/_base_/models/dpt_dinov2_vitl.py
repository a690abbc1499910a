# DPT on DINOv2 ViT-L/14.
_base_ = './dpt_dinov2_vits.py'
model = dict(
    backbone=dict(embed_dims=1024, num_layers=24, num_heads=16,
                  out_indices=(4, 11, 17, 23)),
    neck=dict(in_channels=1024, reassemble_channels=(128, 256, 512, 1024)))

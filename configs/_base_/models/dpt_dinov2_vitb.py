# DPT on DINOv2 ViT-B/14.
_base_ = './dpt_dinov2_vits.py'
model = dict(
    backbone=dict(embed_dims=768, num_heads=12),
    neck=dict(in_channels=768, reassemble_channels=(96, 192, 384, 768)))

# Depth Anything with DINOv2 ViT-B/14 (features 128).
_base_ = './depth_anything_vits.py'
model = dict(
    backbone=dict(embed_dims=768, num_heads=12),
    neck=dict(in_channels=768, reassemble_channels=(96, 192, 384, 768),
              channels=128),
    decode_head=dict(in_channels=128))

# Depth Anything with DINOv2 ViT-L/14 (features 256; V2 hooks blocks 4, 11,
# 17, 23).
_base_ = './depth_anything_vits.py'
model = dict(
    backbone=dict(embed_dims=1024, num_layers=24, num_heads=16,
                  out_indices=(4, 11, 17, 23)),
    neck=dict(in_channels=1024, reassemble_channels=(256, 512, 1024, 1024),
              channels=256),
    decode_head=dict(in_channels=256))

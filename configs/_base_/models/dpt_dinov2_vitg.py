# DPT on DINOv2 ViT-g/14 (SwiGLU MLP).
_base_ = './dpt_dinov2_vits.py'
model = dict(
    backbone=dict(embed_dims=1536, num_layers=40, num_heads=24,
                  ffn_type='swiglu', out_indices=(9, 19, 29, 39)),
    neck=dict(in_channels=1536, reassemble_channels=(192, 384, 768, 1536)))

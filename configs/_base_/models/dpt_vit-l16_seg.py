# DPT-Large for segmentation: ViT-L/16, hooks 5, 11, 17, 23.
_base_ = './dpt_vit-b16_seg.py'
model = dict(
    backbone=dict(
        embed_dims=1024, num_layers=24, num_heads=16,
        out_indices=(5, 11, 17, 23)),
    neck=dict(in_channels=1024, reassemble_channels=(256, 512, 1024, 1024)))

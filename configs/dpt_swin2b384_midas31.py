# MiDaS v3.1 DPT-SwinV2-B 384 (timm swinv2_base_window12to24_192to384).
# Release file: isl-org/MiDaS v3_1 dpt_swin2_base_384.pt
# (tools/model_converters/dpt2mm.py converts it for this config);
# Transformers: Intel/dpt-swinv2-base-384 (hf2mm.py). Inference as MiDaS
# v3.1's midas/model_loader.py: square 384 (keep_aspect_ratio=False), mean =
# std = 0.5, sides multiples of 32, 'minimal' resize, bicubic. MiDaS v3.1
# released no training code; training here follows the DPT paper's MiDaS
# recipe (SSI trimmed loss + gradient matching, Adam, backbone lr 1e-5,
# decoder 1e-4) on a folder of your own images + depth/disparity maps
# (RelativeDepthDataset, see README).
_base_ = [
    './_base_/models/dpt_swinv2-l24_depth.py', './_base_/datasets/relative_depth.py',
    './_base_/schedules/schedule_midas.py', './_base_/default_runtime.py'
]
crop_size = (384, 384)
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(embed_dims=128, num_heads=(4, 8, 16, 32)),
    neck=dict(
        in_channels=(128, 256, 512, 1024),
        reassemble_channels=(128, 256, 512, 1024)))
train_dataloader = dict(batch_size=2)

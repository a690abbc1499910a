# MiDaS v3.1 DPT-SwinV2-T 256 (timm swinv2_tiny_window16_256: window 16, no
# pretraining window). Release file: isl-org/MiDaS v3_1 dpt_swin2_tiny_256.pt
# (tools/model_converters/dpt2mm.py converts it for this config);
# Transformers: Intel/dpt-swinv2-tiny-256 (hf2mm.py). Inference as MiDaS
# v3.1's midas/model_loader.py: square 256 (keep_aspect_ratio=False), mean =
# std = 0.5, sides multiples of 32, 'minimal' resize, bicubic. MiDaS v3.1
# released no training code; training here follows the DPT paper's MiDaS
# recipe (SSI trimmed loss + gradient matching, Adam, backbone lr 1e-5,
# decoder 1e-4) on a folder of your own images + depth/disparity maps
# (RelativeDepthDataset, see README).
_base_ = [
    './_base_/models/dpt_swinv2-l24_depth.py', './_base_/datasets/relative_depth.py',
    './_base_/schedules/schedule_midas.py', './_base_/default_runtime.py'
]
crop_size = (256, 256)
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(
        img_size=256, embed_dims=96, depths=(2, 2, 6, 2),
        num_heads=(3, 6, 12, 24), window_size=16,
        pretrained_window_sizes=(0, 0, 0, 0)),
    neck=dict(
        in_channels=(96, 192, 384, 768),
        reassemble_channels=(96, 192, 384, 768)))
train_dataloader = dict(batch_size=2)
inference_pipeline = [
    dict(type='LoadImageFromNDArray'),
    dict(type='DPTResize', size=256, keep_aspect_ratio=False,
         ensure_multiple_of=32),
    dict(type='PackSegInputs'),
]

# MiDaS v3.1 DPT-BEiT-B 384. Release file: isl-org/MiDaS v3_1
# dpt_beit_base_384.pt (tools/model_converters/dpt2mm.py converts it for this
# config); Transformers: Intel/dpt-beit-base-384 (hf2mm.py). Inference as
# MiDaS v3.1's midas/model_loader.py: keep the aspect ratio around 384, mean =
# std = 0.5, sides multiples of 32, 'minimal' resize, bicubic. MiDaS v3.1
# released no training code; training here follows the DPT paper's MiDaS
# recipe (SSI trimmed loss + gradient matching, Adam, backbone lr 1e-5,
# decoder 1e-4) on a folder of your own images + depth/disparity maps
# (RelativeDepthDataset, see README).
_base_ = [
    './_base_/models/dpt_beit-l16_depth.py', './_base_/datasets/relative_depth.py',
    './_base_/schedules/schedule_midas.py', './_base_/default_runtime.py'
]
crop_size = (384, 384)
# BEiT-B/16: hooks 2, 5, 8, 11, DPT-Base's reassemble widths.
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(
        embed_dims=768, num_layers=12, num_heads=12, layer_scale_init=0.1,
        out_indices=(2, 5, 8, 11)),
    neck=dict(in_channels=768, reassemble_channels=(96, 192, 384, 768)))
train_dataloader = dict(batch_size=2)

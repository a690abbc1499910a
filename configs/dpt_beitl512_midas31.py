# MiDaS v3.1 DPT-BEiT-L 512, the best MiDaS v3.1 model (19-28 % better than
# DPT-L 384 zero-shot). Release file: isl-org/MiDaS v3_1 dpt_beit_large_512.pt
# (tools/model_converters/dpt2mm.py converts it for this config);
# Transformers: Intel/dpt-beit-large-512 (hf2mm.py). Inference as MiDaS v3.1's
# midas/model_loader.py: keep the aspect ratio around 512, mean = std = 0.5,
# sides multiples of 32, 'minimal' resize, bicubic. MiDaS v3.1 released no
# training code; training here follows the DPT paper's MiDaS recipe (SSI
# trimmed loss + gradient matching, Adam, backbone lr 1e-5, decoder 1e-4) on a
# folder of your own images + depth/disparity maps (RelativeDepthDataset, see
# README).
_base_ = [
    './_base_/models/dpt_beit-l16_depth.py', './_base_/datasets/relative_depth.py',
    './_base_/schedules/schedule_midas.py', './_base_/default_runtime.py'
]
crop_size = (512, 512)
model = dict(
    data_preprocessor=dict(size=crop_size), backbone=dict(img_size=512))
train_dataloader = dict(batch_size=2)
inference_pipeline = [
    dict(type='LoadImageFromNDArray'),
    dict(type='DPTResize', size=512, ensure_multiple_of=32),
    dict(type='PackSegInputs'),
]

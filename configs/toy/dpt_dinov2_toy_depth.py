# A small DPT-DINOv2 (as configs/dpt_dinov2/: DPTDINOv2 with the class token
# projected in by the readout, fusion convs without bias, add_projection,
# metric depth out of the ReLU) trained on the toy scenes like
# dpt_toy_depth.py. Inputs are padded to multiples of 14.
_base_ = './dpt_toy_depth.py'
pad_size = (98, 140)  # the 96×128 toy images, padded
model = dict(
    data_preprocessor=dict(
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        size=pad_size,
        test_cfg=dict(size_divisor=14)),
    backbone=dict(
        _delete_=True, type='DPTDINOv2', img_size=pad_size, patch_size=14,
        embed_dims=64, num_layers=4, num_heads=2, out_indices=(0, 1, 2, 3),
        norm_outputs=False),
    neck=dict(readout_type='project', fusion_bias=False),
    decode_head=dict(add_projection=True))
inference_pipeline = [
    dict(type='LoadImageFromNDArray'),
    dict(type='PackSegInputs'),
]

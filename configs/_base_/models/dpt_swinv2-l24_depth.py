# DPT with a Swin V2-L encoder for relative depth (MiDaS v3.1
# dpt_swin2_large_384). Swin is hierarchical: its four stage maps (1/4 ...
# 1/32, after each stage's last block) go to the neck's 3×3 convs directly,
# without readout or reassembly (all levels pass through), as in MiDaS and
# Transformers. Window 24 at 384 (pretrained at 12 on 192: the position
# bias offsets are normalised by the pretraining windows).
_base_ = './dpt_vit-b16_depth.py'
model = dict(
    backbone=dict(
        _delete_=True,
        type='DPTSwinV2',
        img_size=384,
        patch_size=4,
        embed_dims=192,
        depths=(2, 2, 18, 2),
        num_heads=(6, 12, 24, 48),
        window_size=24,
        pretrained_window_sizes=(12, 12, 12, 6),
        norm_eps=1e-5,
        out_indices=(0, 1, 2, 3)),
    neck=dict(
        in_channels=(192, 384, 768, 1536),
        reassemble_channels=(192, 384, 768, 1536),
        resample_factors=(1, 1, 1, 1),
        readout_type='ignore',
        passthrough_indices=(0, 1, 2, 3)))
# MiDaS v3.1 runs Swin V2 on a square input (keep_aspect_ratio=False in
# midas/model_loader.py): its windows are fixed by the training size.
inference_pipeline = [
    dict(type='LoadImageFromNDArray'),
    dict(type='DPTResize', size=384, keep_aspect_ratio=False,
         ensure_multiple_of=32),
    dict(type='PackSegInputs'),
]

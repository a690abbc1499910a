# DPT with a BEiT-L/16 encoder for relative depth (MiDaS v3.1
# dpt_beit_large_384/512): a relative position bias in every block (resized
# to the input's patch grid, so non-square inputs run), layer scale (timm's
# BEiT-L starts it at 1e-5), no absolute position embedding; hooks 5, 11,
# 17, 23; readout, reassemble widths, fusion and head as DPT-Large.
# LayerNorm eps 1e-6 is timm's (the release); Transformers'
# Intel/dpt-beit-* configs say 1e-12.
_base_ = './dpt_vit-b16_depth.py'
model = dict(
    backbone=dict(
        _delete_=True,
        type='DPTBEiT',
        img_size=384,
        patch_size=16,
        embed_dims=1024,
        num_layers=24,
        num_heads=16,
        qkv_bias=True,
        norm_eps=1e-6,
        layer_scale_init=1e-5,
        use_rel_pos_bias=True,
        out_indices=(5, 11, 17, 23)),
    neck=dict(in_channels=1024, reassemble_channels=(256, 512, 1024, 1024)))

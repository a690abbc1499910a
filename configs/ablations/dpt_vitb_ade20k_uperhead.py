# Decoder ablation: mmseg's UPerHead on the DPT backbone instead of DPT's
# reassemble + fusion decoder (mmseg's ViT-UperNet neck rescales the maps).
_base_ = '../dpt_vitb_ade20k.py'
model = dict(
    backbone=dict(output_cls_token=False),
    neck=dict(
        _delete_=True,
        type='MultiLevelNeck',
        in_channels=[768, 768, 768, 768],
        out_channels=768,
        scales=[4, 2, 1, 0.5]),
    decode_head=dict(
        _delete_=True,
        type='UPerHead',
        in_channels=[768, 768, 768, 768],
        in_index=[0, 1, 2, 3],
        pool_scales=(1, 2, 3, 6),
        channels=512,
        dropout_ratio=0.1,
        num_classes=150,
        norm_cfg={{_base_.norm_cfg}},
        align_corners=False,
        loss_decode=dict(
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    auxiliary_head=dict(in_channels=768, in_index=3))

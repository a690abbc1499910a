# BatchNorm ablation: fusion residual units without BatchNorm (as the depth
# models); their convs then carry a bias, the originals' rule.
_base_ = '../dpt_vitb_ade20k.py'
model = dict(neck=dict(fusion_norm_cfg=None))

# Readout ablation (paper Table 7): drop the class token.
_base_ = '../dpt_vitb_ade20k.py'
model = dict(neck=dict(readout_type='ignore'))

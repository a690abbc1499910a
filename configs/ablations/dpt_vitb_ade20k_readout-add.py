# Readout ablation (paper Table 7): add the class token to every token.
_base_ = '../dpt_vitb_ade20k.py'
model = dict(neck=dict(readout_type='add'))

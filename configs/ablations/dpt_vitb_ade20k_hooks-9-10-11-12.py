# Hook ablation (paper Table 6): the last four blocks (1-based 9..12)
# instead of blocks 3, 6, 9, 12 spread over the depth.
_base_ = '../dpt_vitb_ade20k.py'
model = dict(backbone=dict(out_indices=(8, 9, 10, 11)))

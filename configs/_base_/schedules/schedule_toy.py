# The toy runs of configs/toy/ (a few minutes on a laptop CPU): AdamW with
# one lr for every parameter (nothing is pretrained there), poly decay over
# 1,500 iterations. Non-finite steps are skipped, as in the real schedules.
optim_wrapper = dict(
    type='NonFiniteGuardOptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.01),
    on_nonfinite='skip')
param_scheduler = [
    dict(type='PolyLR', eta_min=1e-5, power=0.9, begin=0, end=1500,
         by_epoch=False)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=1500,
                 val_interval=1500)

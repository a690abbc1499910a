# Depth Anything V2's fine-tuning recipe (metric_depth/train.py and
# dist_train.sh): AdamW (betas 0.9/0.999, weight decay 0.01), encoder lr
# 5e-6 and decoder ×10 (5e-5), poly decay with power 0.9 per iteration,
# batch 4 on each of 8 GPUs. Experiments set max_iters.
optim_wrapper = dict(
    type='NonFiniteGuardOptimWrapper',
    optimizer=dict(type='AdamW', lr=5e-5, betas=(0.9, 0.999),
                   weight_decay=0.01),
    on_nonfinite='skip',
    paramwise_cfg=dict(custom_keys={'backbone': dict(lr_mult=0.1)}))
max_iters = 60000
param_scheduler = [
    dict(type='PolyLR', eta_min=0.0, power=0.9, begin=0, end=max_iters,
         by_epoch=False)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters,
                 val_interval=5000)

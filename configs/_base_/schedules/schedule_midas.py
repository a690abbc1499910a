# DPT paper, monocular depth on MIX 6: Adam, lr 1e-5 for the backbone and
# 1e-4 for the randomly initialised decoder, batch 16, 60 epochs of 72,000
# steps. The paper balances data sets with multi-objective optimisation
# (Sener & Koltun); plain summed losses are used here.
optimizer = dict(type='Adam', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.0)
# A NaN/inf loss or gradient skips the step (and names the batch's files)
# instead of poisoning the weights; on_nonfinite='raise' stops the run.
optim_wrapper = dict(
    type='NonFiniteGuardOptimWrapper',
    optimizer=optimizer,
    on_nonfinite='skip',
    paramwise_cfg=dict(custom_keys={'backbone': dict(lr_mult=0.1)}))
param_scheduler = [
    dict(type='ConstantLR', factor=1.0, begin=0, end=4320000,
         by_epoch=False)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=4320000,
                 val_interval=72000)

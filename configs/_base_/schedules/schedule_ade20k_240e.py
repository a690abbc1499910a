# DPT paper, segmentation (protocol of Zhang et al.): SGD, momentum 0.9,
# lr 0.002, poly decay with power 0.9, batch 48, 240 epochs on ADE20K.
# 240 epochs × 20,210 images / 48 = 101,050 iterations.
# Weight decay is not stated in the paper; 1e-4 is the protocol's value.
optimizer = dict(type='SGD', lr=0.002, momentum=0.9, weight_decay=1e-4)
# A NaN/inf loss or gradient skips the step (and names the batch's files)
# instead of poisoning the weights; on_nonfinite='raise' stops the run.
optim_wrapper = dict(
    type='NonFiniteGuardOptimWrapper',
    optimizer=optimizer,
    on_nonfinite='skip',
    clip_grad=None)
param_scheduler = [
    dict(type='PolyLR', eta_min=0.0, power=0.9, begin=0, end=101050,
         by_epoch=False)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=101050,
                 val_interval=10000)

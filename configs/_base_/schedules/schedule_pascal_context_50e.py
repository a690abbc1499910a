# DPT paper: Pascal Context fine-tuned for 50 epochs with the ADE20K
# hyper-parameters unchanged: 50 epochs × 4,996 images / 48 = 5,205 iters.
_base_ = './schedule_ade20k_240e.py'
param_scheduler = [
    dict(type='PolyLR', eta_min=0.0, power=0.9, begin=0, end=5205,
         by_epoch=False)
]
train_cfg = dict(max_iters=5205, val_interval=1000)

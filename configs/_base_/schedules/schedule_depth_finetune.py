# Fine-tuning a MIX 6 depth model on NYUv2 / KITTI. The paper gives the
# losses but not epochs, lr or crop; chosen here: the MIX 6 optimiser
# (Adam, backbone lr 1e-5, decoder 1e-4) with poly decay over 20 epochs at
# batch 8 (NYU 24,231 training images of the BTS split → 60,580 iterations;
# KITTI Eigen 23,158 → 57,900; 60k for both).
_base_ = './schedule_midas.py'
param_scheduler = [
    dict(type='PolyLR', eta_min=0.0, power=0.9, begin=0, end=60000,
         by_epoch=False)
]
train_cfg = dict(max_iters=60000, val_interval=5000)

# DPT-Hybrid fine-tuned on KITTI Eigen (paper Table 3: δ1 0.959, AbsRel
# 0.062, RMSE 2.573), the architecture of dpt_hybrid_kitti-cb926ef4.pt:
# metric depth = 1 / (6.016e-5 · out + 0.00579). Loss: Eigen's
# scale-invariant log loss; no gradient matching (sparse ground truth).
_base_ = [
    './_base_/models/dpt_hybrid_depth.py', './_base_/datasets/kitti.py',
    './_base_/schedules/schedule_depth_finetune.py',
    './_base_/default_runtime.py'
]
crop_size = (352, 704)  # the crop of _base_/datasets/kitti.py
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(ws_mode='std', ws_eps=1e-5),
    decode_head=dict(
        output_mode='metric_from_inverse',
        depth_scale=0.00006016,
        depth_shift=0.00579,
        min_depth=1e-3,
        max_depth=80.0,
        loss_decode=[dict(type='DepthSiLogLoss', max_depth=80.0)]))
inference_pipeline = [  # the original model's network input size
    dict(type='LoadImageFromNDArray'),
    dict(type='DPTResize', size=(352, 1216), ensure_multiple_of=32),
    dict(type='PackSegInputs'),
]
load_from = 'pretrain/dpt_hybrid_midas_mm.pth'
train_dataloader = dict(batch_size=1)  # 8 GPUs × 1 = batch 8

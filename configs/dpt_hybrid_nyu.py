# DPT-Hybrid fine-tuned on NYUv2 (paper Table 2: δ1 0.904, AbsRel 0.110,
# RMSE 0.357), the architecture of dpt_hybrid_nyu-2ce69ec7.pt: metric depth
# = 1 / (0.000305 · out + 0.1378). Starts from the MIX 6 relative model
# (convert dpt_hybrid-midas-501f0c75.pt with tools/model_converters/
# dpt2mm.py). Loss: Eigen's scale-invariant log loss plus gradient matching
# (kept for NYU, the paper says).
_base_ = [
    './_base_/models/dpt_hybrid_depth.py', './_base_/datasets/nyu.py',
    './_base_/schedules/schedule_depth_finetune.py',
    './_base_/default_runtime.py'
]
crop_size = (416, 544)  # the crop of _base_/datasets/nyu.py
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(ws_mode='std', ws_eps=1e-5),
    decode_head=dict(
        output_mode='metric_from_inverse',
        depth_scale=0.000305,
        depth_shift=0.1378,
        min_depth=1e-3,
        max_depth=10.0,
        loss_decode=[
            dict(type='DepthSiLogLoss', max_depth=10.0),
            # The head outputs metric depth and the target is metric depth:
            # no alignment and no inversion ('disparity' = use as given).
            dict(type='GradientMatchingLoss', alignment='none',
                 target_space='disparity', loss_weight=0.5),
        ]))
inference_pipeline = [  # the original model's network input size
    dict(type='LoadImageFromNDArray'),
    dict(type='DPTResize', size=(480, 640), ensure_multiple_of=32),
    dict(type='PackSegInputs'),
]
load_from = 'pretrain/dpt_hybrid_midas_mm.pth'
train_dataloader = dict(batch_size=1)  # 8 GPUs × 1 = batch 8

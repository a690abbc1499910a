default_scope = 'mmseg'
# One line is all a downstream project needs to use dpt_mm's components.
custom_imports = dict(imports=['dpt_mm'], allow_failed_imports=False)
env_cfg = dict(
    cudnn_benchmark=True,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),  # tools/*.py switch to gloo without CUDA
)
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(
    type='DPTLocalVisualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(by_epoch=False)
log_level = 'INFO'
# DPTRunner loads load_from, --resume and test checkpoints strictly (a
# checkpoint that does not fit is refused, naming the keys) and locks the
# work dir against a second training run. load_from_partial=True loads only
# what fits (fine-tuning with another head) and lists the rest.
runner_type = 'DPTRunner'
load_from = None
load_from_partial = False
resume = False
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # Writes to a temporary file, then renames: a run killed mid-save never
    # leaves a half-written checkpoint as the latest one.
    checkpoint=dict(type='AtomicCheckpointHook', by_epoch=False,
                    interval=5000, max_keep_ckpts=3),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
# SampleTrackerHook records the current batch's files so that a non-finite
# loss names them; RNGStateHook stores the random states in checkpoints so a
# resumed run repeats the uninterrupted one (with deterministic=True);
# ValidPixelCheckHook warns on a batch whose ground truth has no valid pixel
# (its loss is 0) and stops the run after an epoch (or 50 batches) of them.
custom_hooks = [
    dict(type='SampleTrackerHook'),
    dict(type='RNGStateHook'),
    dict(type='ValidPixelCheckHook', max_empty_iters=50)
]

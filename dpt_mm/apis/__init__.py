from .inference import (CheckpointMismatchError, build_inference_pipeline,
                        inference_model, init_model, is_depth_model,
                        load_image, load_weights, predict_batch,
                        preprocess_image)
from .inferencer import (DPTInferencer, InferenceFailure, InferencerResult,
                         render_prediction, resolve_config)

__all__ = [
    'CheckpointMismatchError', 'DPTInferencer', 'InferenceFailure',
    'InferencerResult', 'build_inference_pipeline', 'inference_model',
    'init_model', 'is_depth_model', 'load_image', 'load_weights',
    'predict_batch', 'preprocess_image', 'render_prediction',
    'resolve_config'
]

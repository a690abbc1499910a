"""Weight converters: Transformers and original isl-org/DPT ↔ dpt_mm.

Pure functions from a foreign state dict (and its config) to dpt_mm keys,
plus :func:`load_converted`, a strict loader that refuses a mismatching
checkpoint without touching the model. The command-line tools are
``tools/model_converters/hf2mm.py`` and ``dpt2mm.py``.
"""
from .common import (CheckpointMismatchError, Conversion, format_py_config,
                     load_converted, unwrap_state_dict)
from .hf import (convert_hf_state_dict, hf_config_to_mm_config,
                 hf_dataset_meta, hf_processor_to_mm, infer_hf_task,
                 map_hf_state_dict, resolve_hf_config)
from .hf_export import (MM2HF_FAMILIES, HFFamily, convert_mm_to_hf,
                        mm_config_to_hf_config, mm_state_dict_to_hf)
from .hf_folder import (HF_NUMERICS, convert_hf_folder, is_hf_folder,
                        load_hf_folder, mm_processor_to_hf, save_hf_folder)
from .original import (ORIGINAL_VARIANTS, check_original_numerics,
                       convert_original_state_dict, guess_variant,
                       map_original_state_dict,
                       resolve_model_config, variant_config_path)
from .timm import (TIMM_PRETRAIN_FILES, TIMM_VARIANTS, TimmConversion,
                   build_backbone_skeleton, check_backbone_weights,
                   convert_timm_state_dict, guess_timm_variant,
                   load_backbone_checkpoint, map_timm_state_dict,
                   timm_backbone_config, timm_vit_rules)

__all__ = [
    'CheckpointMismatchError', 'Conversion', 'ORIGINAL_VARIANTS',
    'check_original_numerics',
    'convert_hf_state_dict', 'convert_original_state_dict',
    'format_py_config', 'guess_variant', 'hf_config_to_mm_config',
    'hf_dataset_meta', 'infer_hf_task', 'load_converted',
    'map_hf_state_dict', 'map_original_state_dict', 'resolve_hf_config',
    'resolve_model_config', 'unwrap_state_dict', 'variant_config_path',
    'TIMM_PRETRAIN_FILES', 'TIMM_VARIANTS', 'TimmConversion',
    'build_backbone_skeleton', 'check_backbone_weights',
    'convert_timm_state_dict', 'guess_timm_variant',
    'load_backbone_checkpoint', 'map_timm_state_dict',
    'timm_backbone_config', 'timm_vit_rules', 'hf_processor_to_mm',
    'MM2HF_FAMILIES', 'HFFamily', 'convert_mm_to_hf',
    'mm_config_to_hf_config', 'mm_state_dict_to_hf', 'HF_NUMERICS',
    'convert_hf_folder', 'is_hf_folder', 'load_hf_folder',
    'mm_processor_to_hf', 'save_hf_folder'
]

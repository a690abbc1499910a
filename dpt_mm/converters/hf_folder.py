"""Transformers ``save_pretrained`` folders: read, convert, write.

The file side of the Transformers converters, shared by ``hf2mm.py``,
``mm2hf.py`` and :func:`dpt_mm.apis.init_model` (which takes a folder
directly). Transformers itself is never imported.
"""
import copy
import json
import os
import os.path as osp
from typing import Any, Dict, List, Mapping, Optional, Tuple

import torch
from torch import Tensor

from .hf import (hf_config_to_mm_config, hf_dataset_meta, hf_processor_to_mm,
                 infer_hf_task, map_hf_state_dict)
from .hf_export import convert_mm_to_hf

__all__ = [
    'HF_NUMERICS', 'convert_hf_folder', 'is_hf_folder', 'load_hf_folder',
    'mm_processor_to_hf', 'save_hf_folder'
]

# The numerics of a Transformers DPT-Hybrid (BiT weight standardisation);
# recorded in converted checkpoints so that a model with the release
# numerics (ws_mode='std', ws_eps=1e-5) cannot load them silently.
HF_NUMERICS = {'backbone.ws_mode': 'var', 'backbone.ws_eps': 1e-8}


def is_hf_folder(path: Any) -> bool:
    """Whether ``path`` is a folder with a ``config.json``."""
    return isinstance(path, (str, os.PathLike)) and osp.isfile(
        osp.join(os.fspath(path), 'config.json'))


def _load_safetensors(path: str) -> Dict[str, Tensor]:
    from safetensors.torch import load_file
    return load_file(path, device='cpu')


def load_hf_folder(src: str) -> Tuple[Dict[str, Any], Dict[str, Tensor],
                                      Optional[Dict[str, Any]]]:
    """Read a ``save_pretrained`` folder without Transformers.

    Args:
        src (str): Folder with ``config.json`` and ``model.safetensors``, a
            sharded safetensors index or ``pytorch_model.bin``.

    Returns:
        tuple: ``config.json`` dict, the state dict, and the
        ``preprocessor_config.json`` dict (None if absent).

    Raises:
        FileNotFoundError: No ``config.json`` or no weights; the message
            names the folder.
    """
    src = os.fspath(src)
    config_path = osp.join(src, 'config.json')
    if not osp.isfile(config_path):
        raise FileNotFoundError(f'{config_path} not found: expected a '
                                'Transformers save_pretrained folder')
    with open(config_path) as f:
        config = json.load(f)
    single = osp.join(src, 'model.safetensors')
    index = osp.join(src, 'model.safetensors.index.json')
    pt_bin = osp.join(src, 'pytorch_model.bin')
    if osp.isfile(single):
        state_dict = _load_safetensors(single)
    elif osp.isfile(index):
        with open(index) as f:
            shards = sorted(set(json.load(f)['weight_map'].values()))
        state_dict = {}
        for shard in shards:
            state_dict.update(_load_safetensors(osp.join(src, shard)))
    elif osp.isfile(pt_bin):
        state_dict = torch.load(pt_bin, map_location='cpu', weights_only=True)
    else:
        raise FileNotFoundError(
            f'no weights in {src}: expected model.safetensors, '
            'model.safetensors.index.json or pytorch_model.bin')
    preprocessor = None
    pre_path = osp.join(src, 'preprocessor_config.json')
    if osp.isfile(pre_path):
        with open(pre_path) as f:
            preprocessor = json.load(f)
    return config, state_dict, preprocessor


def convert_hf_folder(src: str, task: Optional[str] = None
                      ) -> Dict[str, Any]:
    """Convert a Transformers folder in memory.

    Args:
        src (str): ``save_pretrained`` folder.
        task (str, optional): ``'depth'``, ``'seg'`` or ``'backbone'``;
            default from the weights.

    Returns:
        dict: ``model`` (model config), ``inference_pipeline`` (the image
        processor as transforms), ``checkpoint`` (``state_dict``, ``meta``
        and ``hf_unused``: the Transformers tensors dpt_mm does not keep, for
        an exact export back) and ``conversion`` (the report).
    """
    hf_config, hf_state, preprocessor = load_hf_folder(src)
    task = task or infer_hf_task(hf_state)
    conversion = map_hf_state_dict(hf_state, hf_config, task)
    processor = hf_processor_to_mm(preprocessor)
    model_cfg = hf_config_to_mm_config(hf_config, task,
                                       mean=processor['mean'],
                                       std=processor['std'])
    meta = dict(
        dataset_meta=hf_dataset_meta(hf_config, task),
        converted_from='transformers',
        source=osp.abspath(src),
        hf_architectures=list(hf_config.get('architectures') or []),
        task=task,
        hf_config=hf_config,
        hf_preprocessor=preprocessor,
        dropped_keys=sorted(conversion.dropped))
    if model_cfg['backbone']['type'] == 'DPTViTHybrid':
        meta['numerics'] = dict(HF_NUMERICS)
    # A bare DPTModel (keys without 'dpt.') is never exported back.
    unused = {} if task == 'backbone' else {
        k: hf_state[k] for k in conversion.dropped
        if not k.startswith('dpt.pooler.')}
    checkpoint = dict(state_dict=conversion.state_dict, meta=meta,
                      hf_unused=unused)
    return dict(model=model_cfg,
                inference_pipeline=processor['inference_pipeline'],
                checkpoint=checkpoint, conversion=conversion)


def _transform_type(transform: Mapping[str, Any]) -> str:
    kind = transform.get('type', '')
    return kind if isinstance(kind, str) else kind.__name__


_PIL_RESAMPLE_IDS = {'nearest': 0, 'lanczos': 1, 'bilinear': 2,
                     'bicubic': 3, 'box': 4, 'hamming': 5}


def mm_processor_to_hf(data_preprocessor: Mapping[str, Any],
                       pipeline: Optional[List[Mapping[str, Any]]],
                       source: Optional[Mapping[str, Any]] = None,
                       approximate_resize: bool = False) -> Dict[str, Any]:
    """A ``preprocessor_config.json`` dict for a dpt_mm inference pipeline.

    Args:
        data_preprocessor (Mapping): The model's data preprocessor config
            (``mean``, ``std``, ``bgr_to_rgb``).
        pipeline (list[dict], optional): The inference pipeline: a loader,
            at most one ``DPTResize`` and ``PackSegInputs``.
        source (Mapping, optional): The ``preprocessor_config.json`` the
            model came from; kept as it is when it gives the same pipeline.
        approximate_resize (bool): Accept an OpenCV resize
            (``backend='cv2'``) and write Pillow's filter of the same name,
            which gives slightly different network inputs.

    Returns:
        dict: ``DPTImageProcessor`` settings.

    Raises:
        ValueError: A transform or setting the Transformers processor cannot
            do; the message names it.
    """
    if not data_preprocessor.get('bgr_to_rgb', False):
        raise ValueError('data_preprocessor.bgr_to_rgb=False cannot be '
                         'expressed in Transformers: its processor feeds RGB')
    mean = [float(m) for m in data_preprocessor.get('mean') or (0, 0, 0)]
    std = [float(s) for s in data_preprocessor.get('std') or (1, 1, 1)]
    out = dict(
        image_processor_type='DPTImageProcessor', do_resize=False,
        size={'height': 384, 'width': 384}, keep_aspect_ratio=False,
        ensure_multiple_of=1, resample=3, do_rescale=True,
        rescale_factor=1 / 255, do_normalize=True,
        image_mean=[m / 255 for m in mean], image_std=[s / 255 for s in std],
        do_pad=False, size_divisor=None)
    for transform in pipeline or []:
        kind = _transform_type(transform)
        if kind.startswith('Load') or kind == 'PackSegInputs':
            continue
        if kind != 'DPTResize' or out['do_resize']:
            raise ValueError(
                f'inference_pipeline transform {kind!r} cannot be expressed '
                "in Transformers' DPTImageProcessor (one DPTResize only)")
        backend = transform.get('backend', 'cv2')
        if backend != 'pil' and not approximate_resize:
            raise ValueError(
                "inference_pipeline DPTResize backend='cv2' (OpenCV) cannot "
                'be expressed in Transformers, which resizes with Pillow: '
                "set backend='pil' in the config, or accept Pillow's filter "
                'of the same name (--approximate-resize)')
        method = transform.get('resize_method', 'minimal')
        if method != 'minimal':
            raise ValueError(f'inference_pipeline DPTResize resize_method='
                             f'{method!r}: Transformers has "minimal" only')
        interpolation = transform.get('interpolation', 'bicubic')
        if interpolation not in _PIL_RESAMPLE_IDS:
            raise ValueError(f'inference_pipeline DPTResize interpolation='
                             f'{interpolation!r} has no Pillow equivalent')
        size = transform.get('size', 384)
        height, width = (size, size) if isinstance(size, int) else size
        out.update(do_resize=True, size={'height': height, 'width': width},
                   keep_aspect_ratio=bool(transform.get(
                       'keep_aspect_ratio', True)),
                   ensure_multiple_of=int(transform.get(
                       'ensure_multiple_of', 32)),
                   resample=_PIL_RESAMPLE_IDS[interpolation])
        if transform.get('pad_size_divisor'):
            pad_val = transform.get('pad_val', 0)
            if [float(v) for v in (pad_val if isinstance(
                    pad_val, (list, tuple)) else [pad_val] * 3)] != mean[::-1]:
                raise ValueError(
                    f'inference_pipeline DPTResize pad_val={pad_val}: '
                    'Transformers pads with the normalisation mean only')
            out.update(do_pad=True,
                       size_divisor=int(transform['pad_size_divisor']))
    if source is not None:
        same = hf_processor_to_mm(source) == hf_processor_to_mm(out)
        if same:
            return copy.deepcopy(dict(source))
    return out


def _load_mm_checkpoint(checkpoint: Any) -> Dict[str, Any]:
    if isinstance(checkpoint, Mapping):
        return dict(checkpoint)
    from ..utils.checkpoint import load_checkpoint_file
    return load_checkpoint_file(os.fspath(checkpoint))


def save_hf_folder(model_cfg: Mapping[str, Any],
                   checkpoint: Any,
                   out_dir: str,
                   inference_pipeline: Optional[List[Mapping[str, Any]]]
                   = None,
                   approximate_resize: bool = False) -> Dict[str, Any]:
    """Write a Transformers folder for a dpt_mm model.

    ``config.json``, ``model.safetensors`` and ``preprocessor_config.json``
    load with ``DPTForDepthEstimation`` / ``DPTForSemanticSegmentation`` /
    ``pipeline(...)`` without missing or unexpected keys.

    Args:
        model_cfg (Mapping): The model config.
        checkpoint (str | Mapping): dpt_mm checkpoint path or loaded object
            (``state_dict`` and optional ``meta``/``hf_unused``).
        out_dir (str): Output folder (created).
        inference_pipeline (list[dict], optional): The model's inference
            pipeline (default: DPTResize to the backbone's ``img_size``).
        approximate_resize (bool): See :func:`mm_processor_to_hf`.

    Returns:
        dict: ``config`` and ``preprocessor`` written, and ``conversion``.

    Raises:
        ValueError: A setting Transformers cannot express (named).
        CheckpointMismatchError: The weights do not fit ``model_cfg``.
    """
    from ..utils.checkpoint import save_safetensors
    loaded = _load_mm_checkpoint(checkpoint)
    meta = loaded.get('meta') or {}
    state_dict = loaded.get('state_dict', loaded)
    state_dict = {k[len('module.'):] if k.startswith('module.') else k: v
                  for k, v in state_dict.items()
                  if isinstance(v, Tensor)}
    _check_weights(model_cfg, state_dict)
    hf_config, conversion = convert_mm_to_hf(
        state_dict, model_cfg, meta.get('dataset_meta'),
        meta.get('hf_config'), loaded.get('hf_unused'))
    if inference_pipeline is None:
        img_size = model_cfg['backbone'].get('img_size', 384)
        inference_pipeline = [dict(type='DPTResize', size=img_size,
                                   backend='pil')]
    preprocessor = mm_processor_to_hf(
        model_cfg.get('data_preprocessor') or {}, inference_pipeline,
        meta.get('hf_preprocessor'), approximate_resize)
    os.makedirs(out_dir, exist_ok=True)
    with open(osp.join(out_dir, 'config.json'), 'w') as f:
        json.dump(hf_config, f, indent=2, sort_keys=True)
    with open(osp.join(out_dir, 'preprocessor_config.json'), 'w') as f:
        json.dump(preprocessor, f, indent=2, sort_keys=True)
    save_safetensors(
        {k: v.contiguous() for k, v in conversion.state_dict.items()},
        osp.join(out_dir, 'model.safetensors'), metadata={'format': 'pt'})
    return dict(config=hf_config, preprocessor=preprocessor,
                conversion=conversion)


def _check_weights(model_cfg: Mapping[str, Any],
                   state_dict: Mapping[str, Tensor]) -> None:
    """Strict load into the model the config builds (fails naming keys)."""
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    from .common import load_converted
    init_default_scope('mmseg')
    cfg = copy.deepcopy(dict(model_cfg))
    cfg.pop('init_cfg', None)
    for part in ('backbone', 'neck', 'decode_head', 'auxiliary_head'):
        if isinstance(cfg.get(part), Mapping):
            cfg[part] = dict(cfg[part])
            cfg[part].pop('init_cfg', None)
    model = MODELS.build(cfg)
    load_converted(model, state_dict, 'dpt_mm checkpoint')


"""Build a DPT model from a config and run it on images.

Preprocessing and post-processing follow the published DPT models (and
Transformers' ``DPTImageProcessor`` / depth-estimation pipeline):

1. the image is resized with :class:`~dpt_mm.datasets.transforms.DPTResize`
   (aspect ratio kept, sides multiples of 32 around the target size, OpenCV
   bicubic), unless the config gives its own pipeline (``hf2mm.py
   --config-out`` writes the Transformers processor's, with Pillow);
2. ``model.test_step`` runs the rest, the same path as ``tools/test.py``:
   the data preprocessor converts BGR → RGB and normalises (mean = std =
   127.5 by default); the DPT segmentors (``DPTDepthEstimator``,
   ``DPTEncoderDecoder``; :func:`init_model` builds mmseg's
   ``DepthEstimator``/``EncoderDecoder`` configs as these) crop the output
   to the resized image and resize it back to the original size: depth
   bicubically (``post_process_depth_estimation``), segmentation logits
   bilinearly before the argmax (``post_process_semantic_segmentation``),
   both set by ``test_cfg.resize_mode``.

Memory: because step 1 bounds the network input (about 384×512 for a 4:3
image whatever its resolution), a huge image only costs its own pixels and
the full-size output map. A custom pipeline without such a resize sends the
whole image through global attention; a warning is printed above
:data:`LARGE_INPUT_TOKENS` tokens, and segmentation configs can use
``test_cfg=dict(mode='slide', crop_size=..., stride=...)``.
"""
import copy
import os
import re
import warnings
from collections import OrderedDict
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np
import torch
from mmengine.config import Config
from mmengine.dataset import Compose
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import DefaultScope, init_default_scope

from mmseg.models import BaseSegmentor
from mmseg.models.segmentors import DepthEstimator
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from mmseg.utils import get_classes, get_palette
from ..accel import accelerate_from_cfg
from ..converters.common import (CheckpointMismatchError, load_converted,
                                 unwrap_state_dict)
from ..converters.hf_folder import convert_hf_folder, is_hf_folder
from ..datasets.transforms.loading import load_image_checked
from ..models.check import check_model_config
from ..utils import load_checkpoint_file, load_config
from ..visualization.render import default_palette

__all__ = [
    'CheckpointMismatchError', 'ImageInput', 'INPUT_FORMATS',
    'LARGE_INPUT_TOKENS', 'adopt_checkpoint_numerics',
    'build_inference_pipeline', 'check_numerics', 'inference_model',
    'inference_pipeline_config', 'init_model', 'is_depth_model',
    'load_image', 'load_weights', 'predict_batch', 'preprocess_image',
    'use_dpt_segmentor'
]

ImageInput = Union[str, os.PathLike, np.ndarray]
INPUT_FORMATS = ('bgr', 'rgb')
# Above this many patch tokens in one whole-image forward pass a warning
# says how to bound memory (2048×2048 at patch 16).
LARGE_INPUT_TOKENS = 16384
_DPT_SEGMENTORS = {'DepthEstimator': 'DPTDepthEstimator',
                   'EncoderDecoder': 'DPTEncoderDecoder'}
_IMAGE_LOADERS = ('LoadImageFromFile', 'LoadImageFromNDArray',
                  'LoadImageChecked', 'InferencerLoader')


# --------------------------------------------------------------------------
# Model building and weights
# --------------------------------------------------------------------------
def _foreign_layout_hint(keys: Sequence[str]) -> str:
    if any(k.startswith(('pretrained.', 'scratch.')) for k in keys):
        return ('; its keys look like an original isl-org/DPT release file: '
                'convert it with tools/model_converters/dpt2mm.py')
    if any(k.startswith(('dpt.', 'neck.reassemble_stage', 'head.head.'))
           for k in keys):
        return ('; its keys look like a Transformers DPT model: convert it '
                'with tools/model_converters/hf2mm.py')
    return ''


def _model_numerics(model: torch.nn.Module) -> Dict[str, object]:
    """The weight-standardisation settings a built model uses, if any."""
    for module in model.modules():
        if hasattr(module, 'ws_mode') and hasattr(module, 'eps'):
            return {'backbone.ws_mode': module.ws_mode,
                    'backbone.ws_eps': float(module.eps)}
    return {}


def check_numerics(current: Dict[str, object], meta: Optional[dict],
                   context: str) -> List[str]:
    """Numerics a checkpoint was made for that a model does not use.

    Converters record them in ``meta['numerics']`` (hf2mm: Transformers'
    BiT ``ws_mode='var', ws_eps=1e-8``; dpt2mm: the release's ``'std'``,
    ``1e-5``); the two give outputs about 6e-4 apart.

    Args:
        current (dict): ``'backbone.ws_mode'`` etc. → the model's value.
        meta (dict, optional): The checkpoint's ``meta``.
        context (str): Named in the lines.

    Returns:
        list[str]: ``key: model value vs checkpoint value`` per difference.
    """
    wanted = (meta or {}).get('numerics') or {}
    return [f'{key}={current[key]!r} in the model, {value!r} in {context}'
            for key, value in wanted.items()
            if key in current and current[key] != value]


def load_weights(model: torch.nn.Module,
                 checkpoint: str,
                 trust: bool = False) -> dict:
    """Load a checkpoint into a model strictly, through the safe loader.

    The file is read with :func:`dpt_mm.utils.load_checkpoint_file`
    (``weights_only`` unpickling: nothing in it can run code unless
    ``trust``). Every model key must be present with the same shape and no
    key may be left over; otherwise nothing is loaded.

    Args:
        model (nn.Module): The model.
        checkpoint (str): Path of an mmengine checkpoint (``state_dict`` +
            ``meta``) or of a plain state dict.
        trust (bool): Full unpickling, for files from a trusted source.

    Returns:
        dict: The loaded checkpoint object (for its ``meta``).

    Raises:
        FileNotFoundError: No such file.
        dpt_mm.converters.CheckpointMismatchError: Missing or unexpected
            keys, or shapes that differ; the message names the file and
            lists the keys.
        ValueError: The checkpoint records numerics (``meta['numerics']``)
            the model does not use; build it with them (``init_model``
            adopts them).
    """
    loaded = load_checkpoint_file(checkpoint, map_location='cpu', trust=trust)
    _load_loaded(model, loaded, f'checkpoint {checkpoint}')
    return loaded


def _load_loaded(model: torch.nn.Module, loaded: dict, context: str) -> None:
    mismatch = check_numerics(_model_numerics(model), loaded.get('meta'),
                              context)
    if mismatch:
        raise ValueError('the model and checkpoint numerics differ (outputs '
                         'would be off by ~1e-3): ' + '; '.join(mismatch) +
                         ". Build the model with the checkpoint's values "
                         '(init_model adopts them).')
    state_dict = unwrap_state_dict(loaded)
    # DataParallel / DDP wrappers prefix every key with "module.".
    state_dict = {re.sub(r'^module\.', '', k): v
                  for k, v in state_dict.items()}
    load_converted(model, state_dict,
                   context=context + _foreign_layout_hint(list(state_dict)))


def _config_metainfo(cfg: Config) -> Optional[dict]:
    if cfg.get('metainfo'):
        return dict(cfg.metainfo)
    for loader in ('test_dataloader', 'val_dataloader'):
        dataset = (cfg.get(loader) or {}).get('dataset') or {}
        if dataset.get('metainfo'):
            return dict(dataset['metainfo'])
    return None


def _seg_dataset_meta(num_classes: int) -> dict:
    from mmseg.utils import dataset_aliases
    # As mmseg's init_model: a data set with the same number of classes
    # (150 → ADE20K, 59 → Pascal Context) gives names and palette.
    for name in dataset_aliases:
        if len(get_classes(name)) == num_classes:
            return dict(classes=get_classes(name), palette=get_palette(name))
    return dict(classes=[f'class_{i}' for i in range(num_classes)],
                palette=default_palette(num_classes).tolist())


def _adopt_numerics(cfg: Config, meta: Optional[dict], context: str) -> None:
    """Set the numerics a checkpoint records in the model config (warns)."""
    wanted = (meta or {}).get('numerics') or {}
    current = {}
    for key in wanted:
        part, _, name = key.partition('.')
        section = cfg.model.get(part)
        if isinstance(section, dict) and section.get('type') in (
                'DPTViTHybrid', ):
            default = dict(ws_mode='var', ws_eps=1e-8).get(name)
            current[key] = section.get(name, default)
    mismatch = check_numerics(current, meta, context)
    if not mismatch:
        return
    warnings.warn('adopting the numerics the weights were made for: ' +
                  '; '.join(mismatch))
    for key in current:
        part, _, name = key.partition('.')
        cfg.model[part][name] = wanted[key]


def use_dpt_segmentor(cfg: Config) -> None:
    """Build mmseg's ``DepthEstimator``/``EncoderDecoder`` as DPT's.

    ``DPTDepthEstimator`` and ``DPTEncoderDecoder`` are the same models
    (same keys) with DPT's test path: padding to 32, the post-processing
    ``test_cfg`` sets (bicubic depth), bounded-memory segmentation.
    :func:`init_model` and ``tools/test.py`` both call this, so they give
    the same maps for any config.

    Args:
        cfg (Config): The config, changed in place.
    """
    kind = cfg.model.get('type')
    if isinstance(kind, str) and kind in _DPT_SEGMENTORS:
        cfg.model.type = _DPT_SEGMENTORS[kind]


def adopt_checkpoint_numerics(cfg: Config, checkpoint: str) -> None:
    """Set in ``cfg.model`` the numerics a checkpoint file records.

    For loads that do not go through :func:`init_model` (``tools/test.py``
    sets ``load_from``); warns when it changes something.

    Args:
        cfg (Config): The config, changed in place.
        checkpoint (str): Checkpoint path.
    """
    loaded = load_checkpoint_file(checkpoint, map_location='cpu')
    if isinstance(loaded, dict):
        _adopt_numerics(cfg, loaded.get('meta'), f'checkpoint {checkpoint}')


def is_depth_model(model: torch.nn.Module) -> bool:
    """Whether a model predicts depth (an mmseg ``DepthEstimator``).

    Args:
        model (nn.Module): A model from :func:`init_model`.

    Returns:
        bool: True for depth models, False for segmentation models.
    """
    return isinstance(model, DepthEstimator)


def init_model(config: Union[str, Path, Config],
               checkpoint: Optional[str] = None,
               device: str = 'cpu',
               cfg_options: Optional[dict] = None,
               trust_checkpoint: bool = False,
               accel: Optional[str] = None) -> BaseSegmentor:
    """Build a model from a config and load its weights strictly.

    ``config`` may also be a Transformers ``save_pretrained`` folder of a
    DPT (``config.json``, weights, ``preprocessor_config.json``): it is
    converted in memory, image processor included, so that
    ``init_model('path/to/saved_dpt')`` gives Transformers' numbers.

    Numerics a checkpoint records (``meta['numerics']``, written by the
    converters: the hybrid's weight standardisation) are adopted with a
    warning when the config says otherwise.

    Sets mmseg as the default registry scope, builds ``cfg.model`` (SyncBN
    converted to BN: inference never synchronises), loads ``checkpoint``
    with :func:`load_weights` (safe unpickling, every key and shape must
    match) and returns the model in eval mode with ``model.cfg`` and
    ``model.dataset_meta`` set. ``dataset_meta`` comes from the
    checkpoint's ``meta``, else from the config's ``metainfo``, else (for
    segmentation) from the mmseg data set with the same number of classes
    or a generated palette.

    Args:
        config (str | Path | Config): Config file, loaded config, or a
            Transformers folder.
        checkpoint (str, optional): mmengine checkpoint or state dict
            (torch file or safetensors); None keeps random weights (or,
            for a Transformers folder, takes its weights).
        device (str): Device, e.g. ``'cpu'`` or ``'cuda:0'``.
        cfg_options (dict, optional): Config overrides, ``{'a.b': value}``.
        trust_checkpoint (bool): Allow full unpickling of the checkpoint
            (only for files from a trusted source).
        accel (str, optional): :func:`dpt_mm.accel.accelerate` mode; None
            takes the config's ``accel`` key (default ``'auto'``).

    Returns:
        BaseSegmentor: The model in eval mode.

    Raises:
        FileNotFoundError: The config or checkpoint does not exist (the
            message names it).
        dpt_mm.converters.CheckpointMismatchError: The checkpoint does not
            fit the model (missing/unexpected keys or shapes listed).

    Examples:
        >>> from dpt_mm.apis import init_model, inference_model
        >>> model = init_model('configs/dpt_hybrid_midas.py',
        ...                    'checkpoints/dpt_hybrid_midas_mm.pth')
        >>> result = inference_model(model, 'kitchen.jpg')
        >>> depth = result.pred_depth_map.data[0]  # H×W, original size
    """
    loaded = None
    context = f'checkpoint {checkpoint}'
    if is_hf_folder(config):
        if checkpoint is not None:
            raise ValueError(f'{config} is a Transformers folder with its own '
                             f'weights; do not pass checkpoint={checkpoint!r}')
        converted = convert_hf_folder(os.fspath(config))
        if converted['checkpoint']['meta']['task'] == 'backbone':
            raise ValueError(f'{config} holds a bare DPTModel (no neck or '
                             'head weights): nothing to infer with')
        config = Config(dict(default_scope='mmseg', model=converted['model'],
                             inference_pipeline=converted[
                                 'inference_pipeline']))
        loaded = converted['checkpoint']
        context = f'Transformers folder {loaded["meta"]["source"]}'
    if isinstance(config, (str, Path)):
        config = os.fspath(config)
    elif isinstance(config, Config):
        config = copy.deepcopy(config)  # the caller's config stays as is
    else:
        raise TypeError(f'config must be a path or a Config, got '
                        f'{type(config)}')
    # FileNotFoundError naming the path (and close config names) if missing.
    cfg = load_config(config, cfg_options)
    # Weights come from `checkpoint`; don't fetch pretrained backbones.
    # (pop: DepthSegEstimator takes no `pretrained` argument at all.)
    cfg.model.pop('pretrained', None)
    cfg.model.train_cfg = None
    for part in ('backbone', 'neck', 'decode_head', 'auxiliary_head',
                 'depth_head'):
        if isinstance(cfg.model.get(part), dict):
            cfg.model[part].pop('init_cfg', None)
    if checkpoint is not None:
        loaded = load_checkpoint_file(checkpoint, map_location='cpu',
                                      trust=trust_checkpoint)
    use_dpt_segmentor(cfg)
    if loaded is not None:
        _adopt_numerics(cfg, loaded.get('meta'), context)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    check_model_config(cfg.model)  # EncoderDecoder configs too
    model = revert_sync_batchnorm(MODELS.build(cfg.model))
    meta = None
    if loaded is not None:
        _load_loaded(model, loaded, context)
        ckpt_meta = loaded.get('meta') or {}
        if ckpt_meta.get('dataset_meta'):
            meta = dict(ckpt_meta['dataset_meta'])
        elif 'CLASSES' in ckpt_meta:  # mmseg 0.x checkpoints
            meta = dict(classes=ckpt_meta['CLASSES'],
                        palette=ckpt_meta.get('PALETTE'))
    meta = meta or _config_metainfo(cfg)
    if not is_depth_model(model):
        num_classes = model.decode_head.num_classes
        if not meta or not meta.get('classes'):
            meta = _seg_dataset_meta(num_classes)
        elif not meta.get('palette'):
            meta['palette'] = default_palette(len(meta['classes'])).tolist()
    model.dataset_meta = meta
    model.cfg = cfg
    accelerate_from_cfg(model, cfg, accel)
    model.to(device)
    model.eval()
    return model


# --------------------------------------------------------------------------
# Images and pipeline
# --------------------------------------------------------------------------
def _array_to_bgr(img: np.ndarray, input_format: str) -> np.ndarray:
    if input_format not in INPUT_FORMATS:
        raise ValueError(f'input_format must be one of {INPUT_FORMATS}, '
                         f'got {input_format!r}')
    if img.size == 0:
        raise ValueError(f'empty image array of shape {img.shape}')
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[..., 0]
    if img.ndim == 2:  # grayscale: the same value in all three channels
        img = np.repeat(img[..., None], 3, axis=2)
    elif img.ndim == 3 and img.shape[2] in (3, 4):
        img = img[..., :3]  # alpha dropped, as PIL's convert('RGB') does
        if input_format == 'rgb':
            img = img[..., ::-1]
    else:
        raise ValueError(f'expected a H×W, H×W×1, H×W×3 or H×W×4 image, got '
                         f'shape {img.shape}')
    if img.dtype == np.uint16:
        img = img.astype(np.float32) / 257.0  # 65535 → 255
    elif img.dtype == np.bool_:
        raise TypeError('boolean arrays are not images')
    elif img.dtype != np.uint8:
        img = img.astype(np.float32)  # other types: values in 0–255
    return np.ascontiguousarray(img)


def load_image(image: ImageInput, input_format: str = 'bgr') -> np.ndarray:
    """Read a file or convert an array to a 3-channel BGR image.

    Files are decoded with OpenCV (EXIF orientation applied, 16-bit kept,
    truncated JPEG and PNG files rejected). Arrays: grayscale (H×W or H×W×1) is
    replicated, the alpha channel of 4-channel images is dropped, uint16 is
    scaled to 0–255 and other non-uint8 types are taken as 0–255 values.

    Args:
        image (str | PathLike | np.ndarray): Path or array.
        input_format (str): Channel order of colour arrays, ``'bgr'``
            (mmseg/OpenCV, default) or ``'rgb'`` (PIL, Transformers).

    Returns:
        np.ndarray: H×W×3 BGR image, uint8 (or float32 for 16-bit and float
        inputs).

    Raises:
        FileNotFoundError: The file does not exist.
        dpt_mm.datasets.transforms.DataFileError: The file is empty,
            truncated or not an image.
    """
    if isinstance(image, (str, os.PathLike)):
        # Any depth and colour: 16-bit files keep their precision (plain
        # IMREAD_COLOR would truncate to 8 bits); EXIF orientation applies.
        decoded = load_image_checked(
            os.fspath(image),
            color_type=cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR)
        return _array_to_bgr(decoded, 'bgr')
    if isinstance(image, np.ndarray):
        return _array_to_bgr(image, input_format)
    raise TypeError(f'an image must be a path or a numpy array, got '
                    f'{type(image)}')


def _native_size(cfg: Config) -> Union[int, Tuple[int, int]]:
    img_size = cfg.model.get('backbone', {}).get('img_size', 384)
    return img_size if isinstance(img_size, int) else tuple(img_size)


def _transform_type(transform: dict) -> str:
    kind = transform.get('type', '')
    return kind if isinstance(kind, str) else kind.__name__


def inference_pipeline_config(cfg: Config) -> List[dict]:
    """The per-image transform configs used by :func:`inference_model`.

    Taken from ``cfg.inference_pipeline``, else ``cfg.test_pipeline`` (or
    the test data loader's), else the DPT default
    ``[LoadImageFromNDArray, DPTResize(size=backbone img_size),
    PackSegInputs]``. The image loader becomes ``LoadImageFromNDArray``
    (images are decoded by :func:`load_image`), and other ``Load*``
    transforms (labels, which inference does not have) are dropped.

    Args:
        cfg (Config): The model's config (``model.cfg``).

    Returns:
        list[dict]: Transform configs from ``dict(img=...)`` to packed
        inputs.
    """
    pipeline_cfg = cfg.get('inference_pipeline') or cfg.get('test_pipeline')
    if not pipeline_cfg:
        dataset = (cfg.get('test_dataloader') or {}).get('dataset') or {}
        pipeline_cfg = dataset.get('pipeline')
    if not pipeline_cfg:
        pipeline_cfg = [
            dict(type='LoadImageFromNDArray'),
            dict(type='DPTResize', size=_native_size(cfg)),
            dict(type='PackSegInputs'),
        ]
    transforms, has_loader = [], False
    for transform in copy.deepcopy(list(pipeline_cfg)):
        kind = _transform_type(transform)
        if kind in _IMAGE_LOADERS and not has_loader:
            transforms.append(dict(type='LoadImageFromNDArray'))
            has_loader = True
        elif not kind.startswith('Load'):
            transforms.append(dict(transform))
    if not has_loader:
        transforms.insert(0, dict(type='LoadImageFromNDArray'))
    return transforms


def build_inference_pipeline(cfg: Config) -> Compose:
    """The per-image transforms used by :func:`inference_model`, built.

    Args:
        cfg (Config): The model's config (``model.cfg``); see
            :func:`inference_pipeline_config`.

    Returns:
        Compose: Transforms from ``dict(img=...)`` to packed inputs.
    """
    with DefaultScope.overwrite_default_scope('mmseg'):
        return Compose(inference_pipeline_config(cfg))


def preprocess_image(pipeline: Compose,
                     image: np.ndarray,
                     img_path: Optional[str] = None) -> dict:
    """Run the pipeline on one BGR image.

    Args:
        pipeline (Compose): From :func:`build_inference_pipeline`.
        image (np.ndarray): H×W×3 BGR image from :func:`load_image`.
        img_path (str, optional): Recorded in the sample's metainfo.

    Returns:
        dict: ``inputs`` (3×h×w tensor) and ``data_samples``
        (:class:`SegDataSample` with ``ori_shape``, ``img_shape``...).
    """
    packed = pipeline(dict(img=image))
    if img_path is not None:
        packed['data_samples'].set_metainfo(dict(img_path=img_path))
    return packed


# --------------------------------------------------------------------------
# Forward and post-processing
# --------------------------------------------------------------------------
def _warn_large_input(model: BaseSegmentor, shape: Sequence[int]) -> None:
    if (model.test_cfg or {}).get('mode', 'whole') != 'whole':
        return
    tokens = shape[-2] * shape[-1] // 256
    if tokens > LARGE_INPUT_TOKENS:
        warnings.warn(
            f'network input {tuple(shape[-2:])} is {tokens} '
            'patch tokens in one pass: memory grows with the input. Use '
            'DPTResize in the pipeline, or test_cfg=dict(mode="slide", '
            'crop_size=..., stride=...) to bound it.')


@torch.no_grad()
def predict_batch(model: BaseSegmentor,
                  packed: Sequence[dict],
                  return_seg_logits: bool = True) -> List[SegDataSample]:
    """Run preprocessed images through the model and post-process them.

    Images are batched only with others of the same network input size:
    padding a smaller image to the batch's size would change the output of
    a global-attention model.

    Args:
        model (BaseSegmentor): From :func:`init_model`.
        packed (Sequence[dict]): Outputs of :func:`preprocess_image`.
        return_seg_logits (bool): Keep full-size ``seg_logits`` for
            segmentation models.

    Returns:
        list[SegDataSample]: One per input, in order, with
        ``pred_depth_map`` (1×H×W) or ``pred_sem_seg`` (1×H×W) and
        ``seg_logits`` (C×H×W) at the original image size.
    """
    groups: Dict[tuple, List[int]] = OrderedDict()
    for index, item in enumerate(packed):
        groups.setdefault(tuple(item['inputs'].shape), []).append(index)
    results: List[Optional[SegDataSample]] = [None] * len(packed)
    for indices in groups.values():
        samples = [packed[i]['data_samples'] for i in indices]
        for sample in samples:
            # Read by DPTEncoderDecoder's post-processing.
            sample.set_metainfo(dict(keep_seg_logits=return_seg_logits))
        data = dict(inputs=[packed[i]['inputs'] for i in indices],
                    data_samples=samples)
        _warn_large_input(model, data['inputs'][0].shape[-2:])
        # The model's own test path, post-processing included: tools/test.py
        # runs the same test_step, so both give the same maps.
        for index, sample in zip(indices, model.test_step(data)):
            if not return_seg_logits and 'seg_logits' in sample:
                del sample.seg_logits  # a model without DPT's test path
            results[index] = sample
    return results


def inference_model(model: BaseSegmentor,
                    images: Union[ImageInput, Sequence[ImageInput]],
                    input_format: str = 'bgr',
                    return_seg_logits: bool = True
                    ) -> Union[SegDataSample, List[SegDataSample]]:
    """Predict depth or segmentation for one image or a list of images.

    Args:
        model (BaseSegmentor): From :func:`init_model` (a model without
            ``cfg`` gets the default DPT pipeline).
        images (str | PathLike | np.ndarray | Sequence): Image files or
            arrays (H×W gray, H×W×3 colour, H×W×4 with alpha; uint8,
            uint16 or float in 0–255).
        input_format (str): Channel order of colour *arrays*: ``'bgr'``
            (default, mmseg/OpenCV) or ``'rgb'`` (PIL, Transformers). Files
            are always decoded correctly.
        return_seg_logits (bool): Keep full-size ``seg_logits`` (C×H×W
            float32: 600 MB for 150 classes on a 1-megapixel image) for
            segmentation models.

    Returns:
        SegDataSample | list[SegDataSample]: A single sample for a single
        input, else a list. Each holds, at the input's original size,
        ``pred_depth_map`` (1×H×W float; metainfo ``depth_type``) for
        depth models, or ``pred_sem_seg`` (1×H×W int64) and ``seg_logits``
        for segmentation models.

    Examples:
        >>> import numpy as np
        >>> from dpt_mm.apis import init_model, inference_model
        >>> model = init_model('configs/dpt_hybrid_midas.py',
        ...                    'checkpoints/dpt_hybrid_midas_mm.pth')
        >>> rgb = np.zeros((480, 640, 3), np.uint8)
        >>> sample = inference_model(model, rgb, input_format='rgb')
        >>> sample.pred_depth_map.data.shape
        torch.Size([1, 480, 640])
        >>> samples = inference_model(model, ['a.jpg', 'b.png'])
    """
    single = isinstance(images, (str, os.PathLike, np.ndarray))
    items = [images] if single else list(images)
    if not items:
        raise ValueError('inference_model got an empty list of images')
    cfg = getattr(model, 'cfg', None)
    if cfg is None:  # built without init_model: the default DPT pipeline
        img_size = getattr(getattr(model, 'backbone', None), 'img_size', 384)
        cfg = Config(dict(model=dict(backbone=dict(img_size=img_size))))
    pipeline = build_inference_pipeline(cfg)
    packed = []
    for item in items:
        img_path = os.fspath(item) if isinstance(item, (str,
                                                        os.PathLike)) else None
        packed.append(preprocess_image(pipeline,
                                       load_image(item, input_format),
                                       img_path))
    results = predict_batch(model, packed, return_seg_logits)
    return results[0] if single else results

"""Batch inference over files, folders and arrays, with outputs on disk.

:class:`DPTInferencer` is the counterpart of mmseg's ``MMSegInferencer``
and of Transformers' ``pipeline('depth-estimation')``: build it once from a
config (path or name) and weights, call it on any mix of image files,
folders and arrays. One unreadable file does not stop the run: errors are
collected per input, reported at the end, and the good results are still
returned and written.
"""
import glob
import os
import os.path as osp
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.utils import ProgressBar

from mmseg.structures import SegDataSample
from ..converters.hf_folder import is_hf_folder
from ..utils.config import REPO_CONFIGS
from ..visualization.render import (colorize_depth, colorize_seg,
                                    overlay_seg, side_by_side)
from ..visualization.writers import (save_depth_npy, save_image,
                                     write_depth_png16)
from .inference import (ImageInput, build_inference_pipeline, init_model,
                        is_depth_model, load_image, predict_batch,
                        preprocess_image)

__all__ = [
    'DPTInferencer', 'IMAGE_EXTENSIONS', 'InferenceFailure',
    'InferencerResult', 'render_prediction', 'resolve_config'
]

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff',
                    '.webp', '.ppm', '.pgm', '.pbm', '.jp2')


@dataclass
class InferenceFailure:
    """One input that could not be processed.

    Attributes:
        name (str): The file path, or ``array_<i>`` for arrays.
        error (str): What went wrong (exception type and message).
    """
    name: str
    error: str

    def __str__(self) -> str:
        return f'{self.name}: {self.error}'


@dataclass
class InferencerResult:
    """What :class:`DPTInferencer` returns.

    Attributes:
        predictions (list): One per successful input, in input order: H×W
            float32 depth or H×W int64 class maps at the original size, or
            :class:`SegDataSample` with ``return_datasamples=True``.
        names (list[str]): The matching input names (paths, or
            ``array_<i>``).
        failures (list[InferenceFailure]): Inputs that failed, with why.
        out_files (dict[str, list[str]]): Files written per input name.
    """
    predictions: list = field(default_factory=list)
    names: List[str] = field(default_factory=list)
    failures: List[InferenceFailure] = field(default_factory=list)
    out_files: Dict[str, List[str]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Whether every input succeeded."""
        return not self.failures


def resolve_config(config: Union[str, Path, Config]) -> Union[str, Config]:
    """A config path, or a name resolved to ``configs/<name>.py``.

    Args:
        config (str | Path | Config): A file, a Config, a Transformers
            ``save_pretrained`` folder, or a config name such as
            ``'dpt_hybrid_midas'`` (searched under the repository's
            ``configs/``, sub-folders included).

    Returns:
        str | Config: An existing path, or the Config unchanged.

    Raises:
        FileNotFoundError: Neither a file nor a known config name.
    """
    if isinstance(config, Config):
        return config
    config = os.fspath(config)
    if osp.isfile(config) or is_hf_folder(config):
        return config  # a Transformers folder: init_model converts it
    name = osp.splitext(osp.basename(config))[0]
    direct = osp.join(REPO_CONFIGS, f'{name}.py')
    if osp.isfile(direct):
        return direct
    found = sorted(glob.glob(osp.join(REPO_CONFIGS, '**', f'{name}.py'),
                             recursive=True))
    if found:
        return found[0]
    raise FileNotFoundError(
        f'config not found: {config} (neither a file nor a name under '
        f'{REPO_CONFIGS})')


def render_prediction(image_bgr: np.ndarray,
                      sample: SegDataSample,
                      palette: Optional[Sequence] = None,
                      cmap: str = 'inferno',
                      alpha: float = 0.5,
                      with_side_by_side: bool = False
                      ) -> Dict[str, np.ndarray]:
    """RGB pictures of one prediction.

    Args:
        image_bgr (np.ndarray): The input image, H×W×3 BGR.
        sample (SegDataSample): From :func:`inference_model`.
        palette (Sequence, optional): Class colours (segmentation).
        cmap (str): Depth colormap.
        alpha (float): Overlay opacity (segmentation).
        with_side_by_side (bool): Also return ``'side_by_side'``: the
            image next to the colourised depth (or the palette map).

    Returns:
        dict[str, np.ndarray]: ``'depth'`` for depth models; ``'seg'`` and
        ``'overlay'`` for segmentation models; all three for joint models;
        plus ``'side_by_side'`` (image | depth | segmentation).
    """
    image_rgb = np.clip(image_bgr[..., ::-1], 0, 255).astype(np.uint8)
    pictures = {}
    if 'pred_depth_map' in sample:
        pred = sample.pred_depth_map
        depth_type = pred.metainfo.get('depth_type', 'inverse_depth')
        pictures['depth'] = colorize_depth(pred.data, cmap,
                                           depth_type=depth_type)[0]
    if 'pred_sem_seg' in sample:
        labels = sample.pred_sem_seg.data
        pictures['seg'] = colorize_seg(labels, palette)
        pictures['overlay'] = overlay_seg(image_rgb, labels, palette, alpha)
    if with_side_by_side:
        pictures['side_by_side'] = side_by_side(
            [image_rgb] + [pictures[k] for k in ('depth', 'seg')
                           if k in pictures])
    return pictures


def _unique_stem(name: str, used: Dict[str, int]) -> str:
    stem = osp.splitext(osp.basename(name))[0]
    count = used.get(stem, 0)
    used[stem] = count + 1
    # Same stem from two folders: kitchen, kitchen_1, ...
    return stem if count == 0 else f'{stem}_{count}'


class DPTInferencer:
    """Depth / segmentation inference on files, folders and arrays.

    Args:
        model (str | Path | Config): Config file, config name (resolved to
            ``configs/<name>.py``) or Config.
        weights (str, optional): Checkpoint (loaded strictly and safely);
            None keeps random weights.
        device (str): ``'cpu'``, ``'cuda:0'``...
        cfg_options (dict, optional): Config overrides.
        cmap (str): Colormap of depth pictures.
        alpha (float): Opacity of segmentation overlays.

    Examples:
        >>> from dpt_mm.apis import DPTInferencer
        >>> inferencer = DPTInferencer('dpt_hybrid_midas',
        ...                            'checkpoints/dpt_hybrid_midas_mm.pth')
        >>> result = inferencer(['kitchen.jpg', 'photos/'], batch_size=4,
        ...                     out_dir='outputs')
        >>> depth = result.predictions[0]        # H×W float32
        >>> for failure in result.failures:      # unreadable files
        ...     print(failure)
    """

    def __init__(self,
                 model: Union[str, Path, Config],
                 weights: Optional[str] = None,
                 device: str = 'cpu',
                 cfg_options: Optional[dict] = None,
                 cmap: str = 'inferno',
                 alpha: float = 0.5) -> None:
        self.model = init_model(resolve_config(model), weights, device,
                                cfg_options)
        self.pipeline = build_inference_pipeline(self.model.cfg)
        self.task = 'depth' if is_depth_model(self.model) else 'seg'
        self.cmap = cmap
        self.alpha = alpha

    @property
    def palette(self) -> Optional[list]:
        """Class colours of a segmentation model (None for depth)."""
        meta = getattr(self.model, 'dataset_meta', None) or {}
        return meta.get('palette')

    # ------------------------------------------------------------------
    @staticmethod
    def list_inputs(inputs: Union[ImageInput, Sequence[ImageInput]]
                    ) -> List[Tuple[str, ImageInput]]:
        """Expand inputs into ``(name, file or array)`` pairs.

        Folders give their image files (by extension, not recursive),
        sorted by name.

        Args:
            inputs: A file, folder or array, or a sequence of them.

        Returns:
            list[tuple[str, str | np.ndarray]]: Name and source per image.

        Raises:
            FileNotFoundError: A path does not exist.
            ValueError: A folder holds no images, or there are no inputs.
        """
        if isinstance(inputs, (str, os.PathLike, np.ndarray)):
            inputs = [inputs]
        items: List[Tuple[str, ImageInput]] = []
        for index, source in enumerate(inputs):
            if isinstance(source, np.ndarray):
                items.append((f'array_{index}', source))
                continue
            path = os.fspath(source)
            if osp.isdir(path):
                files = sorted(
                    osp.join(path, f) for f in os.listdir(path)
                    if f.lower().endswith(IMAGE_EXTENSIONS)
                    and osp.isfile(osp.join(path, f)))
                if not files:
                    raise ValueError(
                        f'no images in folder {path} (looked for '
                        f'{", ".join(IMAGE_EXTENSIONS)})')
                items.extend((f, f) for f in files)
            elif osp.isfile(path):
                items.append((path, path))
            else:
                raise FileNotFoundError(f'input not found: {path}')
        if not items:
            raise ValueError('no inputs given')
        return items

    def _batches(self, items: Sequence[Tuple[str, ImageInput]],
                 batch_size: int) -> Iterator[List[Tuple[str, ImageInput]]]:
        for start in range(0, len(items), batch_size):
            yield list(items[start:start + batch_size])

    def _predict_items(self, batch: List[Tuple[str, ImageInput]],
                       input_format: str, failures: List[InferenceFailure]
                       ) -> List[Tuple[str, np.ndarray, SegDataSample]]:
        """Load, preprocess and predict; failures are recorded, not raised.
        """
        loaded = []
        for name, source in batch:
            try:
                image = load_image(source, input_format)
                img_path = None if isinstance(source, np.ndarray) else name
                packed = preprocess_image(self.pipeline, image, img_path)
            except Exception as error:  # any decode/transform failure
                failures.append(InferenceFailure(name, _describe(error)))
                continue
            loaded.append((name, image, packed))
        if not loaded:
            return []
        try:
            samples = predict_batch(self.model, [p for _, _, p in loaded],
                                    return_seg_logits=False)
            return [(name, image, sample)
                    for (name, image, _), sample in zip(loaded, samples)]
        except Exception as error:
            if len(loaded) == 1:
                failures.append(InferenceFailure(loaded[0][0],
                                                 _describe(error)))
                return []
        # The batch failed: retry one by one so that only the culprit fails.
        results = []
        for name, image, packed in loaded:
            try:
                sample = predict_batch(self.model, [packed],
                                       return_seg_logits=False)[0]
            except Exception as error:
                failures.append(InferenceFailure(name, _describe(error)))
                continue
            results.append((name, image, sample))
        return results

    def write_outputs(self,
                      out_dir: str,
                      stem: str,
                      image_bgr: np.ndarray,
                      sample: SegDataSample,
                      save_vis: bool = True,
                      save_npy: bool = True,
                      save_png16: bool = True,
                      with_side_by_side: bool = False) -> List[str]:
        """Write one prediction's files, named after ``stem``.

        Depth: ``<stem>_depth.png`` (colourised), ``<stem>_depth_raw.png``
        (16-bit) + ``<stem>_depth_raw.json`` (scale, see
        :mod:`dpt_mm.visualization.writers`), ``<stem>_depth.npy``.
        Segmentation: ``<stem>_seg.png`` (palette), ``<stem>_overlay.png``
        and ``<stem>_seg_labels.png`` (class indices, uint8, or uint16 for
        more than 256 classes; always written). Optionally
        ``<stem>_side_by_side.png``.

        Args:
            out_dir (str): Output folder (created).
            stem (str): File name stem, e.g. ``'kitchen'``.
            image_bgr (np.ndarray): The input image (BGR).
            sample (SegDataSample): Its prediction.
            save_vis (bool): Write the pictures.
            save_npy (bool): Write ``.npy`` raw depth.
            save_png16 (bool): Write 16-bit PNG raw depth + sidecar.
            with_side_by_side (bool): Write the side-by-side picture.

        Returns:
            list[str]: Paths written.
        """
        os.makedirs(out_dir, exist_ok=True)
        written = []
        base = osp.join(out_dir, stem)
        if save_vis or with_side_by_side:
            pictures = render_prediction(image_bgr, sample, self.palette,
                                         self.cmap, self.alpha,
                                         with_side_by_side)
            for key, picture in pictures.items():
                if key == 'side_by_side' or save_vis:
                    written.append(save_image(f'{base}_{key}.png', picture))
        if 'pred_sem_seg' in sample:
            labels = sample.pred_sem_seg.data[0].cpu().numpy()
            dtype = np.uint8 if labels.max(initial=0) < 256 else np.uint16
            written.append(save_image(f'{base}_seg_labels.png',
                                      labels.astype(dtype)))
        if 'pred_depth_map' in sample:
            depth = sample.pred_depth_map
            if save_png16:
                path = f'{base}_depth_raw.png'
                write_depth_png16(
                    path, depth.data,
                    depth_type=depth.metainfo.get('depth_type',
                                                  'inverse_depth'))
                written += [path, osp.splitext(path)[0] + '.json']
            if save_npy:
                written.append(save_depth_npy(f'{base}_depth.npy',
                                              depth.data))
        return written

    # ------------------------------------------------------------------
    def __call__(self,
                 inputs: Union[ImageInput, Sequence[ImageInput]],
                 batch_size: int = 1,
                 out_dir: Optional[str] = None,
                 input_format: str = 'bgr',
                 return_datasamples: bool = False,
                 save_vis: bool = True,
                 save_npy: bool = True,
                 save_png16: bool = True,
                 with_side_by_side: bool = False,
                 show_progress: Optional[bool] = None,
                 log_failures: bool = True) -> InferencerResult:
        """Run on files, folders and/or arrays.

        Args:
            inputs: An image file, folder or array, or a sequence of them.
            batch_size (int): Images per forward pass (images of different
                network sizes are not mixed in one pass).
            out_dir (str, optional): Write each result there, see
                :meth:`write_outputs`. Arrays are named ``array_<i>``.
            input_format (str): ``'bgr'`` or ``'rgb'`` for arrays.
            return_datasamples (bool): Return :class:`SegDataSample` rather
                than numpy maps.
            save_vis (bool): With ``out_dir``: write pictures.
            save_npy (bool): With ``out_dir``: write ``.npy`` depth.
            save_png16 (bool): With ``out_dir``: write 16-bit PNG depth.
            with_side_by_side (bool): With ``out_dir``: also write image |
                prediction pictures.
            show_progress (bool, optional): Progress bar; default: when
                there is more than one batch.
            log_failures (bool): Print the failures at the end.

        Returns:
            InferencerResult: Predictions of the good inputs, their names,
            the failures and the files written. Failures are also printed
            at the end, one line per input.

        Raises:
            FileNotFoundError: An input path does not exist.
            ValueError: A folder is empty (checked before any inference).
        """
        if batch_size < 1:
            raise ValueError(f'batch_size must be >= 1, got {batch_size}')
        items = self.list_inputs(inputs)
        if show_progress is None:
            show_progress = len(items) > batch_size
        progress = ProgressBar(len(items)) if show_progress else None
        result = InferencerResult()
        used_stems: Dict[str, int] = {}
        for batch in self._batches(items, batch_size):
            for name, image, sample in self._predict_items(
                    batch, input_format, result.failures):
                if out_dir is not None:
                    try:
                        result.out_files[name] = self.write_outputs(
                            out_dir, _unique_stem(name, used_stems), image,
                            sample, save_vis, save_npy, save_png16,
                            with_side_by_side)
                    except Exception as error:
                        result.failures.append(
                            InferenceFailure(name, _describe(error)))
                        continue
                result.names.append(name)
                result.predictions.append(
                    sample if return_datasamples else _to_numpy(sample))
            if progress is not None:
                for _ in batch:
                    progress.update()
        if progress is not None:
            progress.file.write('\n')  # the bar leaves the cursor on its line
            progress.file.flush()
        order = {name: i for i, (name, _) in enumerate(items)}
        result.failures.sort(key=lambda f: order.get(f.name, len(order)))
        if result.failures and log_failures:
            lines = '\n'.join(f'  {f}' for f in result.failures)
            print_log(f'{len(result.failures)} of {len(items)} inputs '
                      f'failed:\n{lines}', logger='current', level=30)
        return result


def _describe(error: BaseException) -> str:
    return f'{type(error).__name__}: {error}'


def _to_numpy(sample: SegDataSample) -> np.ndarray:
    if 'pred_depth_map' in sample:
        return sample.pred_depth_map.data[0].cpu().numpy().astype(np.float32)
    return sample.pred_sem_seg.data[0].cpu().numpy()

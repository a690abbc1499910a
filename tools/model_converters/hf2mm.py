"""Convert a Transformers DPT folder into a dpt_mm checkpoint (and config).

    python tools/model_converters/hf2mm.py SRC DST [--config-out CFG]

SRC is a ``save_pretrained`` folder of ``DPTForDepthEstimation``,
``DPTForSemanticSegmentation`` or ``DPTModel`` (``config.json`` plus
``model.safetensors``, a sharded safetensors index, or
``pytorch_model.bin``). DST becomes an mmengine checkpoint
``{'state_dict': ..., 'meta': {...}}``. ``--config-out`` writes an mmengine
``.py`` config that builds exactly this model. The weights are loaded into
that model strictly before anything is written. Transformers itself is not
needed.
"""
import argparse
import json
import os
import os.path as osp
import sys
from typing import Any, Dict, List, Optional, Tuple

import torch
from torch import Tensor

__all__ = ['convert', 'load_hf_folder', 'main']


def _load_safetensors(path: str) -> Dict[str, Tensor]:
    from safetensors.torch import load_file
    return load_file(path, device='cpu')


def load_hf_folder(src: str) -> Tuple[Dict[str, Any], Dict[str, Tensor],
                                      Optional[Dict[str, Any]]]:
    """Read a ``save_pretrained`` folder without Transformers.

    Args:
        src (str): Folder path.

    Returns:
        tuple: ``config.json`` dict, the state dict, and the
        ``preprocessor_config.json`` dict (None if absent).
    """
    config_path = osp.join(src, 'config.json')
    if not osp.isfile(config_path):
        raise FileNotFoundError(f'{config_path} not found: SRC must be a '
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


def _mean_std(preprocessor: Optional[Dict[str, Any]]
              ) -> Tuple[List[float], List[float]]:
    """Normalisation on 0–255 RGB; DPT's mean = std = 0.5 by default."""
    mean, std = [0.5] * 3, [0.5] * 3
    if preprocessor and preprocessor.get('do_normalize', True):
        mean = preprocessor.get('image_mean', mean)
        std = preprocessor.get('image_std', std)
    return [round(m * 255, 6) for m in mean], [round(s * 255, 6) for s in std]


def convert(src: str, dst: str, config_out: Optional[str] = None,
            task: Optional[str] = None, verify: bool = True) -> None:
    """Convert, verify by a strict load, then write the checkpoint/config.

    Args:
        src (str): Transformers folder.
        dst (str): Output checkpoint path.
        config_out (str, optional): Output ``.py`` config path.
        task (str, optional): ``depth``, ``seg`` or ``backbone``; default
            from the weights.
        verify (bool): Build the model and load strictly before writing.
    """
    import dpt_mm  # noqa: F401  (registers the modules)
    from dpt_mm.converters import (format_py_config, hf_config_to_mm_config,
                                   hf_dataset_meta, infer_hf_task,
                                   load_converted, map_hf_state_dict)
    hf_config, hf_state, preprocessor = load_hf_folder(src)
    print(f'read {len(hf_state)} tensors from {src}')
    task = task or infer_hf_task(hf_state)
    conversion = map_hf_state_dict(hf_state, hf_config, task)
    archs = hf_config.get('architectures') or []
    print(f'task: {task} (architectures: {archs or "not recorded"})')
    mean, std = _mean_std(preprocessor)
    model_cfg = hf_config_to_mm_config(hf_config, task, mean=mean, std=std)
    state_dict = conversion.state_dict
    if verify:
        _verify(model_cfg, state_dict, task, load_converted)
        print('verified: the converted weights load strictly into the model '
              'built from the generated config')
    print(conversion.summary())
    meta = dict(
        dataset_meta=hf_dataset_meta(hf_config, task),
        converted_from='transformers',
        source=osp.abspath(src),
        hf_architectures=list(archs),
        task=task,
        dropped_keys=sorted(conversion.dropped))
    os.makedirs(osp.dirname(osp.abspath(dst)), exist_ok=True)
    torch.save({'state_dict': state_dict, 'meta': meta}, dst)
    print(f'wrote {dst}')
    if config_out:
        if task == 'backbone':
            # A bare encoder: neck and head start untrained.
            model_cfg['backbone']['init_cfg'] = dict(
                type='Pretrained', checkpoint=dst, prefix='backbone.')
        header = (f'dpt_mm model converted from the Transformers folder\n'
                  f'{osp.abspath(src)} by tools/model_converters/hf2mm.py.\n'
                  f'Weights: {dst}')
        text = format_py_config(
            [('default_scope', 'mmseg'),
             ('custom_imports',
              dict(imports=['dpt_mm'], allow_failed_imports=False)),
             ('model', model_cfg)], header)
        os.makedirs(osp.dirname(osp.abspath(config_out)), exist_ok=True)
        with open(config_out, 'w') as f:
            f.write(text)
        print(f'wrote {config_out}')


def _verify(model_cfg: Dict[str, Any], state_dict: Dict[str, Tensor],
            task: str, load_converted) -> None:
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS
    init_default_scope('mmseg')
    if task == 'backbone':
        model = MODELS.build(model_cfg['backbone'])
        prefix = 'backbone.'
        state_dict = {k[len(prefix):]: v for k, v in state_dict.items()}
    else:
        model = MODELS.build(model_cfg)
    load_converted(model, state_dict, 'converted Transformers checkpoint')


def main(argv: Optional[List[str]] = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(
        description='Convert a Transformers DPT save_pretrained folder into '
        'a dpt_mm (mmengine) checkpoint.')
    parser.add_argument('src', help='Transformers save_pretrained folder')
    parser.add_argument('dst', help='output checkpoint (.pth)')
    parser.add_argument('--config-out', help='also write an mmengine .py '
                        'config that builds exactly this model')
    parser.add_argument('--task', choices=('depth', 'seg', 'backbone'),
                        help='override the task read from the weights')
    parser.add_argument('--no-verify', action='store_true',
                        help='skip building the model for a strict load')
    parser.add_argument('--debug', action='store_true',
                        help='show the Python traceback of an error')
    args = parser.parse_args(argv)
    from dpt_mm.converters import CheckpointMismatchError
    try:
        convert(args.src, args.dst, args.config_out, args.task,
                not args.no_verify)
    except (CheckpointMismatchError, KeyError, ValueError) as err:
        # The message lists every offending key; no traceback needed.
        print(f'error: {err.args[0] if isinstance(err, KeyError) else err}',
              file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    try:
        sys.exit(main())
    except Exception as error:  # a user's mistake: message and hint only
        from dpt_mm.utils.cli import exit_if_user_error
        exit_if_user_error(error)
        raise

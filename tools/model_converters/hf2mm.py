"""Convert a Transformers DPT folder into a dpt_mm checkpoint (and config).

    python tools/model_converters/hf2mm.py SRC DST [--config-out CFG]

SRC is a ``save_pretrained`` folder of ``DPTForDepthEstimation``,
``DPTForSemanticSegmentation`` or ``DPTModel`` (``config.json`` plus
``model.safetensors``, a sharded safetensors index, or
``pytorch_model.bin``). DST becomes an mmengine checkpoint
``{'state_dict': ..., 'meta': {...}, 'hf_unused': {...}}`` (``.pth``), or a
safetensors file when DST ends in ``.safetensors``. ``--config-out`` writes
an mmengine ``.py`` config that builds exactly this model, with the folder's
whole image processor (size, aspect ratio, multiple, Pillow resampling,
rescale, normalisation, padding) as its ``inference_pipeline``: inference
then gives Transformers' numbers. The weights are loaded into that model
strictly before anything is written. Transformers itself is not needed.
"""
import argparse
import os
import os.path as osp
import sys
from typing import Any, Dict, List, Optional

from torch import Tensor

__all__ = ['convert', 'main']


def convert(src: str, dst: str, config_out: Optional[str] = None,
            task: Optional[str] = None, verify: bool = True) -> None:
    """Convert, verify by a strict load, then write the checkpoint/config.

    Args:
        src (str): Transformers folder.
        dst (str): Output checkpoint path (``.safetensors`` for
            safetensors, else a torch file).
        config_out (str, optional): Output ``.py`` config path.
        task (str, optional): ``depth``, ``seg`` or ``backbone``; default
            from the weights.
        verify (bool): Build the model and load strictly before writing.
    """
    import dpt_mm  # noqa: F401  (registers the modules)
    from dpt_mm.converters import (convert_hf_folder, format_py_config,
                                   load_converted)
    from dpt_mm.utils import save_checkpoint_file
    converted = convert_hf_folder(src, task)
    checkpoint = converted['checkpoint']
    meta = checkpoint['meta']
    task = meta['task']
    model_cfg = converted['model']
    state_dict = checkpoint['state_dict']
    print(f'read {converted["conversion"].num_source} tensors from {src}')
    print(f'task: {task} (architectures: '
          f'{meta["hf_architectures"] or "not recorded"})')
    if meta['hf_preprocessor'] is None:
        print('no preprocessor_config.json: DPTImageProcessor defaults '
              '(384×384, bicubic, mean = std = 0.5)')
    if verify:
        _verify(model_cfg, state_dict, task, load_converted)
        print('verified: the converted weights load strictly into the model '
              'built from the generated config')
    print(converted['conversion'].summary())
    save_checkpoint_file(checkpoint, dst)
    print(f'wrote {dst}')
    if config_out:
        if task == 'backbone':
            # A bare encoder: neck and head start untrained.
            model_cfg['backbone']['init_cfg'] = dict(
                type='Pretrained', checkpoint=dst, prefix='backbone.')
        header = (f'dpt_mm model converted from the Transformers folder\n'
                  f'{osp.abspath(src)} by tools/model_converters/hf2mm.py.\n'
                  f'Weights: {dst}\n'
                  'inference_pipeline: its image processor (Pillow resize).')
        text = format_py_config(
            [('default_scope', 'mmseg'),
             ('custom_imports',
              dict(imports=['dpt_mm'], allow_failed_imports=False)),
             ('model', model_cfg),
             ('inference_pipeline', converted['inference_pipeline'])],
            header)
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
    parser.add_argument('dst', help='output checkpoint (.pth, or '
                        '.safetensors for safetensors)')
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

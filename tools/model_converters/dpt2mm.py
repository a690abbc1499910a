"""Convert an original isl-org/DPT release file into a dpt_mm checkpoint.

    python tools/model_converters/dpt2mm.py SRC DST [--variant VARIANT]
                                             [--config CFG]

SRC is a release file such as ``dpt_hybrid_nyu-2ce69ec7.pt``. The variant
(``dpt_large_midas``, ``dpt_hybrid_midas``, ``dpt_hybrid_nyu``,
``dpt_hybrid_kitti``, ``dpt_large_ade20k``, ``dpt_hybrid_ade20k``) is read
from the file name unless ``--variant`` is given; it selects the matching
config under ``configs/``. ``--config`` uses another config instead. The
converted weights are loaded strictly into the model built from that config
before DST is written as ``{'state_dict': ..., 'meta': {...}}`` (a
safetensors file when DST ends in ``.safetensors``).
"""
import argparse
import os.path as osp
import sys
from typing import Any, Dict, List, Optional

__all__ = ['convert', 'main']


def _dataset_meta(model_cfg: Dict[str, Any]) -> Dict[str, Any]:
    head = model_cfg['decode_head']
    if head['type'] != 'DPTSegHead':
        return dict(classes=('depth', ))
    if head.get('num_classes') == 150:
        from mmseg.datasets import ADE20KDataset
        info = ADE20KDataset.METAINFO
        return dict(classes=tuple(info['classes']),
                    palette=[list(p) for p in info['palette']])
    return dict(classes=tuple(
        f'class_{i}' for i in range(head.get('num_classes', 0))))


class AlreadyConvertedError(ValueError):
    """The source is a dpt_mm checkpoint, not an original release file."""


def convert(src: str, dst: str, variant: Optional[str] = None,
            config: Optional[str] = None, verify: bool = True) -> None:
    """Convert, verify by a strict load, then write the checkpoint.

    Args:
        src (str): Release file.
        dst (str): Output checkpoint path.
        variant (str, optional): Release variant; default from the name.
        config (str, optional): Config to use instead of the variant's.
        verify (bool): Build the model and load strictly before writing.
    """
    import dpt_mm  # noqa: F401  (registers the modules)
    from mmengine.config import Config
    from dpt_mm.converters import (check_original_numerics, guess_variant,
                                   load_converted, map_original_state_dict,
                                   resolve_model_config, unwrap_state_dict,
                                   variant_config_path)
    from dpt_mm.converters.original import ORIGINAL_WS
    from dpt_mm.utils import load_checkpoint_file, save_checkpoint_file
    if config is None:
        variant = variant or guess_variant(src)
        config = variant_config_path(variant)
        print(f'variant: {variant} → config {config}')
    else:
        print(f'config: {config}')
    model_cfg = resolve_model_config(Config.fromfile(config))
    for issue in check_original_numerics(model_cfg):
        print(f'WARNING: {issue}; outputs will differ slightly from the '
              'original release')
    # The one safe loader of the project: names the file when it is
    # truncated, the type when it holds one that could run code.
    checkpoint = load_checkpoint_file(src, map_location='cpu')
    # Releases keep the weights flat or under "model"; mmengine files under
    # "state_dict".
    checkpoint = unwrap_state_dict(checkpoint, ('state_dict', 'model'))
    if any(k.startswith(('backbone.', 'decode_head.')) for k in checkpoint):
        raise AlreadyConvertedError(
            f'{src} is already a dpt_mm (mmengine) checkpoint: use it '
            'directly (init_model, tools/test.py, load_from), no conversion '
            'is needed')
    conversion = map_original_state_dict(checkpoint, model_cfg)
    state_dict = conversion.state_dict
    if verify:
        from mmengine.registry import init_default_scope
        from mmseg.registry import MODELS
        init_default_scope('mmseg')
        model = MODELS.build(model_cfg)
        load_converted(model, state_dict, f'converted {osp.basename(src)}')
        del model
        print('verified: the converted weights load strictly into the model '
              'built from the config')
    print(conversion.summary())
    meta = dict(
        dataset_meta=_dataset_meta(model_cfg),
        converted_from='isl-org/DPT',
        source=osp.basename(src),
        variant=variant,
        config=osp.abspath(config),
        dropped_keys=sorted(conversion.dropped))
    if model_cfg['backbone'].get('type') == 'DPTViTHybrid':
        # The weights' own numerics (timm 0.4.5); init_model checks them.
        meta['numerics'] = {'backbone.ws_mode': ORIGINAL_WS[0],
                            'backbone.ws_eps': ORIGINAL_WS[1]}
    save_checkpoint_file({'state_dict': state_dict, 'meta': meta}, dst)
    print(f'wrote {dst}')


def main(argv: Optional[List[str]] = None) -> int:
    """Command-line entry point."""
    from dpt_mm.converters import (ORIGINAL_VARIANTS,
                                   CheckpointMismatchError, guess_variant)
    from dpt_mm.utils.checkpoint import (CorruptCheckpointError,
                                        UnsafeCheckpointError)
    parser = argparse.ArgumentParser(
        description='Convert an original isl-org/DPT release file into a '
        'dpt_mm (mmengine) checkpoint.')
    parser.add_argument('src', help='release file, e.g. '
                        'dpt_hybrid_nyu-2ce69ec7.pt')
    parser.add_argument('dst', help='output checkpoint (.pth, or '
                        '.safetensors for safetensors)')
    parser.add_argument('--variant', choices=sorted(ORIGINAL_VARIANTS),
                        help='release variant (default: from the file name)')
    parser.add_argument('--config', help='dpt_mm config to convert for, '
                        'instead of the variant\'s')
    parser.add_argument('--no-verify', action='store_true',
                        help='skip building the model for a strict load')
    parser.add_argument('--debug', action='store_true',
                        help='show the Python traceback of an error')
    args = parser.parse_args(argv)
    variant = args.variant
    if variant is None and args.config is None:
        try:
            variant = guess_variant(args.src)
        except ValueError as err:
            parser.error(str(err))
    try:
        convert(args.src, args.dst, variant, args.config, not args.no_verify)
    except (CheckpointMismatchError, KeyError, ValueError,
            CorruptCheckpointError, UnsafeCheckpointError,
            AlreadyConvertedError) as err:
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

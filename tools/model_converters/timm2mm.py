"""Convert a timm ViT / ViT-Hybrid ImageNet checkpoint into backbone weights.

    python tools/model_converters/timm2mm.py SRC DST [--variant VARIANT]
                                              [--config CFG] [--img-size N [N]]

SRC is a timm state dict saved with ``torch.save`` (``.pth``, ``.bin``) or
a ``.safetensors`` file (Hugging Face Hub ``timm/...`` repositories), e.g.
timm 0.4.5's ``jx_vit_base_p16_384-83fb41ba.pth``,
``jx_vit_large_p16_384-b3be5167.pth`` or
``jx_vit_base_resnet50_384-9fd3c705.pth``. The variant
(``vit_base_patch16_384``, ``vit_large_patch16_384``,
``vit_base_resnet50_384``) is read from the weights unless ``--variant`` is
given; ``--config`` converts for the backbone of a config instead (e.g. one
with another ``img_size``). The paper configs expect:

    vit_base_patch16_384   → pretrain/vit-b16_384.pth
    vit_large_patch16_384  → pretrain/vit-l16_384.pth
    vit_base_resnet50_384  → pretrain/vit-hybrid_384.pth

The position embeddings are resized to the target patch grid when the
checkpoint's differs. Before DST is written, the converted keys and shapes
are checked against the target backbone (built on the meta device, so even
ViT-L costs no memory); a checkpoint with an unknown, missing or
wrongly-shaped key is refused with the keys listed and nothing is written.
DST holds ``{'state_dict': ..., 'meta': ...}`` with bare backbone keys, the
layout that ``backbone=dict(init_cfg=dict(type='Pretrained',
checkpoint=DST))`` loads.
"""
import argparse
import os
import os.path as osp
import sys
from typing import Any, Dict, List, Optional

import torch

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))

__all__ = ['convert', 'load_timm_checkpoint', 'main']


def load_timm_checkpoint(path: str) -> Dict[str, Any]:
    """Read a timm checkpoint without running code from it.

    Args:
        path (str): ``.safetensors`` file or a ``torch.save`` file.

    Returns:
        dict: The loaded object (a state dict, possibly wrapped).
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'checkpoint not found: {path}')
    if path.endswith('.safetensors'):
        from safetensors.torch import load_file
        return load_file(path, device='cpu')
    from dpt_mm.utils import load_checkpoint_file
    return load_checkpoint_file(path, map_location='cpu')


def _backbone_config(variant: Optional[str], config: Optional[str],
                     img_size: Optional[List[int]]) -> Dict[str, Any]:
    from mmengine.config import Config
    from dpt_mm.converters import timm_backbone_config
    if config is not None:
        cfg = Config.fromfile(config).to_dict()['model']['backbone']
    else:
        cfg = timm_backbone_config(variant)
    if img_size:
        cfg['img_size'] = tuple(img_size) if len(img_size) == 2 \
            else img_size[0]
    cfg.pop('init_cfg', None)
    return cfg


def convert(src: str, dst: str, variant: Optional[str] = None,
            config: Optional[str] = None,
            img_size: Optional[List[int]] = None) -> None:
    """Convert, check against the target backbone, then write DST.

    Args:
        src (str): timm checkpoint.
        dst (str): Output checkpoint path.
        variant (str, optional): timm variant; default read from the weights.
        config (str, optional): Config whose ``model.backbone`` is the
            target, instead of the variant's.
        img_size (list[int], optional): Target ``img_size`` (one or two
            numbers) instead of the variant's / config's.

    Raises:
        KeyError: SRC has keys no rule knows (listed).
        CheckpointMismatchError: The converted weights miss keys of the
            target backbone or have other shapes (listed).
    """
    import dpt_mm  # noqa: F401  (registers the modules)
    from mmengine.registry import init_default_scope
    from dpt_mm.converters import (build_backbone_skeleton,
                                   check_backbone_weights,
                                   guess_timm_variant, map_timm_state_dict)
    init_default_scope('mmseg')
    checkpoint = load_timm_checkpoint(src)
    if config is None and variant is None:
        variant = guess_timm_variant(checkpoint)
        print(f'variant (from the weights): {variant}')
    backbone_cfg = _backbone_config(variant, config, img_size)
    print(f'target backbone: {backbone_cfg}')
    skeleton = build_backbone_skeleton(backbone_cfg)
    conversion = map_timm_state_dict(checkpoint, skeleton.pos_grid)
    check_backbone_weights(skeleton, conversion.state_dict,
                           f'converted {osp.basename(src)}')
    print('verified: every key and shape of the target backbone matches')
    print(conversion.summary())
    meta = dict(
        converted_from='timm',
        source=osp.basename(src),
        variant=variant,
        config=osp.abspath(config) if config else None,
        backbone=backbone_cfg,
        dropped_keys=sorted(conversion.dropped),
        resized=dict(conversion.resized))
    os.makedirs(osp.dirname(osp.abspath(dst)), exist_ok=True)
    torch.save({'state_dict': conversion.state_dict, 'meta': meta}, dst)
    print(f'wrote {dst}; use it with backbone=dict(init_cfg=dict('
          f"type='Pretrained', checkpoint='{dst}'))")


def main(argv: Optional[List[str]] = None) -> int:
    """Command-line entry point."""
    from dpt_mm.converters import TIMM_VARIANTS, CheckpointMismatchError
    parser = argparse.ArgumentParser(
        description='Convert a timm ViT / ViT-Hybrid ImageNet checkpoint '
        'into dpt_mm backbone weights (for init_cfg=Pretrained).')
    parser.add_argument('src', help='timm checkpoint, e.g. '
                        'jx_vit_base_p16_384-83fb41ba.pth')
    parser.add_argument('dst', help='output, e.g. pretrain/vit-b16_384.pth')
    parser.add_argument('--variant', choices=sorted(TIMM_VARIANTS),
                        help='timm model (default: read from the weights)')
    parser.add_argument('--config', help='convert for model.backbone of '
                        'this config instead of the variant\'s backbone')
    parser.add_argument('--img-size', type=int, nargs='+', metavar='N',
                        help='target img_size, one or two numbers (H W): '
                        'the position embeddings are resized to it')
    parser.add_argument('--debug', action='store_true',
                        help='show the Python traceback of an error')
    args = parser.parse_args(argv)
    if args.img_size and len(args.img_size) > 2:
        parser.error('--img-size takes one or two numbers')
    try:
        convert(args.src, args.dst, args.variant, args.config, args.img_size)
    except (CheckpointMismatchError, KeyError, ValueError,
            FileNotFoundError) as err:
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

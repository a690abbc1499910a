"""Layer-wise learning-rate decay for ViT backbones (DPT fine-tuning).

Each transformer block gets a learning rate that shrinks geometrically with
its distance from the head: block ``i`` (of ``num_layers``) trains with
``lr * backbone_lr_mult * layer_decay_rate ** (num_layers - i)``; the
embeddings train slowest, the neck and heads at the full ``lr``. With
``layer_decay_rate=1`` and ``backbone_lr_mult=0.1`` this is the DPT paper's
recipe (backbone 1e-5, decoder 1e-4).

Config::

    optim_wrapper = dict(
        type='OptimWrapper',
        optimizer=dict(type='AdamW', lr=1e-4, weight_decay=0.01),
        constructor='ViTLayerDecayOptimizerConstructor',
        paramwise_cfg=dict(num_layers=12, layer_decay_rate=0.9,
                           backbone_lr_mult=0.1))

The name differs from mmseg's own ``LayerDecayOptimizerConstructor`` (BEiT,
MAE), which the same registry already holds.
"""
from typing import Dict, List, Optional, Sequence

import torch.nn as nn
from mmengine.dist import get_dist_info
from mmengine.logging import print_log
from mmengine.optim import DefaultOptimWrapperConstructor
from mmseg.registry import OPTIM_WRAPPER_CONSTRUCTORS

__all__ = ['ViTLayerDecayOptimizerConstructor', 'get_vit_layer_id']

_PARAMWISE_KEYS = ('num_layers', 'layer_decay_rate', 'decay_type',
                   'backbone_lr_mult')
# DINOv2's register tokens are input embeddings too.
_EMBEDDINGS = ('backbone.cls_token', 'backbone.pos_embed',
               'backbone.register_tokens')


def get_vit_layer_id(name: str, num_layers: int,
                     stage_ends: Optional[Sequence[int]] = None) -> int:
    """Depth of a parameter of a DPT model, for layer-wise decay.

    Args:
        name (str): Parameter name in the segmentor, e.g.
            ``'backbone.layers.3.attn.qkv.weight'``.
        num_layers (int): Number of transformer blocks of the backbone.
        stage_ends (Sequence[int], optional): For a hierarchical backbone
            (``DPTSwinV2.stage_ends``): the last block of each stage, whose
            depth its patch merging ``backbone.downsamples.{s}`` shares.

    Returns:
        int: 0 for ``backbone.cls_token``, ``backbone.pos_embed``,
        ``backbone.register_tokens`` and ``backbone.patch_embed.*`` (the hybrid's ResNet stem included);
        ``i + 1`` for ``backbone.layers.{i}.*``; ``num_layers + 1`` for the
        rest of the backbone (final norm) and for everything outside it.
    """
    if not name.startswith('backbone.'):
        return num_layers + 1
    if name in _EMBEDDINGS or name.startswith('backbone.patch_embed.'):
        return 0
    if name.startswith('backbone.downsamples.') and stage_ends is not None:
        return get_vit_layer_id(
            f'backbone.layers.{stage_ends[int(name.split(".")[2])]}.',
            num_layers)
    if name.startswith('backbone.layers.'):
        block = int(name.split('.')[2])
        if block >= num_layers:
            raise ValueError(f'{name} is in block {block}, but paramwise_cfg '
                             f'has num_layers={num_layers}.')
        return block + 1
    return num_layers + 1


# Position biases and Swin V2's attention temperature (as timm and BEiT).
_NO_DECAY_NAMES = ('relative_position_bias_table', 'logit_scale')


def _no_weight_decay(name: str, param: nn.Parameter) -> bool:
    # 1-D tensors are norm weights, biases and layer scales.
    return (param.ndim <= 1 or name.endswith('.bias') or name in _EMBEDDINGS
            or name.endswith(_NO_DECAY_NAMES))


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class ViTLayerDecayOptimizerConstructor(DefaultOptimWrapperConstructor):
    """Optimiser with per-block learning rates for a ViT-backbone model.

    A parameter at depth ``layer_id`` (:func:`get_vit_layer_id`) gets

    * backbone: ``lr * backbone_lr_mult *
      layer_decay_rate ** (num_layers + 1 - layer_id)``;
    * decoder (everything outside ``backbone.``): ``lr``.

    Norm weights, biases (any tensor with at most one dimension),
    ``pos_embed`` and ``cls_token`` get no weight decay; other parameters
    get the optimizer's ``weight_decay``. Parameters with
    ``requires_grad=False`` are left out. Each group records ``lr_scale``,
    ``group_name`` and ``param_names``; parameter schedulers scale every
    group's lr from its own starting value, so the ratios hold throughout.

    Args:
        optim_wrapper_cfg (dict): The optim wrapper config, with
            ``optimizer.lr`` set.
        paramwise_cfg (dict): ``num_layers`` (int, required): transformer
            blocks in the backbone; ``layer_decay_rate`` (float): per-block
            factor, default 1.0 (no decay); ``decay_type`` (str): only
            ``'layer_wise'``; ``backbone_lr_mult`` (float): extra factor for
            the whole backbone, default 1.0. Other keys are refused rather
            than silently ignored.
    """

    def __init__(self,
                 optim_wrapper_cfg: dict,
                 paramwise_cfg: Optional[dict] = None) -> None:
        super().__init__(optim_wrapper_cfg, paramwise_cfg)
        unknown = sorted(set(self.paramwise_cfg) - set(_PARAMWISE_KEYS))
        if unknown:
            raise ValueError(
                f'ViTLayerDecayOptimizerConstructor: unknown paramwise_cfg '
                f'keys {unknown}; supported: {list(_PARAMWISE_KEYS)}.')
        if 'num_layers' not in self.paramwise_cfg:
            raise ValueError('ViTLayerDecayOptimizerConstructor needs '
                             'paramwise_cfg.num_layers.')
        decay_type = self.paramwise_cfg.get('decay_type', 'layer_wise')
        if decay_type != 'layer_wise':
            raise ValueError("Only decay_type='layer_wise' is supported, got "
                             f'{decay_type!r}.')
        if self.base_lr is None:
            raise ValueError('ViTLayerDecayOptimizerConstructor needs '
                             'optimizer.lr.')
        self.num_layers = int(self.paramwise_cfg['num_layers'])
        self.layer_decay_rate = float(
            self.paramwise_cfg.get('layer_decay_rate', 1.0))
        self.backbone_lr_mult = float(
            self.paramwise_cfg.get('backbone_lr_mult', 1.0))
        self._stage_ends: Optional[Sequence[int]] = None

    def lr_scale(self, name: str) -> float:
        """Factor applied to the base lr for the parameter ``name``.

        Args:
            name (str): Parameter name in the model.

        Returns:
            float: The lr scale.
        """
        if not name.startswith('backbone.'):
            return 1.0
        layer_id = get_vit_layer_id(name, self.num_layers, self._stage_ends)
        return self.backbone_lr_mult * self.layer_decay_rate**(
            self.num_layers + 1 - layer_id)

    def add_params(self,
                   params: List[dict],
                   module: nn.Module,
                   prefix: str = '',
                   is_dcn_module: Optional[bool] = None) -> None:
        """Append one param group per (depth, part, weight decay) to params.

        Args:
            params (list[dict]): Param groups, extended in place.
            module (nn.Module): The whole model (segmentor).
            prefix (str): Unused, for the base-class signature.
            is_dcn_module (bool, optional): Unused, for the base-class
                signature.
        """
        groups: Dict[str, dict] = {}
        self._stage_ends = getattr(getattr(module, 'backbone', None),
                                   'stage_ends', None)
        for name, param in module.named_parameters():
            if not param.requires_grad:
                continue
            no_decay = _no_weight_decay(name, param)
            part = 'backbone' if name.startswith('backbone.') else 'decoder'
            layer_id = get_vit_layer_id(name, self.num_layers,
                                        self._stage_ends)
            group_name = (f'{part}_layer_{layer_id}_'
                          f'{"no_decay" if no_decay else "decay"}')
            if group_name not in groups:
                scale = self.lr_scale(name)
                groups[group_name] = dict(
                    params=[],
                    param_names=[],
                    lr=self.base_lr * scale,
                    lr_scale=scale,
                    group_name=group_name)
                if no_decay:
                    groups[group_name]['weight_decay'] = 0.
                elif self.base_wd is not None:
                    groups[group_name]['weight_decay'] = self.base_wd
            groups[group_name]['params'].append(param)
            groups[group_name]['param_names'].append(name)

        if get_dist_info()[0] == 0:
            lines = [
                f'  {key}: {len(group["params"])} tensors, '
                f'lr={group["lr"]:.3g}, '
                f'weight_decay={group.get("weight_decay", "default")}'
                for key, group in groups.items()
            ]
            print_log('Layer-wise lr decay param groups:\n' + '\n'.join(lines),
                      logger='current')
        params.extend(groups.values())

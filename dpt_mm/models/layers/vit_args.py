"""What every ViT-style DPT backbone (DPTViT, DPTBEiT, DPTDINOv2) shares:
the argument checks, stage freezing and the blocks' weight init."""
from typing import Sequence, Tuple, Union

import torch.nn as nn
from mmengine.model.weight_init import trunc_normal_

__all__ = ['ViTStagesMixin', 'check_vit_args']


def check_vit_args(owner: str, img_size: Union[int, Tuple[int, int]],
                   patch_size: int, num_layers: int,
                   out_indices: Sequence[int], frozen_stages: int
                   ) -> Tuple[Tuple[int, int], Tuple[int, ...]]:
    """Check a ViT-style backbone's size, hook and freezing arguments.

    Args:
        owner (str): The backbone's name, for the messages.
        img_size (int | tuple[int, int]): Training size of the position
            embeddings.
        patch_size (int): Patch size.
        num_layers (int): Number of blocks.
        out_indices (Sequence[int]): 0-based hooked blocks.
        frozen_stages (int): -1, or how many stages are frozen.

    Returns:
        tuple: ``img_size`` as an (h, w) pair and ``out_indices`` as a tuple.

    Raises:
        ValueError: A size that is not a multiple of the patch size, a hook
            outside the blocks, or ``frozen_stages`` outside
            ``[-1, num_layers]``; the message names ``owner``.
    """
    if isinstance(img_size, int):
        img_size = (img_size, img_size)
    if any(s % patch_size for s in img_size):
        raise ValueError(f'{owner}: img_size {tuple(img_size)} must be a '
                         f'multiple of patch_size {patch_size}')
    out_indices = tuple(out_indices)
    bad = [i for i in out_indices if not 0 <= i < num_layers]
    if bad:
        raise ValueError(f'{owner}: out_indices {bad} out of range for '
                         f'num_layers={num_layers} (0-based)')
    if not -1 <= frozen_stages <= num_layers:
        raise ValueError(f'{owner}: frozen_stages={frozen_stages} must be '
                         f'in [-1, num_layers={num_layers}]')
    return tuple(img_size), out_indices


class ViTStagesMixin:
    """Freezing and block init of a ViT-style backbone.

    Goes before ``BaseModule`` in the bases. The backbone has
    ``patch_embed``, ``layers`` (its blocks), ``frozen_stages`` and the
    parameters named in ``embedding_params`` (any may be None).
    ``frozen_stages=0`` freezes the embeddings; k > 0 also the first k
    blocks, which stay in eval mode (no dropout) in training.
    """

    embedding_params: Tuple[str, ...] = ('cls_token', 'pos_embed')

    def init_block_weights(self) -> None:
        """timm's ViT init of the blocks: truncated normal (std 0.02)
        linear weights, zero biases, unit LayerNorms."""
        for module in self.layers.modules():
            if isinstance(module, nn.Linear):
                trunc_normal_(module.weight, std=0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def _freeze_stages(self) -> None:
        if self.frozen_stages < 0:
            return
        for name in self.embedding_params:
            param = getattr(self, name, None)
            if param is not None:
                param.requires_grad = False
        for module in [self.patch_embed, *self.layers[:self.frozen_stages]]:
            module.eval()
            for param in module.parameters():
                param.requires_grad = False

    def train(self, mode: bool = True) -> nn.Module:
        """``nn.Module.train``, the frozen stages kept in eval mode."""
        super().train(mode)
        self._freeze_stages()
        return self

"""The argument checks every ViT-style DPT backbone shares."""
from typing import Sequence, Tuple, Union

__all__ = ['check_vit_args']


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

from .layer_decay_optimizer_constructor import (
    ViTLayerDecayOptimizerConstructor, get_vit_layer_id)
from .nonfinite_guard import (NonFiniteGuardAmpOptimWrapper,
                              NonFiniteGuardOptimWrapper)

__all__ = [
    'NonFiniteGuardAmpOptimWrapper', 'NonFiniteGuardOptimWrapper',
    'ViTLayerDecayOptimizerConstructor', 'get_vit_layer_id'
]

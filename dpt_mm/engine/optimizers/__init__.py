from .cpu_amp_optim_wrapper import (CPUAmpOptimWrapper,
                                    NonFiniteGuardCPUAmpOptimWrapper)
from .layer_decay_optimizer_constructor import (
    ViTLayerDecayOptimizerConstructor, get_vit_layer_id)
from .nonfinite_guard import (NonFiniteGuardAmpOptimWrapper,
                              NonFiniteGuardOptimWrapper)

__all__ = [
    'CPUAmpOptimWrapper', 'NonFiniteGuardAmpOptimWrapper',
    'NonFiniteGuardCPUAmpOptimWrapper', 'NonFiniteGuardOptimWrapper',
    'ViTLayerDecayOptimizerConstructor', 'get_vit_layer_id'
]

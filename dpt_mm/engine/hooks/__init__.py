from .atomic_checkpoint_hook import (ATOMIC_BACKEND, AtomicCheckpointHook,
                                     AtomicLocalBackend, atomic_write_bytes)
from .rng_state_hook import (RNG_STATES_KEY, RNGStateHook, get_rng_states,
                             set_rng_states)
from .sample_tracker_hook import (CURRENT_SAMPLES_KEY, SampleTrackerHook,
                                  current_samples)
from .show_dir_hook import ShowDirHook

__all__ = [
    'ATOMIC_BACKEND', 'AtomicCheckpointHook', 'AtomicLocalBackend',
    'CURRENT_SAMPLES_KEY', 'RNG_STATES_KEY', 'RNGStateHook',
    'SampleTrackerHook', 'ShowDirHook', 'atomic_write_bytes',
    'current_samples', 'get_rng_states', 'set_rng_states'
]

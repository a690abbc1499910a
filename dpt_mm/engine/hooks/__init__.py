from .atomic_checkpoint_hook import (ATOMIC_BACKEND, AtomicCheckpointHook,
                                     AtomicLocalBackend, atomic_write_bytes,
                                     remove_orphaned_temporaries)
from .rng_state_hook import (RNG_STATES_KEY, RNGStateHook, get_rng_states,
                             set_rng_states)
from .sample_tracker_hook import (CURRENT_SAMPLES_KEY, SampleTrackerHook,
                                  current_samples)
from .show_dir_hook import ShowDirHook
from .valid_pixel_check_hook import ValidPixelCheckHook

__all__ = [
    'ATOMIC_BACKEND', 'AtomicCheckpointHook', 'AtomicLocalBackend',
    'CURRENT_SAMPLES_KEY', 'RNG_STATES_KEY', 'RNGStateHook',
    'SampleTrackerHook', 'ShowDirHook', 'ValidPixelCheckHook',
    'atomic_write_bytes', 'current_samples', 'get_rng_states',
    'remove_orphaned_temporaries', 'set_rng_states'
]

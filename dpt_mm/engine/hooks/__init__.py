from .atomic_checkpoint_hook import (ATOMIC_BACKEND, AtomicCheckpointHook,
                                     AtomicLocalBackend, atomic_write_bytes)
from .sample_tracker_hook import (CURRENT_SAMPLES_KEY, SampleTrackerHook,
                                  current_samples)

__all__ = [
    'ATOMIC_BACKEND', 'AtomicCheckpointHook', 'AtomicLocalBackend',
    'CURRENT_SAMPLES_KEY', 'SampleTrackerHook', 'atomic_write_bytes',
    'current_samples'
]

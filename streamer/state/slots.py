"""The slot grid: a reading at ``ts_ms`` belongs to the slot that ENDS at or after it.

Slot index ``s = ceil(ts_ms / resolution_ms)``; the slot covers ``((s - 1) * r, s * r]`` and ends at
``s * resolution_ms``. So with 30-minute slots 10:30:00 falls in the slot ending 10:30 and 10:31
in the slot ending 11:00.
"""

from __future__ import annotations

import numpy as np


def slot_of(ts_ms: int, resolution_ms: int) -> int:
    """Index of the slot holding event time ``ts_ms`` (integer ceil division)."""
    return -(-ts_ms // resolution_ms)


def slot_end_ms(slot: int, resolution_ms: int) -> int:
    """End time (epoch ms) of slot ``slot``."""
    return slot * resolution_ms


def slots_of(ts_ms: np.ndarray, resolution_ms: int) -> np.ndarray:
    """Vectorised :func:`slot_of` over an int64 array."""
    return -(-np.asarray(ts_ms, dtype=np.int64) // np.int64(resolution_ms))

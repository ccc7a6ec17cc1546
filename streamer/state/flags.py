"""Per-slot quality flags: one ``uint8`` per slot in memory, 2 bits per slot in the state bytes."""

from __future__ import annotations

from enum import IntEnum

import numpy as np


class SlotFlag(IntEnum):
    """Where a slot's value came from.

    The state stores only ``MISSING``, ``OBSERVED``, ``CORRECTED`` and ``REGISTER_SPREAD``;
    the ``IMPUTED_*`` flags appear only in the output of ``MeterState.get()``.
    """

    MISSING = 0
    OBSERVED = 1
    CORRECTED = 2
    REGISTER_SPREAD = 3
    IMPUTED_INTERPOLATED = 4
    IMPUTED_DAY = 5
    IMPUTED_WEEK = 6


#: Flags that may appear in stored state.
STORED_FLAGS: frozenset[SlotFlag] = frozenset(
    {SlotFlag.MISSING, SlotFlag.OBSERVED, SlotFlag.CORRECTED, SlotFlag.REGISTER_SPREAD}
)
#: Largest flag value allowed in stored state.
MAX_STORED_FLAG: int = max(STORED_FLAGS)


_FIRST_REAL = np.uint8(SlotFlag.OBSERVED)
_REAL_COUNT = np.uint8(SlotFlag.REGISTER_SPREAD - SlotFlag.OBSERVED + 1)


def real_mask(flags: np.ndarray) -> np.ndarray:
    """Boolean mask of slots holding a real (not imputed, not missing) value."""
    # real flags are 1..3; on uint8, MISSING (0) - 1 wraps to 255
    mask: np.ndarray = (np.asarray(flags, dtype=np.uint8) - _FIRST_REAL) < _REAL_COUNT
    return mask

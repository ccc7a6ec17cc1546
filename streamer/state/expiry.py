"""When a meter's state may be dropped, and which meters have gone quiet."""

from __future__ import annotations

import numpy as np

from streamer.state.meter_state import MeterState


def is_expired(state: MeterState, now_ms: int, retention_ms: int) -> bool:
    """Whether the meter has been silent (no accepted reading) for longer than ``retention_ms``.

    A state that never accepted a reading counts as silent since epoch 0. The rule is
    :func:`silent_meters`'s, for one meter.
    """
    return bool(silent_meters(np.array([state.last_arrival_ms]), now_ms, retention_ms)[0])


def silent_meters(last_arrival_ms: np.ndarray, now_ms: int, silent_after_ms: int) -> np.ndarray:
    """Boolean mask: ``True`` where ``now_ms - last_arrival_ms > silent_after_ms``."""
    arrivals = np.asarray(last_arrival_ms, dtype=np.int64)
    result: np.ndarray = (np.int64(now_ms) - arrivals) > np.int64(silent_after_ms)
    return result

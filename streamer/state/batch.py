"""Applying one micro-batch of interval readings to one meter."""

from __future__ import annotations

import numpy as np

from streamer.state.meter_state import MeterState
from streamer.state.outcome import Outcome
from streamer.state.slots import slots_of

_FLOAT32_MAX = float(np.finfo(np.float32).max)
#: Below this many readings the checks of the vectorised path cost more than plain updates.
VECTORISED_MIN_READINGS = 8


def apply_batch(
    state: MeterState, ts_ms: np.ndarray, kwh: np.ndarray, arrival_ms: np.ndarray
) -> list[Outcome]:
    """Apply readings in the given order; same result as ``state.update`` called for each.

    Batches of at least ``VECTORISED_MIN_READINGS`` whose slots strictly increase after the head
    (the common in-order backfill) take a vectorised path; anything else goes reading by reading.
    """
    ts = np.asarray(ts_ms, dtype=np.int64)
    values = np.asarray(kwh, dtype=np.float64)
    arrivals = np.asarray(arrival_ms, dtype=np.int64)
    if ts.ndim != 1 or ts.shape != values.shape or ts.shape != arrivals.shape:
        raise ValueError(
            f"apply_batch needs three 1-D arrays of one length, got ts_ms {ts.shape}, "
            f"kwh {values.shape}, arrival_ms {arrivals.shape}"
        )
    count = ts.shape[0]
    if count == 0:
        return []
    if count >= VECTORISED_MIN_READINGS:
        slots = slots_of(ts, state.config.resolution_ms)
        head = state.head_slot
        if (
            (head is None or int(slots[0]) > head)
            and bool(np.all(slots[1:] > slots[:-1]))
            and bool((np.abs(values) <= _FLOAT32_MAX).all())  # else update raises in order
        ):
            state._extend_in_order(slots, values, int(arrivals.max()))
            return [Outcome.APPLIED] * count
    return [
        state.update(t, v, a)
        for t, v, a in zip(ts.tolist(), values.tolist(), arrivals.tolist(), strict=True)
    ]

"""Timestamps of the horizon slots."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from streamer.forecast.errors import ForecastInputError


def horizon_end_ms(
    end_ms: npt.ArrayLike, horizon_slots: int, resolution_seconds: int
) -> npt.NDArray[np.int64]:
    """End time (UTC epoch ms) of each horizon slot: ``(B, H)`` int64.

    Column ``h - 1`` is ``end_ms + h * resolution_seconds * 1000``: slot ``h`` of the horizon
    ends ``h`` slots after the newest history slot, matching a reading's ``ts`` (the end of its
    interval).

    >>> horizon_end_ms([0], 3, 1800).tolist()
    [[1800000, 3600000, 5400000]]
    """
    ends = np.asarray(end_ms)
    if ends.ndim != 1 or not np.issubdtype(ends.dtype, np.integer):
        raise ForecastInputError(
            f"end_ms must be a 1-D integer array of epoch ms, got shape {ends.shape} "
            f"dtype {ends.dtype}; convert with np.asarray(values, dtype=np.int64)"
        )
    if horizon_slots < 1 or resolution_seconds < 1:
        raise ForecastInputError(
            f"horizon_slots ({horizon_slots}) and resolution_seconds ({resolution_seconds}) "
            "must be positive"
        )
    steps_ms = np.arange(1, horizon_slots + 1, dtype=np.int64) * np.int64(resolution_seconds * 1000)
    return ends.astype(np.int64)[:, None] + steps_ms[None, :]

"""The windows of a batch's forecast candidates, read and imputed together.

``MeterState.get()`` imputes one meter's window per call (about 20 us of numpy calls on a
336-slot window, most of it per-call overhead). A batch of thousands of candidates instead stacks
the stored windows into one ``(B, L)`` array and imputes it with one vectorised pass
(:func:`~streamer.state.imputation.impute_rows`): row ``i`` of :func:`read_windows` is exactly
``states[i].get()`` (values to the bit, flags, end, observed fraction; see the unit tests).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from streamer.state.config import WindowConfig
from streamer.state.errors import EmptyStateError
from streamer.state.flags import real_mask
from streamer.state.imputation import impute_rows
from streamer.state.meter_state import MeterState


@dataclass(frozen=True, slots=True)
class StoredWindows:
    """The stored windows of ``B`` meters, as kept in their states (nothing imputed)."""

    values_kwh: npt.NDArray[np.float32]
    """``(B, L)`` float32, NaN where missing."""
    flags: npt.NDArray[np.uint8]
    """``(B, L)`` stored :class:`~streamer.state.flags.SlotFlag` values."""
    end_ms: npt.NDArray[np.int64]
    """``(B,)`` end of each window's head slot."""

    @property
    def observed_fraction(self) -> npt.NDArray[np.float64]:
        """``(B,)`` fraction of slots holding a real value, as ``WindowView.observed_fraction``."""
        counts = np.count_nonzero(real_mask(self.flags), axis=1)
        out: npt.NDArray[np.float64] = counts / self.flags.shape[1]
        return out

    def take(self, rows: npt.NDArray[np.intp]) -> StoredWindows:
        return StoredWindows(self.values_kwh[rows], self.flags[rows], self.end_ms[rows])


@dataclass(frozen=True, slots=True)
class ImputedWindows:
    """``B`` windows as ``MeterState.get()`` returns them, stacked."""

    values_kwh: npt.NDArray[np.float64]
    """``(B, L)`` float64, imputed where possible, else NaN."""
    flags: npt.NDArray[np.uint8]
    """``(B, L)`` flags, ``IMPUTED_*`` included."""
    end_ms: npt.NDArray[np.int64]
    observed_fraction: npt.NDArray[np.float64]


def stack_stored(states: Sequence[MeterState]) -> StoredWindows:
    """The stored windows of ``states`` (each with a head slot), stacked."""
    if not states:
        raise ValueError("stack_stored needs at least one state")
    lookback = states[0].config.lookback_slots
    values = np.empty((len(states), lookback), dtype=np.float32)
    flags = np.empty((len(states), lookback), dtype=np.uint8)
    ends: list[int] = []
    for i, state in enumerate(states):
        end = state.head_end_ms
        if end is None:
            raise EmptyStateError(
                "a forecast candidate has no readings yet, so there is no window; only meters "
                "whose head slot advanced are candidates"
            )
        values[i], flags[i] = state.stored_window()
        ends.append(end)
    return StoredWindows(values, flags, np.array(ends, dtype=np.int64))


def impute_stored(stored: StoredWindows, config: WindowConfig) -> ImputedWindows:
    """The windows imputed as ``MeterState.get()`` imputes each."""
    values, flags = impute_rows(
        stored.values_kwh,
        stored.flags,
        config.slots_per_day,
        config.interpolate_max_gap_slots,
    )
    return ImputedWindows(values, flags, stored.end_ms, stored.observed_fraction)


def read_windows(states: Sequence[MeterState]) -> ImputedWindows:
    """``np.stack`` of ``[s.get() for s in states]``'s fields, imputed in one pass."""
    return impute_stored(stack_stored(states), states[0].config)

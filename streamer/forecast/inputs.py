"""Checks and small array helpers shared by the forecasters."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from streamer.forecast.errors import ForecasterSpecError, ForecastInputError

FloatArray = npt.NDArray[np.float64]

DEFAULT_QUANTILE_LEVELS: tuple[float, ...] = (0.1, 0.5, 0.9)
SECONDS_PER_DAY = 86_400


def check_quantile_levels(levels: Sequence[float]) -> tuple[float, ...]:
    """Levels as a tuple of floats, strictly increasing inside ``(0, 1)``."""
    out = tuple(float(q) for q in levels)
    if not out:
        raise ForecasterSpecError("quantile_levels is empty; pass e.g. (0.1, 0.5, 0.9)")
    if any(not 0.0 < q < 1.0 for q in out) or any(a >= b for a, b in itertools.pairwise(out)):
        raise ForecasterSpecError(
            f"quantile_levels {out} must be strictly increasing and inside (0, 1), "
            "e.g. (0.1, 0.5, 0.9)"
        )
    return out


def check_positive(name: str, value: int) -> int:
    """``value`` as an int, refusing zero and negatives."""
    if int(value) != value or value < 1:
        raise ForecasterSpecError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def slots_per_day(resolution_seconds: int) -> int:
    """Slots in one day; the resolution must divide a day."""
    if resolution_seconds < 1 or SECONDS_PER_DAY % resolution_seconds:
        raise ForecasterSpecError(
            f"resolution_seconds={resolution_seconds} must divide 86400 "
            "(900 for 15 minutes, 1800 for 30 minutes, 3600 for hourly)"
        )
    return SECONDS_PER_DAY // resolution_seconds


def check_inputs(
    history_kwh: npt.ArrayLike,
    end_ms: npt.ArrayLike,
    *,
    min_length: int,
    model: str,
) -> FloatArray:
    """Validate a ``forecast`` call and return the history as ``(B, L)`` float64.

    Raises :class:`ForecastInputError` when the shapes disagree or the history is shorter than
    ``min_length`` for every row (a lookback setting that is too small for the model).
    """
    history = np.asarray(history_kwh, dtype=np.float64)
    ends = np.asarray(end_ms)
    if history.ndim != 2:
        raise ForecastInputError(
            f"history_kwh must be 2-D (meters, slots), got shape {history.shape}; "
            "for one meter pass history[None, :]"
        )
    if ends.shape != (history.shape[0],) or not np.issubdtype(ends.dtype, np.integer):
        raise ForecastInputError(
            f"end_ms must be a ({history.shape[0]},) integer array of epoch ms, got shape "
            f"{ends.shape} dtype {ends.dtype}"
        )
    if history.shape[1] < min_length:
        raise ForecastInputError(
            f"{model} needs at least {min_length} history slots per row, got "
            f"{history.shape[1]}; raise the lookback (STREAMER_LOOKBACK_SLOTS) or pick a "
            "forecaster with a shorter season"
        )
    return history


def finite_counts(history: FloatArray) -> npt.NDArray[np.int64]:
    """Number of finite values per row."""
    counts: npt.NDArray[np.int64] = np.isfinite(history).sum(axis=1).astype(np.int64)
    return counts


def fill_gaps(series: FloatArray, season_slots: int) -> FloatArray:
    """A copy of a 1-D series without NaN: seasonal copies first, then linear interpolation.

    Each missing slot takes the value one season earlier (repeatedly, so a missing day becomes
    the previous day), then one season later; whatever is left is interpolated linearly (held
    flat at the ends). The series must have at least one finite value.
    """
    out = np.array(series, dtype=np.float64, copy=True)
    missing = ~np.isfinite(out)
    if not missing.any():
        return out
    if season_slots < out.size:
        for start in range(season_slots, out.size, season_slots):
            stop = min(start + season_slots, out.size)
            seg = out[start:stop]
            src = out[start - season_slots : stop - season_slots]
            hole = ~np.isfinite(seg)
            seg[hole] = src[hole]
        for start in range(out.size - season_slots - 1, -1, -season_slots):
            lo = max(start - season_slots + 1, 0)
            seg = out[lo : start + 1]
            src = out[lo + season_slots : start + 1 + season_slots]
            hole = ~np.isfinite(seg)
            seg[hole] = src[hole]
    hole = ~np.isfinite(out)
    if hole.any():
        idx = np.arange(out.size)
        out[hole] = np.interp(idx[hole], idx[~hole], out[~hole])
    return out

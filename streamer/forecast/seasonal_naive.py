"""Seasonal naive: tomorrow (or next week) looks like the last day (or week)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from streamer.forecast.batch import ForecastBatch
from streamer.forecast.errors import ForecasterSpecError
from streamer.forecast.inputs import (
    DEFAULT_QUANTILE_LEVELS,
    check_inputs,
    check_positive,
    check_quantile_levels,
    finite_counts,
    slots_per_day,
)
from streamer.forecast.local_time import (
    UTC_ZONE,
    TimeZones,
    is_utc,
    row_zones,
    same_wall_time_earlier,
)

FloatArray = npt.NDArray[np.float64]


class SeasonalNaive:
    """Point forecast: the value one season earlier. Vectorised over the batch, no fitting.

    Horizon slot ``h`` copies history slot ``L - m + (h - 1) % m`` (``m`` = ``season_slots``;
    the last season repeated when ``H > m``). Where that slot is NaN the slot one season
    before it is used, and where that is NaN too, the mean of the row's last season (or of
    the whole row when the last season is empty).

    In a zone with daylight saving (``time_zone``), "one season earlier" is the same local
    wall-clock time a day or a week earlier: across a clock change that is one hour more or less
    than ``m`` slots, so that a forecast of Monday 18:00 copies last Monday 18:00 on both sides
    of the change. A source that would lie after the newest slot moves back one season.

    Quantiles: point plus the empirical quantiles of the row's own in-window errors of the same
    method, ``y[t] - y[t - k m]``, at the lag ``k m`` the horizon slot uses (``k = ceil(h/m)``).
    A row with fewer than ``min_error_samples`` such errors falls back, in order, to

    1. its errors at ``fallback_lag_slots`` (one day for a weekly season: with one week of
       history there are no week-over-week errors yet, but six days of day-over-day ones);
    2. the fleet-wide spread: the median over the batch's rows that have their own errors of
       their quantile offsets divided by their level (mean absolute value of the last
       season), times this row's level. This is the only place where a row's result depends
       on the other rows of the batch;
    3. zero spread (all quantiles equal the point) when no row of the batch has errors.

    Quantiles are made non-decreasing along the levels. A row is valid when its history has
    at least ``min_history_slots`` finite values (default: half a season); the history must
    hold at least one season.
    """

    version = "1"

    def __init__(
        self,
        season_slots: int,
        horizon_slots: int,
        quantile_levels: Sequence[float] = DEFAULT_QUANTILE_LEVELS,
        *,
        min_history_slots: int | None = None,
        min_error_samples: int = 24,
        fallback_lag_slots: int | None = None,
        name: str | None = None,
    ) -> None:
        self.season_slots = check_positive("season_slots", season_slots)
        self.horizon_slots = check_positive("horizon_slots", horizon_slots)
        self.quantile_levels = check_quantile_levels(quantile_levels)
        self.min_history_slots = check_positive(
            "min_history_slots",
            max(1, self.season_slots // 2) if min_history_slots is None else min_history_slots,
        )
        if self.min_history_slots > self.season_slots:
            raise ForecasterSpecError(
                f"min_history_slots ({self.min_history_slots}) must not exceed season_slots "
                f"({self.season_slots}) for seasonal naive"
            )
        self.min_error_samples = check_positive("min_error_samples", min_error_samples)
        if fallback_lag_slots is not None:
            check_positive("fallback_lag_slots", fallback_lag_slots)
        self.fallback_lag_slots = fallback_lag_slots
        self.name = name or f"seasonal_naive_{self.season_slots}"

    def __repr__(self) -> str:
        return (
            f"SeasonalNaive(name={self.name!r}, season_slots={self.season_slots}, "
            f"horizon_slots={self.horizon_slots})"
        )

    def forecast(
        self,
        history_kwh: npt.NDArray[np.float64],
        end_ms: npt.NDArray[np.int64],
        resolution_seconds: int,
        time_zone: TimeZones = UTC_ZONE,
    ) -> ForecastBatch:
        """See :class:`~streamer.forecast.protocol.Forecaster`."""
        m, horizon = self.season_slots, self.horizon_slots
        history = check_inputs(history_kwh, end_ms, min_length=m, model=self.name)
        rows, length = history.shape
        valid = finite_counts(history) >= self.min_history_slots

        steps = np.arange(horizon)
        local = _wall_clock_sources(
            np.asarray(end_ms, dtype=np.int64), time_zone, m, horizon, length, resolution_seconds
        )
        if local is None:  # UTC: the same slot of the last season, for every row
            source = length - m + steps % m
            point = history[:, source]
            if length >= m + m:
                previous = history[:, source - m]
                point = np.where(np.isfinite(point), point, previous)
        else:
            point = _take(history, local)
            if length >= m + m:
                point = np.where(np.isfinite(point), point, _take(history, local - m))
        if self.fallback_lag_slots is not None and length >= self.fallback_lag_slots:
            # e.g. a weekly model on a meter with less than a week of data: use a day earlier
            lag = self.fallback_lag_slots
            point = np.where(np.isfinite(point), point, history[:, length - lag + steps % lag])
        level = _recent_level(history, m)
        point = np.where(np.isfinite(point), point, _recent_mean(history, m)[:, None])

        offsets = np.full((rows, horizon, len(self.quantile_levels)), np.nan)
        for k in range(1, (horizon - 1) // m + 2):
            cols = slice((k - 1) * m, min(k * m, horizon))
            offsets[:, cols, :] = self._error_quantiles(history, k * m)[:, None, :]
        if self.fallback_lag_slots is not None:
            fallback = self._error_quantiles(history, self.fallback_lag_slots)
            missing = ~np.isfinite(offsets).all(axis=2)
            offsets = np.where(missing[:, :, None], fallback[:, None, :], offsets)
        own = np.isfinite(offsets).all(axis=(1, 2)) & valid
        offsets = _fleet_fallback(offsets, level, own)

        quantiles = point[:, :, None] + offsets
        return ForecastBatch.from_rows(point, quantiles, self.quantile_levels, valid)

    def _error_quantiles(self, history: FloatArray, lag: int) -> FloatArray:
        """``(B, Q)`` quantiles of ``y[t] - y[t - lag]`` per row; NaN with too few samples."""
        rows, length = history.shape
        levels = np.asarray(self.quantile_levels)
        out = np.full((rows, levels.size), np.nan)
        if length <= lag:
            return out
        errors = history[:, lag:] - history[:, :-lag]
        enough = np.isfinite(errors).sum(axis=1) >= self.min_error_samples
        if enough.any():
            out[enough] = row_nanquantiles(errors[enough], levels)
        return out


def seasonal_naive_day(
    horizon_slots: int,
    resolution_seconds: int,
    quantile_levels: Sequence[float] = DEFAULT_QUANTILE_LEVELS,
) -> SeasonalNaive:
    """Seasonal naive with a one-day season, named ``seasonal_naive_day``."""
    return SeasonalNaive(
        slots_per_day(resolution_seconds),
        horizon_slots,
        quantile_levels,
        name="seasonal_naive_day",
    )


def seasonal_naive_week(
    horizon_slots: int,
    resolution_seconds: int,
    quantile_levels: Sequence[float] = DEFAULT_QUANTILE_LEVELS,
) -> SeasonalNaive:
    """Seasonal naive with a one-week season, named ``seasonal_naive_week``; its spread falls
    back to day-over-day errors while a row has too few week-over-week ones."""
    day = slots_per_day(resolution_seconds)
    return SeasonalNaive(
        7 * day,
        horizon_slots,
        quantile_levels,
        fallback_lag_slots=day,
        name="seasonal_naive_week",
    )


def row_nanquantiles(values: FloatArray, levels: npt.NDArray[np.float64]) -> FloatArray:
    """``(B, Q)`` quantiles of each row ignoring NaN; same as ``np.nanquantile(values, levels,
    axis=1).T`` (linear interpolation) but vectorised, without a Python loop over rows.

    Every row needs at least one finite value.
    """
    ordered = np.sort(values, axis=1)  # NaN sorts last
    count = np.isfinite(values).sum(axis=1)
    pos = levels[None, :] * (count[:, None] - 1)
    lower = np.floor(pos).astype(np.int64)
    upper = np.minimum(lower + 1, count[:, None] - 1)
    frac = pos - lower
    low = np.take_along_axis(ordered, lower, axis=1)
    high = np.take_along_axis(ordered, upper, axis=1)
    return np.asarray(low + frac * (high - low), dtype=np.float64)


def _recent_mean(history: FloatArray, season_slots: int) -> FloatArray:
    """Mean of each row's last season, or of the whole row when that is empty; NaN if none."""
    recent = history[:, -season_slots:]
    has_recent = np.isfinite(recent).any(axis=1)
    has_any = np.isfinite(history).any(axis=1)
    out = np.full(history.shape[0], np.nan)
    out[has_recent] = np.nanmean(recent[has_recent], axis=1)
    older = has_any & ~has_recent
    out[older] = np.nanmean(history[older], axis=1)
    return out


def _recent_level(history: FloatArray, season_slots: int) -> FloatArray:
    """Mean absolute value of each row's last season (whole row when empty); NaN if none."""
    return _recent_mean(np.abs(history), season_slots)


def _fleet_fallback(
    offsets: FloatArray, level: FloatArray, own: npt.NDArray[np.bool_]
) -> FloatArray:
    """Fill rows/slots without offsets from the fleet's relative spread, else with zero."""
    missing = np.logical_not(np.isfinite(offsets).all(axis=2))
    if not missing.any():
        return offsets
    donors = own & np.isfinite(level) & (level > 0)
    if donors.any():
        relative = np.median(offsets[donors] / level[donors, None, None], axis=0)
        fleet = relative[None, :, :] * np.nan_to_num(level, nan=0.0)[:, None, None]
    else:
        fleet = np.zeros_like(offsets)
    return np.where(missing[:, :, None], fleet, offsets)


def _wall_clock_sources(
    end_ms: npt.NDArray[np.int64],
    time_zone: TimeZones,
    season_slots: int,
    horizon: int,
    length: int,
    resolution_seconds: int,
) -> npt.NDArray[np.int64] | None:
    """``(B, H)`` history columns holding the same wall-clock time one season (``k`` seasons
    for horizon slots past the first season) before each horizon slot; None when every row is
    in UTC (then the columns are the same for all rows and need no zone arithmetic)."""
    rows = end_ms.shape[0]
    zones, zone_of_row = row_zones(time_zone, rows)
    if all(is_utc(zone) for zone in zones):
        return None
    res_ms = resolution_seconds * 1000
    steps = np.arange(horizon, dtype=np.int64)
    lag_ms = (steps // season_slots + 1) * season_slots * res_ms
    out = np.empty((rows, horizon), dtype=np.int64)
    for k, zone in enumerate(zones):
        members = np.flatnonzero(zone_of_row == k)
        distinct, inverse = np.unique(end_ms[members], return_inverse=True)
        slot_ends = distinct[:, None] + (steps[None, :] + 1) * res_ms
        earlier = same_wall_time_earlier(slot_ends, lag_ms[None, :], zone)
        columns = length - 1 - (distinct[:, None] - earlier) // res_ms
        columns = np.where(columns >= length, columns - season_slots, columns)
        out[members] = columns[inverse.reshape(-1)]
    return out


def _take(history: FloatArray, columns: npt.NDArray[np.int64]) -> FloatArray:
    """``history[i, columns[i, h]]``, NaN where a column is before the first slot."""
    inside = columns >= 0
    out: FloatArray = np.where(
        inside, np.take_along_axis(history, np.where(inside, columns, 0), axis=1), np.nan
    )
    return out

"""One model run over a batch of request windows: impute, forecast, fall back; pure numpy.

The windows are imputed exactly as the stream imputes a meter's stored window
(:func:`~streamer.state.imputation.impute_rows`), the model is called once for the batch, and
rows it cannot serve (too little usable history for it) go to the fallback in one more call,
as in :class:`~streamer.pipeline.batch_processor.BatchProcessor`. So the same window gives the
same numbers over HTTP as in ``meter-forecasts``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from streamer.accuracy.interval_calibration import (
    IntervalCalibrator,
    calibrate_quantiles,
    level_column,
)
from streamer.forecast.batch import ForecastBatch
from streamer.forecast.local_time import UTC_ZONE, TimeZones
from streamer.forecast.protocol import Forecaster
from streamer.state.flags import SlotFlag
from streamer.state.imputation import impute_rows

#: ``fallback_reason`` of a row the model could not serve.
INSUFFICIENT_HISTORY: Final = "insufficient_history"


@dataclass(frozen=True, slots=True)
class WindowConfig:
    resolution_seconds: int
    slots_per_day: int
    interpolate_max_gap_slots: int


@dataclass(frozen=True, slots=True)
class RowForecast:
    """The forecast of one window: which model made it, and its numbers (None: no model could)."""

    model: Forecaster | None
    point_kwh: npt.NDArray[np.float64] | None
    quantiles_kwh: npt.NDArray[np.float64] | None
    fallback_reason: str | None


def forecast_windows(
    windows_kwh: npt.NDArray[np.float32],
    end_ms: npt.NDArray[np.int64],
    model: Forecaster,
    fallback: Forecaster,
    config: WindowConfig,
    time_zones: TimeZones = UTC_ZONE,
) -> list[RowForecast]:
    """Row ``i``: the forecast of ``windows_kwh[i]`` (``(B, L)``, NaN missing), ``end_ms[i]``,
    in ``time_zones[i]`` (or one zone for all)."""
    flags = np.where(np.isfinite(windows_kwh), SlotFlag.OBSERVED, SlotFlag.MISSING).astype(np.uint8)
    history, _ = impute_rows(
        windows_kwh, flags, config.slots_per_day, config.interpolate_max_gap_slots
    )
    batch = model.forecast(history, end_ms, config.resolution_seconds, time_zones)
    valid = batch.valid
    rows: list[RowForecast | None] = [None] * len(valid)
    for i in np.flatnonzero(valid).tolist():
        rows[i] = RowForecast(model, batch.point_kwh[i], batch.quantiles_kwh[i], None)
    missing = np.flatnonzero(~valid)
    if missing.size:
        reason = INSUFFICIENT_HISTORY
        backup: ForecastBatch = fallback.forecast(
            history[missing],
            end_ms[missing],
            config.resolution_seconds,
            time_zones if isinstance(time_zones, str) else np.asarray(time_zones)[missing],
        )
        for j, i in enumerate(missing.tolist()):
            if backup.valid[j]:
                rows[i] = RowForecast(
                    fallback, backup.point_kwh[j], backup.quantiles_kwh[j], reason
                )
            else:
                rows[i] = RowForecast(None, None, None, reason)
    return [row for row in rows if row is not None]


def calibrate_rows(rows: list[RowForecast], prior: IntervalCalibrator) -> list[RowForecast]:
    """``rows`` with their p10..p90 band calibrated by the worker's fleet prior (the stream's
    calibration of a meter it has never seen), one numpy pass per model."""
    if not rows:
        return rows
    out = list(rows)
    by_model: dict[int, list[int]] = {}
    for i, row in enumerate(rows):
        if row.model is not None and row.quantiles_kwh is not None:
            by_model.setdefault(id(row.model), []).append(i)
    for indices in by_model.values():
        model = rows[indices[0]].model
        assert model is not None
        levels = model.quantile_levels
        median = level_column(levels, 0.5)
        if median is None:
            continue
        stacked = np.stack([rows[i].quantiles_kwh for i in indices])  # type: ignore[misc]
        low, high = prior.multipliers(stacked.shape[1])
        count = len(indices)
        calibrated = calibrate_quantiles(
            stacked, levels, median, np.tile(low, (count, 1)), np.tile(high, (count, 1))
        )
        for k, i in enumerate(indices):
            row = rows[i]
            out[i] = RowForecast(row.model, row.point_kwh, calibrated[k], row.fallback_reason)
    return out

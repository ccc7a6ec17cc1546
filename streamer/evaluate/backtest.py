"""Rolling-origin backtest of forecasters on a stored history; no Kafka involved."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt
import pandas as pd

from streamer.accuracy.interval_calibration import CalibrationConfig
from streamer.evaluate.accumulator import HorizonAccumulator
from streamer.evaluate.buckets import horizon_buckets
from streamer.evaluate.calibration_replay import CalibrationReplay
from streamer.evaluate.errors import BacktestConfigError
from streamer.evaluate.grid import build_grid
from streamer.evaluate.history import load_history
from streamer.evaluate.metrics import seasonal_naive_scale
from streamer.evaluate.report import BacktestReport, ModelReport
from streamer.forecast.errors import ForecastInputError
from streamer.forecast.protocol import Forecaster

__all__ = ["load_history", "run_backtest"]

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int], None]
FloatArray = npt.NDArray[np.float64]


def run_backtest(
    history: pd.DataFrame,
    forecasters: Sequence[Forecaster],
    *,
    resolution_seconds: int,
    lookback_slots: int,
    horizon_slots: int,
    holdout_slots: int,
    origin_step_slots: int,
    max_meters: int | None = None,
    progress: ProgressCallback | None = None,
    calibration: CalibrationConfig | None = None,
) -> BacktestReport:
    """Forecast the last ``holdout_slots`` of every meter from rolling origins and score them.

    The history (``meter_id``, tz-aware ``ts`` = end of interval, ``kwh``) is pivoted to a
    ``(meters, T)`` grid, missing slots NaN (see :func:`~streamer.evaluate.grid.build_grid`).
    Origins start at the first held-out slot and advance by ``origin_step_slots`` while a full
    horizon fits. At each origin every forecaster gets all meters in one batch: the
    ``lookback_slots`` slots before the origin (NaN-padded on the left when the grid starts
    later), exactly what the streaming worker would hold. Scored pairs skip NaN actuals and
    invalid rows. MASE divides by each meter's weekly seasonal-naive MAE over the slots before
    the holdout. ``progress(done, total)`` is called after each (origin, forecaster) step.

    With ``calibration``, each forecaster is also scored with its p10..p90 band calibrated as a
    worker calibrates it (:mod:`streamer.evaluate.calibration_replay`), as a second report named
    ``<name> (calibrated)``: the effect of ``STREAMER_CALIBRATION_STEP`` before turning it on.
    """
    if not forecasters:
        raise BacktestConfigError("no forecasters to backtest; pass at least one")
    for name, value in (
        ("lookback_slots", lookback_slots),
        ("horizon_slots", horizon_slots),
        ("holdout_slots", holdout_slots),
        ("origin_step_slots", origin_step_slots),
    ):
        if value < 1:
            raise BacktestConfigError(f"{name} must be positive, got {value}")
    names = [f.name for f in forecasters]
    if len(set(names)) != len(names):
        raise BacktestConfigError(f"forecaster names must be unique, got {names}")
    for f in forecasters:
        if f.horizon_slots != horizon_slots:
            raise BacktestConfigError(
                f"forecaster {f.name!r} forecasts {f.horizon_slots} slots but horizon_slots is "
                f"{horizon_slots}; build it with the same horizon"
            )
    if holdout_slots < horizon_slots:
        raise BacktestConfigError(
            f"holdout_slots ({holdout_slots}) must be at least horizon_slots ({horizon_slots})"
        )

    grid = build_grid(history, resolution_seconds, max_meters=max_meters)
    total_slots = grid.slots
    holdout_start = total_slots - holdout_slots
    if holdout_start < 1:
        raise BacktestConfigError(
            f"the history spans {total_slots} slots, not more than holdout_slots "
            f"({holdout_slots}); shorten the holdout or load more history"
        )
    origins = list(range(holdout_start, total_slots - horizon_slots + 1, origin_step_slots))
    week_slots = 7 * 86_400 // resolution_seconds
    scale = seasonal_naive_scale(grid.kwh[:, :holdout_start], week_slots)
    if not np.isfinite(scale).any():
        logger.warning("no meter has a week of history before the holdout: MASE is undefined (n/a)")

    meters = grid.kwh.shape[0]
    accumulators = [HorizonAccumulator(horizon_slots, f.quantile_levels) for f in forecasters]
    replays = (
        [CalibrationReplay(meters, calibration, f.quantile_levels) for f in forecasters]
        if calibration is not None and calibration.enabled
        else []
    )
    calibrated = [HorizonAccumulator(horizon_slots, f.quantile_levels) for f in forecasters]
    invalid = [0] * len(forecasters)
    seconds = [0.0] * len(forecasters)
    total_steps, done = len(origins) * len(forecasters), 0
    for origin in origins:
        window = _window(grid.kwh, origin, lookback_slots)
        actual = grid.kwh[:, origin : origin + horizon_slots]
        end_ms = np.full(meters, grid.end_ms(origin - 1), dtype=np.int64)
        for k, forecaster in enumerate(forecasters):
            started = time.perf_counter()
            try:
                batch = forecaster.forecast(window, end_ms, resolution_seconds)
            except ForecastInputError as exc:
                raise BacktestConfigError(
                    f"forecaster {forecaster.name!r} refused the backtest window: {exc}"
                ) from exc
            seconds[k] += time.perf_counter() - started
            invalid[k] += int((~batch.valid).sum())
            accumulators[k].update(actual, batch.point_kwh, batch.quantiles_kwh, scale)
            if replays:
                replays[k].learn_until(origin, grid.kwh)
                published = replays[k].publish(
                    origin, batch.point_kwh, batch.quantiles_kwh, batch.valid
                )
                calibrated[k].update(actual, batch.point_kwh, published, scale)
            done += 1
            if progress is not None:
                progress(done, total_steps)

    buckets = horizon_buckets(horizon_slots)
    models = tuple(
        ModelReport(
            name=f.name,
            version=f.version,
            overall=acc.summary(1, horizon_slots),
            by_bucket=tuple((b, acc.summary(b.first, b.last)) for b in buckets),
            rows_forecast=meters * len(origins),
            rows_invalid=invalid[k],
            forecast_seconds=seconds[k],
            fit_stats=_fit_stats(f),
        )
        for k, (f, acc) in enumerate(zip(forecasters, accumulators, strict=True))
    )
    if replays:
        models += tuple(
            ModelReport(
                name=f"{f.name} (calibrated)",
                version=f.version,
                overall=acc.summary(1, horizon_slots),
                by_bucket=tuple((b, acc.summary(b.first, b.last)) for b in buckets),
                rows_forecast=meters * len(origins),
                rows_invalid=invalid[k],
                forecast_seconds=seconds[k],
            )
            for k, (f, acc) in enumerate(zip(forecasters, calibrated, strict=True))
        )
    return BacktestReport(
        resolution_seconds=resolution_seconds,
        lookback_slots=lookback_slots,
        horizon_slots=horizon_slots,
        holdout_slots=holdout_slots,
        origin_step_slots=origin_step_slots,
        meters=meters,
        origins=len(origins),
        first_origin_ms=grid.end_ms(origins[0] - 1),
        last_origin_ms=grid.end_ms(origins[-1] - 1),
        mase_season_slots=week_slots,
        models=models,
    )


def _window(kwh: FloatArray, origin: int, lookback_slots: int) -> FloatArray:
    """The ``lookback_slots`` columns before ``origin``, NaN-padded on the left."""
    start = origin - lookback_slots
    if start >= 0:
        return np.ascontiguousarray(kwh[:, start:origin])
    pad = np.full((kwh.shape[0], -start), np.nan)
    return np.concatenate([pad, kwh[:, :origin]], axis=1)


def _fit_stats(forecaster: Forecaster) -> dict[str, object] | None:
    stats = getattr(forecaster, "fit_stats", None)
    as_dict = getattr(stats, "as_dict", None)
    return as_dict() if callable(as_dict) else None

"""Rolling-origin backtest of forecasters on a stored history; no Kafka involved."""

from __future__ import annotations

import logging
import time
import zoneinfo
from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt
import pandas as pd

from streamer.accuracy.interval_calibration import CalibrationConfig, level_column
from streamer.evaluate.accumulator import HorizonAccumulator
from streamer.evaluate.buckets import horizon_buckets
from streamer.evaluate.calibration_replay import CalibrationReplay
from streamer.evaluate.errors import BacktestConfigError
from streamer.evaluate.grid import HistoryGrid, build_grid, columns_before
from streamer.evaluate.group_backtest import WARMUP_DAYS, GroupBacktest, GroupMembers
from streamer.evaluate.history import load_history
from streamer.evaluate.metrics import seasonal_naive_scale
from streamer.evaluate.report import BacktestReport, ModelReport
from streamer.forecast.errors import ForecastInputError
from streamer.forecast.local_time import local_day_slots, zone_info
from streamer.forecast.protocol import Forecaster
from streamer.groups.calibration import GroupCalibrationConfig

__all__ = ["load_history", "run_backtest"]

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int], None]
ModelCallback = Callable[[str], None]
#: ``(grid, model name, origin slot, actual (M, S), p50 (M, S), band (M, S, 2) or None)`` after
#: each model's forecast at each origin; ``band`` is the published p10..p90 (calibrated when the
#: run calibrates), ``S`` the scored slots.
ForecastCallback = Callable[
    [
        HistoryGrid,
        str,
        int,
        npt.NDArray[np.float64],
        npt.NDArray[np.float64],
        npt.NDArray[np.float64] | None,
    ],
    None,
]
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
    holdout_per_meter: bool = False,
    day_ahead_zone: str | None = None,
    on_model: ModelCallback | None = None,
    time_zone: str = "UTC",
    on_forecast: ForecastCallback | None = None,
    groups: GroupMembers | None = None,
    group_calibration: GroupCalibrationConfig | None = None,
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

    Models are reported by name, or as ``name:version`` when several share a name (two
    versions of one model in one run). ``on_model(name)`` is called before each forecast step.

    ``holdout_per_meter``: the held-out period is the last ``holdout_slots`` of each meter's
    own history (up to its last reading) instead of the last slots of the pooled grid. Origins
    run over the union of those periods; at each origin only meters whose own period holds the
    whole horizon are scored (the others' rows are masked), and each meter's MASE scale uses
    only the slots before its own holdout.

    ``day_ahead_zone`` (an IANA zone): the day-ahead protocol. Origins are at local midnight in
    that zone (the end of the slot before them is 00:00 local), one per day, and the scored
    horizon is the local day: 48 half-hours, or 46 and 50 on the days the clocks change (a
    day longer than the forecasters' horizon is scored over the horizon). ``origin_step_slots``
    is then not used; the forecasters' horizon must be at least a day (of 24 h) and only the
    local day is scored.

    ``time_zone`` (an IANA zone) is the calendar of meters the history's ``time_zone`` column
    does not place: models read their local calendar features and seasonal-naive lags in each
    meter's zone.

    ``groups`` (group id, or :class:`~streamer.groups.membership.GroupRef` for a kind, -> its
    member meter ids; ids not in the history are ignored and counted): also forecast each
    group's total from its members' forecasts, calibrate its band online against realised
    totals (``group_calibration``, default :class:`GroupCalibrationConfig`) and score it per
    kind after a warm-up (:mod:`streamer.evaluate.group_backtest`), in the report's ``groups``.
    """
    _zone(time_zone)
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
    names = _report_names(forecasters)
    for f in forecasters:
        if f.horizon_slots != horizon_slots:
            raise BacktestConfigError(
                f"forecaster {f.name!r} forecasts {f.horizon_slots} slots but horizon_slots is "
                f"{horizon_slots}; build it with the same horizon"
            )
    scored_slots = horizon_slots
    if day_ahead_zone is not None:
        scored_slots = 86_400 // resolution_seconds
        if horizon_slots < scored_slots:
            raise BacktestConfigError(
                f"the day-ahead protocol scores {scored_slots} slots (a day) but the forecasters "
                f"forecast {horizon_slots}; build them with a horizon of at least a day"
            )
    if holdout_slots < scored_slots:
        raise BacktestConfigError(
            f"holdout_slots ({holdout_slots}) must be at least horizon_slots ({scored_slots})"
        )

    grid = build_grid(history, resolution_seconds, max_meters=max_meters)
    total_slots = grid.slots
    meters = grid.kwh.shape[0]
    zones = grid.zones(time_zone)
    one_zone: str | npt.NDArray[np.str_] = zones[0] if (zones == zones[0]).all() else zones
    if holdout_per_meter:
        last = _last_reading(grid.kwh)
        start = last + 1 - holdout_slots
    else:
        last = np.full(meters, total_slots - 1)
        start = np.full(meters, total_slots - holdout_slots)
    if int(start.max()) < 1:
        raise BacktestConfigError(
            f"the history spans {total_slots} slots, not more than holdout_slots "
            f"({holdout_slots}); shorten the holdout or load more history"
        )
    start = np.maximum(start, 1)  # a meter with too short a history is scored from slot 1
    first_origin, last_origin = int(start.min()), int(last.max()) + 1 - scored_slots
    if day_ahead_zone is not None:
        origins = _local_midnights(grid, first_origin, last_origin, day_ahead_zone)
    else:
        origins = list(range(first_origin, last_origin + 1, origin_step_slots))
    # skip origins where no meter's own holdout holds the whole horizon (per-meter holdouts)
    origins = [o for o in origins if ((start <= o) & (o + scored_slots - 1 <= last)).any()]
    if not origins:
        raise BacktestConfigError(
            f"no forecast origin fits a {scored_slots}-slot horizon in the held-out period; "
            "lengthen --holdout-days"
        )
    week_slots = 7 * 86_400 // resolution_seconds
    columns = np.arange(total_slots)
    insample = np.where(columns[None, :] < start[:, None], grid.kwh, np.nan)
    scale = seasonal_naive_scale(insample[:, : int(start.max())], week_slots)
    if not np.isfinite(scale).any():
        logger.warning("no meter has a week of history before the holdout: MASE is undefined (n/a)")

    accumulators = [
        HorizonAccumulator(scored_slots, f.quantile_levels, meters) for f in forecasters
    ]
    replays = (
        [CalibrationReplay(meters, calibration, f.quantile_levels) for f in forecasters]
        if calibration is not None and calibration.enabled
        else []
    )
    calibrated = [HorizonAccumulator(scored_slots, f.quantile_levels, meters) for f in forecasters]
    group_backtest = (
        None
        if groups is None
        else GroupBacktest(
            grid,
            groups,
            names,
            [f.quantile_levels for f in forecasters],
            group_calibration or GroupCalibrationConfig(),
            horizon_slots=horizon_slots,
            scored_slots=scored_slots,
            first_scored_origin=origins[0] + WARMUP_DAYS * 86_400 // resolution_seconds,
            time_zone=time_zone,
        )
    )
    invalid = [0] * len(forecasters)
    seconds = [0.0] * len(forecasters)
    rows_forecast = 0
    total_steps, done = len(origins) * len(forecasters), 0
    for origin in origins:
        window = columns_before(grid.kwh, origin, lookback_slots)
        # a meter is scored at this origin when the whole horizon is inside its own holdout
        active = (start <= origin) & (origin + scored_slots - 1 <= last)
        rows_forecast += int(active.sum())
        actual = np.where(active[:, None], grid.kwh[:, origin : origin + scored_slots], np.nan)
        day_slots = scored_slots
        if day_ahead_zone is not None:  # 46 or 50 slots on the days the clocks change
            day_slots = min(_local_day_slots(grid, origin, day_ahead_zone), scored_slots)
            actual[:, day_slots:] = np.nan
        if group_backtest is not None:
            group_backtest.start_origin(origin, actual, one_zone, day_slots)
        end_ms = np.full(meters, grid.end_ms(origin - 1), dtype=np.int64)
        for k, forecaster in enumerate(forecasters):
            if on_model is not None:
                on_model(names[k])
            started = time.perf_counter()
            try:
                batch = forecaster.forecast(window, end_ms, resolution_seconds, one_zone)
            except ForecastInputError as exc:
                raise BacktestConfigError(
                    f"forecaster {forecaster.name!r} refused the backtest window: {exc}"
                ) from exc
            seconds[k] += time.perf_counter() - started
            invalid[k] += int((~batch.valid & active).sum())
            point = batch.point_kwh[:, :scored_slots]
            accumulators[k].update(actual, point, batch.quantiles_kwh[:, :scored_slots], scale)
            if replays:
                replays[k].learn_until(origin, grid.kwh)
                published = replays[k].publish(
                    origin, batch.point_kwh, batch.quantiles_kwh, batch.valid
                )
                calibrated[k].update(actual, point, published[:, :scored_slots], scale)
            if group_backtest is not None:
                group_backtest.add(k, batch, actual)
            if on_forecast is not None:
                shown = published if replays else batch.quantiles_kwh
                on_forecast(grid, names[k], origin, actual, point, _band(shown, f, scored_slots))
            done += 1
            if progress is not None:
                progress(done, total_steps)

    buckets = horizon_buckets(scored_slots)

    def model_report(k: int, name: str, scores: HorizonAccumulator, fit: bool) -> ModelReport:
        return ModelReport(
            name=name,
            version=forecasters[k].version,
            overall=scores.summary(1, scored_slots),
            by_bucket=tuple((b, scores.summary(b.first, b.last)) for b in buckets),
            rows_forecast=rows_forecast,
            rows_invalid=invalid[k],
            forecast_seconds=seconds[k],
            fit_stats=_fit_stats(forecasters[k]) if fit else None,
        )

    models = tuple(model_report(k, names[k], acc, True) for k, acc in enumerate(accumulators))
    if replays:  # the same forecasts, their band calibrated: no fit of their own
        models += tuple(
            model_report(k, f"{names[k]} (calibrated)", acc, False)
            for k, acc in enumerate(calibrated)
        )
    return BacktestReport(
        resolution_seconds=resolution_seconds,
        lookback_slots=lookback_slots,
        horizon_slots=scored_slots,
        holdout_slots=holdout_slots,
        origin_step_slots=origin_step_slots if day_ahead_zone is None else 0,
        meters=meters,
        origins=len(origins),
        first_origin_ms=grid.end_ms(origins[0] - 1),
        last_origin_ms=grid.end_ms(origins[-1] - 1),
        mase_season_slots=week_slots,
        models=models,
        holdout_per_meter=holdout_per_meter,
        day_ahead_zone=day_ahead_zone,
        groups=() if group_backtest is None else group_backtest.reports(),
        group_warmup_origins=0 if group_backtest is None else group_backtest.warmup_origins,
        group_meters_missing=0 if group_backtest is None else group_backtest.missing,
    )


def _report_names(forecasters: Sequence[Forecaster]) -> list[str]:
    """Each forecaster's name, or ``name:version`` where several share a name; unique."""
    plain = [f.name for f in forecasters]
    names = [f"{f.name}:{f.version}" if plain.count(f.name) > 1 else f.name for f in forecasters]
    if len(set(names)) != len(names):
        raise BacktestConfigError(
            f"forecaster names must be unique (as name or name:version), got {names}"
        )
    return names


def _last_reading(kwh: FloatArray) -> npt.NDArray[np.int64]:
    """Per meter, the column of its last finite reading (-1 when it has none)."""
    finite = np.isfinite(kwh)
    last = kwh.shape[1] - 1 - np.argmax(finite[:, ::-1], axis=1)
    return np.where(finite.any(axis=1), last, -1).astype(np.int64)


def _local_midnights(grid: HistoryGrid, first: int, last: int, zone: str) -> list[int]:
    """Origins ``first..last`` whose start (the end of the slot before) is 00:00 in ``zone``."""
    tz = _zone(zone)
    if last < first:
        return []
    candidates = np.arange(first, last + 1)
    starts_ms = grid.first_end_ms + (candidates - 1) * grid.resolution_seconds * 1000
    local = pd.DatetimeIndex(pd.to_datetime(starts_ms, unit="ms", utc=True)).tz_convert(tz)
    midnight = (local.hour == 0) & (local.minute == 0) & (local.second == 0)
    return [int(c) for c in candidates[np.asarray(midnight)]]


def _band(
    quantiles: npt.NDArray[np.float64], forecaster: Forecaster, slots: int
) -> npt.NDArray[np.float64] | None:
    """``(M, slots, 2)`` p10 and p90 of a forecast, None when the model has no such levels."""
    low = level_column(forecaster.quantile_levels, 0.1)
    high = level_column(forecaster.quantile_levels, 0.9)
    if low is None or high is None:
        return None
    return np.stack([quantiles[:, :slots, low], quantiles[:, :slots, high]], axis=2)


def _zone(name: str) -> zoneinfo.ZoneInfo:
    """The IANA zone ``name``; :class:`BacktestConfigError` naming examples if it is none."""
    try:
        return zone_info(name)
    except ForecastInputError as exc:
        raise BacktestConfigError(str(exc)) from None


def _local_day_slots(grid: HistoryGrid, origin: int, zone: str) -> int:
    """Slots of the local day that starts at ``origin`` (a local midnight)."""
    start = pd.Timestamp(grid.end_ms(origin - 1), unit="ms", tz="UTC").tz_convert(zone)
    return local_day_slots(start.date(), zone, grid.resolution_seconds)


def _fit_stats(forecaster: Forecaster) -> dict[str, object] | None:
    stats = getattr(forecaster, "fit_stats", None)
    as_dict = getattr(stats, "as_dict", None)
    return as_dict() if callable(as_dict) else None

"""The loop shared by the per-row statistical forecasters (ETS, SARIMA).

Each row is cut to the model's fitting window, checked for enough finite values, its gaps are
filled, and it is standardised (so kWh and Wh fit alike); then the model's ``fit_one`` returns
a Gaussian predictive mean and variance per horizon slot, turned back into kWh and into
quantiles. Warnings from inside the fit are captured and counted; exceptions make that row
invalid.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import numpy.typing as npt

from streamer.forecast.batch import ForecastBatch
from streamer.forecast.blas_threads import single_threaded_blas
from streamer.forecast.errors import ForecasterSpecError
from streamer.forecast.fit_stats import FitStats
from streamer.forecast.inputs import (
    check_inputs,
    check_positive,
    check_quantile_levels,
    fill_gaps,
)
from streamer.forecast.local_time import UTC_ZONE, TimeZones

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]

# fit_one(standardised window, horizon_slots) -> (mean, variance), both (H,), standardised units.
FitOne = Callable[[FloatArray, int], tuple[FloatArray, FloatArray]]

# A window whose spread (or seasonal change) is below this share of its size is not fitted.
DEGENERATE_REL_STD = 1e-9


@dataclass(frozen=True, slots=True)
class RowWindow:
    """How much of each row a model reads and how much of it must be observed."""

    window_slots: int
    min_finite_slots: int
    season_slots: int


def gaussian_quantiles(mean: FloatArray, std: FloatArray, levels: tuple[float, ...]) -> FloatArray:
    """``(..., Q)`` quantiles of independent normals with the given mean and std."""
    z = np.array([NormalDist().inv_cdf(q) for q in levels], dtype=np.float64)
    return mean[..., None] + std[..., None] * z


def forecast_rows(
    history: FloatArray,
    *,
    window: RowWindow,
    horizon_slots: int,
    levels: tuple[float, ...],
    fit_one: FitOne,
    stats: FitStats,
    model: str,
) -> ForecastBatch:
    """Fit ``fit_one`` on every row of ``history`` and assemble a :class:`ForecastBatch`.

    A window that does not vary (flat, or repeating exactly with the season, e.g. a vacant
    premises reading 0) is not fitted: its forecast is the last season repeated, with zero
    spread (``FitStats.rows_degenerate``); likelihood fits on such data only produce warnings.
    """
    rows = history.shape[0]
    point = np.full((rows, horizon_slots), np.nan)
    std = np.full((rows, horizon_slots), np.nan)
    valid = np.zeros(rows, dtype=np.bool_)
    with single_threaded_blas():
        for i in range(rows):
            result = _forecast_row(history[i], window, horizon_slots, fit_one, stats, model)
            if result is not None:
                point[i], std[i] = result
                valid[i] = True
    quantiles = gaussian_quantiles(point, std, levels)
    return ForecastBatch.from_rows(point, quantiles, levels, valid)


def _forecast_row(
    row: FloatArray,
    window: RowWindow,
    horizon_slots: int,
    fit_one: FitOne,
    stats: FitStats,
    model: str,
) -> tuple[FloatArray, FloatArray] | None:
    """``(mean_kwh, std_kwh)`` of one row, or ``None`` when it cannot be forecast."""
    raw = row[-window.window_slots :]
    finite = np.isfinite(raw)
    if int(finite.sum()) < window.min_finite_slots:
        stats.rows_skipped_short += 1
        return None
    series = fill_gaps(raw[int(np.argmax(finite)) :], window.season_slots)
    center, scale = float(series.mean()), float(series.std())
    started = time.perf_counter()
    try:
        if scale <= DEGENERATE_REL_STD * max(1.0, abs(center)) or _is_periodic(
            series, window.season_slots
        ):
            stats.rows_degenerate += 1
            mean = repeat_last_season(series, window.season_slots, horizon_slots)
            return mean, np.zeros(horizon_slots)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            mean_z, var_z = fit_one((series - center) / scale, horizon_slots)
        for item in caught:
            stats.warnings[item.category.__name__] += 1
            logger.debug("%s: %s", model, item.message)
    except Exception as exc:  # statsmodels raises many types; one row must not stop a batch
        stats.rows_failed += 1
        stats.failures[type(exc).__name__] += 1
        logger.debug("%s: row failed: %r", model, exc)
        return None
    finally:
        stats.fit_seconds += time.perf_counter() - started
    mean = mean_z * scale + center
    std = np.sqrt(np.maximum(var_z, 0.0)) * scale
    if mean.shape != (horizon_slots,) or not (np.isfinite(mean).all() and np.isfinite(std).all()):
        stats.rows_failed += 1
        stats.failures["NonFiniteForecast"] += 1
        return None
    stats.rows_fitted += 1
    return mean, std


def repeat_last_season(series: FloatArray, season_slots: int, horizon_slots: int) -> FloatArray:
    """Seasonal-naive continuation: horizon slot ``h`` copies the slot one season before it."""
    last = series[-season_slots:]
    return np.asarray(last[np.arange(horizon_slots) % season_slots], dtype=np.float64)


def _is_periodic(series: FloatArray, season_slots: int) -> bool:
    """True when the series repeats exactly (to rounding) with the season."""
    if series.size <= season_slots:
        return False
    diff = series[season_slots:] - series[:-season_slots]
    tol = DEGENERATE_REL_STD * max(1.0, float(np.abs(series).max()))
    return bool(np.abs(diff).max() <= tol)


class RowFittingForecaster:
    """What ETS and SARIMA share: a season, a horizon, quantile levels, the fitting window
    (default 7 seasons) and the history a row needs (default 2 seasons), fit statistics, and
    :meth:`forecast`, which runs :func:`forecast_rows` with the subclass's :meth:`_fit_one`.
    """

    version = "1"

    def __init__(
        self,
        name: str,
        season_slots: int,
        horizon_slots: int,
        quantile_levels: Sequence[float],
        *,
        fit_window_slots: int | None,
        min_history_slots: int | None,
        maxiter: int,
    ) -> None:
        self.name = name
        self.season_slots = check_positive("season_slots", season_slots)
        self.horizon_slots = check_positive("horizon_slots", horizon_slots)
        self.quantile_levels = check_quantile_levels(quantile_levels)
        self.fit_window_slots = check_positive(
            "fit_window_slots",
            7 * self.season_slots if fit_window_slots is None else fit_window_slots,
        )
        self.min_history_slots = check_positive(
            "min_history_slots",
            2 * self.season_slots if min_history_slots is None else min_history_slots,
        )
        self.maxiter = check_positive("maxiter", maxiter)
        self.fit_stats = FitStats()

    def _check_fit_window(self) -> None:
        """Called by subclasses once their own minimum history is checked."""
        if self.fit_window_slots < self.min_history_slots:
            raise ForecasterSpecError(
                f"fit_window_slots ({self.fit_window_slots}) must be at least min_history_slots "
                f"({self.min_history_slots})"
            )

    def forecast(
        self,
        history_kwh: npt.NDArray[np.float64],
        end_ms: npt.NDArray[np.int64],
        resolution_seconds: int,
        time_zone: TimeZones = UTC_ZONE,
    ) -> ForecastBatch:
        """See :class:`~streamer.forecast.protocol.Forecaster`."""
        history = check_inputs(
            history_kwh, end_ms, min_length=self.min_history_slots, model=self.name
        )
        return forecast_rows(
            history,
            window=RowWindow(self.fit_window_slots, self.min_history_slots, self.season_slots),
            horizon_slots=self.horizon_slots,
            levels=self.quantile_levels,
            fit_one=self._fit_one,
            stats=self.fit_stats,
            model=self.name,
        )

    def _fit_one(self, series: FloatArray, horizon_slots: int) -> tuple[FloatArray, FloatArray]:
        """The model's Gaussian mean and variance for ``horizon_slots`` (standardised units)."""
        raise NotImplementedError

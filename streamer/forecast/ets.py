"""Exponential smoothing (ETS) with additive errors and additive daily seasonality, per meter."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from streamer.forecast.batch import ForecastBatch
from streamer.forecast.errors import ForecasterSpecError
from streamer.forecast.fit_stats import FitStats
from streamer.forecast.inputs import (
    DEFAULT_QUANTILE_LEVELS,
    check_inputs,
    check_positive,
    check_quantile_levels,
)
from streamer.forecast.row_fitting import FloatArray, RowWindow, forecast_rows


class EtsForecaster:
    """statsmodels ``ETSModel`` (error ``add``, seasonal ``add``; trend none or damped additive)
    fitted on each meter's last ``fit_window_slots`` (default: 7 seasons).

    Quantiles come from the model's exact Gaussian prediction variance. The initial states
    are set by statsmodels' heuristic (which needs two full seasons, hence
    ``min_history_slots = 2 * season_slots`` by default), so only the smoothing parameters
    are optimised (at most ``maxiter`` L-BFGS iterations): about 20 ms per meter for 336
    half-hourly slots. Gaps are filled from the neighbouring seasons before fitting; warnings
    and failures are counted in :attr:`fit_stats`.
    """

    version = "1"

    def __init__(
        self,
        season_slots: int,
        horizon_slots: int,
        quantile_levels: Sequence[float] = DEFAULT_QUANTILE_LEVELS,
        *,
        fit_window_slots: int | None = None,
        min_history_slots: int | None = None,
        trend: bool = False,
        maxiter: int = 100,
        name: str = "ets",
    ) -> None:
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
        if self.min_history_slots < 2 * self.season_slots:
            raise ForecasterSpecError(
                f"ETS needs two full seasons to initialise: min_history_slots must be at least "
                f"{2 * self.season_slots}, got {self.min_history_slots}"
            )
        if self.fit_window_slots < self.min_history_slots:
            raise ForecasterSpecError(
                f"fit_window_slots ({self.fit_window_slots}) must be at least min_history_slots "
                f"({self.min_history_slots})"
            )
        self.trend = trend
        self.maxiter = check_positive("maxiter", maxiter)
        self.name = name
        self.fit_stats = FitStats()

    def __repr__(self) -> str:
        return (
            f"EtsForecaster(season_slots={self.season_slots}, horizon_slots={self.horizon_slots}, "
            f"fit_window_slots={self.fit_window_slots}, trend={self.trend})"
        )

    def forecast(
        self,
        history_kwh: npt.NDArray[np.float64],
        end_ms: npt.NDArray[np.int64],
        resolution_seconds: int,
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
        # Imported here: statsmodels takes seconds to import and seasonal-naive workers
        # never need it.
        import pandas as pd
        from statsmodels.tsa.exponential_smoothing.ets import ETSModel

        # A pandas Series (not ndarray) because statsmodels' ETS prediction results read
        # ``predicted_mean.index``, which an ndarray lacks.
        endog = pd.Series(series, index=pd.RangeIndex(series.size))
        model = ETSModel(
            endog,
            error="add",
            trend="add" if self.trend else None,
            damped_trend=self.trend,
            seasonal="add",
            seasonal_periods=self.season_slots,
            initialization_method="heuristic",
        )
        result = model.fit(disp=False, maxiter=self.maxiter)
        pred = result.get_prediction(start=series.size, end=series.size + horizon_slots - 1)
        mean = np.asarray(pred.predicted_mean, dtype=np.float64)
        var = np.asarray(pred.forecast_variance, dtype=np.float64)
        return mean, var

"""Exponential smoothing (ETS) with additive errors and additive daily seasonality, per meter."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from streamer.forecast.errors import ForecasterSpecError
from streamer.forecast.inputs import (
    DEFAULT_QUANTILE_LEVELS,
)
from streamer.forecast.row_fitting import FloatArray, RowFittingForecaster


class EtsForecaster(RowFittingForecaster):
    """statsmodels ``ETSModel`` (error ``add``, seasonal ``add``; trend none or damped additive)
    fitted on each meter's last ``fit_window_slots`` (default: 7 seasons).

    Quantiles come from the model's exact Gaussian prediction variance. The initial states
    are set by statsmodels' heuristic (which needs two full seasons, hence
    ``min_history_slots = 2 * season_slots`` by default), so only the smoothing parameters
    are optimised (at most ``maxiter`` L-BFGS iterations): about 20 ms per meter for 336
    half-hourly slots. Gaps are filled from the neighbouring seasons before fitting; warnings
    and failures are counted in :attr:`fit_stats`.
    """

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
        super().__init__(
            name,
            season_slots,
            horizon_slots,
            quantile_levels,
            fit_window_slots=fit_window_slots,
            min_history_slots=min_history_slots,
            maxiter=maxiter,
        )
        if self.min_history_slots < 2 * self.season_slots:
            raise ForecasterSpecError(
                f"ETS needs two full seasons to initialise: min_history_slots must be at least "
                f"{2 * self.season_slots}, got {self.min_history_slots}"
            )
        self._check_fit_window()
        self.trend = trend

    def __repr__(self) -> str:
        return (
            f"EtsForecaster(season_slots={self.season_slots}, horizon_slots={self.horizon_slots}, "
            f"fit_window_slots={self.fit_window_slots}, trend={self.trend})"
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

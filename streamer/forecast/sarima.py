"""Seasonal ARIMA per meter: ARMA(p, q) on the day-over-day differences."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from streamer.forecast.errors import ForecasterSpecError
from streamer.forecast.inputs import (
    DEFAULT_QUANTILE_LEVELS,
)
from streamer.forecast.row_fitting import FloatArray, RowFittingForecaster


class SarimaForecaster(RowFittingForecaster):
    """statsmodels ``SARIMAX`` of order ``(p, 0, q) x (0, 1, 0, s)`` fitted per meter.

    ``s`` is the season (slots per day). The model is fitted with ``simple_differencing=True``,
    i.e. as ARMA(p, q) on ``y[t] - y[t - s]`` with a state of size ``max(p, q + 1)``; a
    seasonal MA term or the full seasonal state (size ``s``) would cost seconds to tens of
    seconds per meter instead of about 0.1 s. The forecasts of the differences are integrated
    back here (``y[T+h] = d[T+h] + y[T+h-s]``) and the variance is exact for the fitted
    parameters: the impulse responses of the ARMA are summed over the seasonal lags
    (``psi_y[j] = sum_k psi_d[j - k s]``) and ``var[h] = sigma2 * sum_{j<h} psi_y[j]^2``.

    Fitting starts from zero ARMA coefficients on standardised differences (deterministic, no
    start-parameter warnings) and stops after ``maxiter`` L-BFGS iterations; the window is the
    last ``fit_window_slots`` (default 7 seasons). Warnings and failures are counted in
    :attr:`fit_stats`.
    """

    def __init__(
        self,
        season_slots: int,
        horizon_slots: int,
        quantile_levels: Sequence[float] = DEFAULT_QUANTILE_LEVELS,
        *,
        ar_order: int = 1,
        ma_order: int = 1,
        fit_window_slots: int | None = None,
        min_history_slots: int | None = None,
        maxiter: int = 50,
        name: str = "sarima",
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
        if ar_order < 0 or ma_order < 0 or ar_order + ma_order == 0 or ar_order + ma_order > 4:
            raise ForecasterSpecError(
                f"SARIMA orders p={ar_order}, q={ma_order}: choose small orders with "
                "1 <= p + q <= 4, e.g. p=1, q=1"
            )
        self.ar_order = ar_order
        self.ma_order = ma_order
        if self.min_history_slots <= self.season_slots + ar_order + ma_order:
            raise ForecasterSpecError(
                f"SARIMA needs more than one season of history to difference: "
                f"min_history_slots must exceed {self.season_slots + ar_order + ma_order}"
            )
        self._check_fit_window()

    def __repr__(self) -> str:
        return (
            f"SarimaForecaster(season_slots={self.season_slots}, "
            f"horizon_slots={self.horizon_slots}, order=({self.ar_order}, 0, {self.ma_order}), "
            f"fit_window_slots={self.fit_window_slots})"
        )

    def _fit_one(self, series: FloatArray, horizon_slots: int) -> tuple[FloatArray, FloatArray]:
        # Imported here: statsmodels takes seconds to import (see EtsForecaster._fit_one).
        from statsmodels.tsa.statespace.sarimax import SARIMAX

        s = self.season_slots
        # Scale so the seasonal differences have unit spread: the optimiser then sees the same
        # problem for a quiet and a busy meter (and for kWh and Wh).
        diff_std = float(np.std(series[s:] - series[:-s]))
        y = series / diff_std
        model = SARIMAX(
            y,
            order=(self.ar_order, 0, self.ma_order),
            seasonal_order=(0, 1, 0, s),
            trend="n",
            simple_differencing=True,
        )
        start = np.r_[np.zeros(self.ar_order + self.ma_order), 1.0]
        result = model.fit(start_params=start, disp=False, maxiter=self.maxiter)
        fc = result.get_forecast(horizon_slots)
        diff_mean = np.asarray(fc.predicted_mean, dtype=np.float64)
        sigma2 = float(np.asarray(fc.var_pred_mean, dtype=np.float64)[0])
        psi_d = np.asarray(
            result.impulse_responses(steps=max(horizon_slots - 1, 1)), dtype=np.float64
        )

        mean, var = integrate_seasonal_difference(
            y[-s:], diff_mean, psi_d.reshape(-1)[:horizon_slots], sigma2
        )
        return mean * diff_std, var * diff_std**2


def integrate_seasonal_difference(
    last_season: FloatArray, diff_mean: FloatArray, psi_diff: FloatArray, sigma2: float
) -> tuple[FloatArray, FloatArray]:
    """Forecast mean and variance of ``y`` from those of ``d[t] = y[t] - y[t - s]``.

    ``last_season`` holds the last ``s`` observed values of ``y``; ``diff_mean`` the forecasts
    of ``d`` for ``h = 1..H``; ``psi_diff`` the first ``H`` impulse responses (MA(inf)
    weights, ``psi[0] = 1``) of the ARMA model of ``d``, whose innovation variance is
    ``sigma2``. Then ``y[T+h] = d[T+h] + y[T+h-s]`` and the weights of ``y`` are
    ``psi_y[j] = psi_d[j] + psi_y[j - s]``, so ``var[h] = sigma2 * sum_{j<h} psi_y[j]^2``.
    """
    s, horizon = last_season.size, diff_mean.size
    mean = np.empty(horizon)
    psi_y = np.array(psi_diff[:horizon], dtype=np.float64, copy=True)
    for j in range(horizon):
        mean[j] = diff_mean[j] + (last_season[j] if j < s else mean[j - s])
        if j >= s:
            psi_y[j] += psi_y[j - s]
    return mean, sigma2 * np.cumsum(psi_y**2)

"""ETS and SARIMA on known series, their fit bookkeeping, and SARIMA's variance algebra."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from statsmodels.tsa.statespace.sarimax import SARIMAX

from streamer.forecast import EtsForecaster, ForecasterSpecError, SarimaForecaster
from streamer.forecast.blas_threads import single_threaded_blas
from streamer.forecast.sarima import integrate_seasonal_difference

DAY = 24
END = np.array([1_700_000_000_000], dtype=np.int64)
MODELS = {
    "ets": lambda horizon: EtsForecaster(DAY, horizon),
    "sarima": lambda horizon: SarimaForecaster(DAY, horizon),
}


def _truth(start: int, length: int) -> np.ndarray:
    t = np.arange(start, start + length)
    return 2.0 + np.sin(2 * np.pi * t / DAY)


@pytest.mark.parametrize("model", sorted(MODELS))
def test_pure_daily_sine_plus_constant(model: str) -> None:
    horizon = 2 * DAY
    f = MODELS[model](horizon)
    batch = f.forecast(_truth(0, 7 * DAY)[None, :], END, 3600)
    np.testing.assert_allclose(batch.point_kwh[0], _truth(7 * DAY, horizon), atol=1e-9)
    np.testing.assert_allclose(batch.quantiles_kwh[0, :, 0], batch.point_kwh[0], atol=1e-9)
    assert f.fit_stats.rows_degenerate == 1 and f.fit_stats.warnings_total == 0


@pytest.mark.parametrize("model", sorted(MODELS))
def test_noisy_daily_sine_fits_within_the_noise(model: str) -> None:
    sigma = 0.01
    rng = np.random.default_rng(42)
    horizon = 2 * DAY  # beyond one season: SARIMA integrates its own forecasts
    rows = np.stack([_truth(0, 7 * DAY) + sigma * rng.standard_normal(7 * DAY) for _ in range(2)])
    f = MODELS[model](horizon)
    batch = f.forecast(rows, np.repeat(END, 2), 3600)
    assert batch.valid.all() and f.fit_stats.rows_fitted == 2
    np.testing.assert_allclose(
        batch.point_kwh, np.tile(_truth(7 * DAY, horizon), (2, 1)), atol=0.03
    )
    # the 10-90 % band of the first slot matches the noise: width = 2 * 1.2816 * sigma
    std_1 = (batch.quantiles_kwh[:, 0, 2] - batch.quantiles_kwh[:, 0, 0]) / (2 * 1.2815516)
    assert ((std_1 > 0.5 * sigma) & (std_1 < 2.5 * sigma)).all(), std_1
    # uncertainty does not shrink with the lead time
    width = batch.quantiles_kwh[..., 2] - batch.quantiles_kwh[..., 0]
    assert (width[:, -1] >= width[:, 0] - 1e-12).all()


@pytest.mark.parametrize("model", sorted(MODELS))
def test_a_failing_fit_makes_only_that_row_invalid(
    model: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    f = MODELS[model](DAY)
    real_fit = f._fit_one

    def fit_or_fail(series: np.ndarray, horizon: int) -> tuple[np.ndarray, np.ndarray]:
        if series[0] > 0.0:
            raise np.linalg.LinAlgError("Schur decomposition solver error.")
        return real_fit(series, horizon)

    monkeypatch.setattr(f, "_fit_one", fit_or_fail)
    rng = np.random.default_rng(0)
    base = _truth(0, 7 * DAY) + 0.05 * rng.standard_normal(7 * DAY)
    rows = np.stack([base, np.roll(base, DAY // 4)])  # first standardised values of either sign
    first_z = (rows[:, 0] - rows.mean(axis=1)) / rows.std(axis=1)
    batch = f.forecast(rows, np.repeat(END, 2), 3600)
    np.testing.assert_array_equal(batch.valid, first_z <= 0.0)
    assert f.fit_stats.failures["LinAlgError"] == int((first_z > 0).sum()) == 1
    assert f.fit_stats.rows_failed == 1


@pytest.mark.parametrize("model", sorted(MODELS))
def test_non_finite_fit_output_is_invalid(model: str, monkeypatch: pytest.MonkeyPatch) -> None:
    f = MODELS[model](4)
    monkeypatch.setattr(f, "_fit_one", lambda s, h: (np.full(h, np.nan), np.ones(h)))
    rng = np.random.default_rng(1)
    batch = f.forecast((_truth(0, 3 * DAY) + rng.normal(0, 0.1, 3 * DAY))[None, :], END, 3600)
    assert not batch.valid[0] and np.isnan(batch.point_kwh).all()
    assert f.fit_stats.failures["NonFiniteForecast"] == 1


def test_statsmodels_warnings_are_counted_not_raised() -> None:
    rng = np.random.default_rng(3)
    series = _truth(0, 7 * DAY) + rng.normal(0, 0.3, 7 * DAY)
    f = SarimaForecaster(DAY, 6, maxiter=1)  # cannot converge in one iteration
    with warnings.catch_warnings(record=True) as leaked:
        warnings.simplefilter("always")
        batch = f.forecast(series[None, :], END, 3600)
    assert leaked == []
    assert batch.valid.all()
    assert f.fit_stats.warnings["ConvergenceWarning"] == 1
    assert f.fit_stats.as_dict()["warnings"] == {"ConvergenceWarning": 1}


def test_leading_nan_rows_fit_on_their_observed_part() -> None:
    rng = np.random.default_rng(4)
    series = _truth(0, 7 * DAY) + rng.normal(0, 0.01, 7 * DAY)
    series[: 4 * DAY] = np.nan  # a meter that joined three days ago
    for f in (EtsForecaster(DAY, DAY), SarimaForecaster(DAY, DAY)):
        batch = f.forecast(series[None, :], END, 3600)
        assert batch.valid[0]
        np.testing.assert_allclose(batch.point_kwh[0], _truth(7 * DAY, DAY), atol=0.05)


@pytest.mark.parametrize(("ar", "ma"), [(0.6, 0.3), (-0.4, 0.0), (0.9, -0.5)])
def test_seasonal_integration_matches_the_full_sarima_state_space(ar: float, ma: float) -> None:
    """Our integration of the differenced forecast equals statsmodels' full SARIMA model."""
    s, horizon = 6, 20
    rng = np.random.default_rng(8)
    y = np.cumsum(rng.normal(size=60)) * 0.1 + np.tile(rng.normal(size=s), 10)
    params = np.array([ar, ma, 0.7])
    with single_threaded_blas():
        diff_model = SARIMAX(
            y, order=(1, 0, 1), seasonal_order=(0, 1, 0, s), simple_differencing=True
        ).filter(params)
        full_model = SARIMAX(y, order=(1, 0, 1), seasonal_order=(0, 1, 0, s)).filter(params)
    fc_d = diff_model.get_forecast(horizon)
    psi = np.asarray(diff_model.impulse_responses(steps=horizon - 1)).reshape(-1)
    mean, var = integrate_seasonal_difference(
        y[-s:], np.asarray(fc_d.predicted_mean), psi, float(np.asarray(fc_d.var_pred_mean)[0])
    )
    fc_y = full_model.get_forecast(horizon)
    np.testing.assert_allclose(mean, np.asarray(fc_y.predicted_mean), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(var, np.asarray(fc_y.var_pred_mean), rtol=1e-5)


def test_horizon_of_one_slot() -> None:
    rng = np.random.default_rng(6)
    series = (_truth(0, 7 * DAY) + rng.normal(0, 0.05, 7 * DAY))[None, :]
    for f in (EtsForecaster(DAY, 1), SarimaForecaster(DAY, 1)):
        batch = f.forecast(series, END, 3600)
        assert batch.point_kwh.shape == (1, 1) and batch.valid[0]


def test_bad_configuration_is_refused() -> None:
    with pytest.raises(ForecasterSpecError, match="two full seasons"):
        EtsForecaster(DAY, 4, min_history_slots=DAY)
    with pytest.raises(ForecasterSpecError, match="fit_window_slots"):
        EtsForecaster(DAY, 4, fit_window_slots=DAY)
    with pytest.raises(ForecasterSpecError, match="small orders"):
        SarimaForecaster(DAY, 4, ar_order=3, ma_order=3)
    with pytest.raises(ForecasterSpecError, match="more than one season"):
        SarimaForecaster(DAY, 4, min_history_slots=DAY)

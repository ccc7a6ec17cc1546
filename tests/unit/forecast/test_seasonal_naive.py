"""SeasonalNaive on series whose answer is known exactly."""

from __future__ import annotations

import numpy as np
import pytest

from streamer.forecast import ForecasterSpecError, SeasonalNaive, seasonal_naive_week
from streamer.forecast.seasonal_naive import row_nanquantiles

DAY = 24
END = np.array([1_700_000_000_000], dtype=np.int64)


def _daily(days: int, constant: float = 3.0) -> np.ndarray:
    """A pure daily sine plus a constant, tiled so every day is bit-identical."""
    one_day = constant + np.sin(2 * np.pi * np.arange(DAY) / DAY)
    return np.tile(one_day, days)


def test_pure_daily_sine_is_forecast_exactly_with_zero_spread() -> None:
    series = _daily(5)
    f = SeasonalNaive(DAY, 2 * DAY + 5)
    batch = f.forecast(series[None, :], END, 3600)
    truth = _daily(8)[5 * DAY : 5 * DAY + 2 * DAY + 5]
    np.testing.assert_array_equal(batch.point_kwh[0], truth)
    for j in range(3):
        np.testing.assert_array_equal(batch.quantiles_kwh[0, :, j], truth)


def test_weekly_pattern_weekly_season_exact_daily_season_not() -> None:
    rng = np.random.default_rng(3)
    week = rng.uniform(0.0, 2.0, 7 * DAY)
    series = np.tile(week, 3)
    weekly = seasonal_naive_week(DAY, 3600).forecast(series[None, :], END, 3600)
    np.testing.assert_array_equal(weekly.point_kwh[0], week[:DAY])
    daily = SeasonalNaive(DAY, DAY).forecast(series[None, :], END, 3600)
    np.testing.assert_array_equal(daily.point_kwh[0], week[-DAY:])
    assert not np.array_equal(daily.point_kwh[0], week[:DAY])


def test_point_is_the_value_one_season_earlier() -> None:
    series = np.arange(10.0)
    batch = SeasonalNaive(4, 6, min_error_samples=1).forecast(series[None, :], END, 3600)
    # history ends at index 9; slot h copies index 9 - 4 + ((h - 1) % 4) + 1 - 1
    np.testing.assert_array_equal(batch.point_kwh[0], [6.0, 7.0, 8.0, 9.0, 6.0, 7.0])


def test_nan_source_uses_previous_season_then_recent_mean() -> None:
    series = np.arange(12.0)  # season 4: last season is 8..11, previous 4..7
    series[8] = np.nan  # source of h=1 and h=5 -> previous season: 4
    series[9] = np.nan
    series[5] = np.nan  # source of h=2 and its previous season are NaN -> recent mean
    f = SeasonalNaive(4, 5, min_error_samples=1)
    batch = f.forecast(series[None, :], END, 3600)
    recent_mean = (10.0 + 11.0) / 2
    np.testing.assert_array_equal(batch.point_kwh[0], [4.0, recent_mean, 10.0, 11.0, 4.0])


def test_whole_last_season_missing_uses_the_row_mean() -> None:
    series = np.arange(12.0)
    series[4:] = np.nan
    f = SeasonalNaive(4, 2, min_history_slots=2, min_error_samples=1)
    batch = f.forecast(series[None, :], END, 3600)
    np.testing.assert_array_equal(batch.point_kwh[0], [1.5, 1.5])


def test_quantiles_are_empirical_errors_at_the_horizon_lag() -> None:
    rng = np.random.default_rng(11)
    series = rng.normal(5.0, 1.0, 40)
    levels = (0.1, 0.5, 0.9)
    f = SeasonalNaive(8, 12, levels, min_error_samples=10)
    batch = f.forecast(series[None, :], END, 3600)
    lag1 = series[8:] - series[:-8]  # errors of one-season-ahead copies (h = 1..8)
    lag2 = series[16:] - series[:-16]  # errors of two-season-ahead copies (h = 9..12)
    point = batch.point_kwh[0]
    np.testing.assert_allclose(
        batch.quantiles_kwh[0, :8] - point[:8, None], np.tile(np.quantile(lag1, levels), (8, 1))
    )
    np.testing.assert_allclose(
        batch.quantiles_kwh[0, 8:] - point[8:, None], np.tile(np.quantile(lag2, levels), (4, 1))
    )


def test_weekly_spread_falls_back_to_daily_errors_with_one_week_of_history() -> None:
    rng = np.random.default_rng(5)
    series = rng.normal(2.0, 0.5, 7 * DAY + 4)  # 4 week-over-week errors: too few
    f = seasonal_naive_week(DAY, 3600)
    batch = f.forecast(series[None, :], END, 3600)
    day_errors = series[DAY:] - series[:-DAY]
    expected = np.quantile(day_errors, f.quantile_levels)
    np.testing.assert_allclose(
        batch.quantiles_kwh[0] - batch.point_kwh[0][:, None], [expected] * DAY
    )


def test_fleet_spread_fallback_scales_with_each_rows_level() -> None:
    rng = np.random.default_rng(9)
    donor = rng.normal(10.0, 1.0, 40)
    f = SeasonalNaive(8, 4, min_error_samples=30)
    short = np.full(40, np.nan)
    short[-8:] = 20.0 + np.arange(8) * 0.0  # level 20, no errors of its own
    batch = f.forecast(np.stack([donor, short]), np.repeat(END, 2), 3600)
    donor_offsets = batch.quantiles_kwh[0] - batch.point_kwh[0][:, None]
    donor_level = np.mean(np.abs(donor[-8:]))
    short_offsets = batch.quantiles_kwh[1] - batch.point_kwh[1][:, None]
    np.testing.assert_allclose(short_offsets, donor_offsets / donor_level * 20.0)
    alone = f.forecast(short[None, :], END, 3600)  # no donor: zero spread
    np.testing.assert_array_equal(
        alone.quantiles_kwh[0], np.repeat(alone.point_kwh[0][:, None], 3, 1)
    )
    assert batch.valid.all() and alone.valid.all()


def test_min_history_counts_finite_values() -> None:
    f = SeasonalNaive(8, 2, min_history_slots=3)
    rows = np.full((2, 16), np.nan)
    rows[0, [1, 7, 15]] = 1.0
    rows[1, [7, 15]] = 1.0
    batch = f.forecast(rows, np.repeat(END, 2), 3600)
    np.testing.assert_array_equal(batch.valid, [True, False])


def test_bad_configuration_is_refused() -> None:
    with pytest.raises(ForecasterSpecError, match="must not exceed"):
        SeasonalNaive(8, 4, min_history_slots=9)
    with pytest.raises(ForecasterSpecError, match="strictly increasing"):
        SeasonalNaive(8, 4, (0.5, 0.1))
    with pytest.raises(ForecasterSpecError, match="positive"):
        SeasonalNaive(0, 4)
    with pytest.raises(ForecasterSpecError, match="min_history_slots must be a positive"):
        SeasonalNaive(8, 4, min_history_slots=0)


def test_row_nanquantiles_matches_numpy() -> None:
    rng = np.random.default_rng(2)
    values = rng.normal(size=(50, 37))
    values[rng.random(values.shape) < 0.3] = np.nan
    values[:, 0] = 1.0  # every row keeps one finite value
    levels = np.array([0.0, 0.05, 0.1, 0.5, 0.9, 0.975, 1.0])
    np.testing.assert_allclose(
        row_nanquantiles(values, levels), np.nanquantile(values, levels, axis=1).T, rtol=1e-12
    )


def test_weekly_model_uses_the_day_before_when_the_week_before_is_missing() -> None:
    """A meter with four days of data: the weekly source is NaN, the daily one is not."""
    from streamer.forecast.seasonal_naive import seasonal_naive_week

    model = seasonal_naive_week(48, 1800)
    day = np.linspace(0.1, 1.0, 48)
    history = np.full((1, 336), np.nan)
    history[0, -4 * 48 :] = np.tile(day, 4)
    batch = model.forecast(history, np.array([1_795_392_000_000]), 1800)
    assert batch.valid[0]
    np.testing.assert_allclose(batch.point_kwh[0], day)

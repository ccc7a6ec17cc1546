"""The one check suite every Forecaster implementation must pass."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamer.forecast import (
    EtsForecaster,
    ForecastBatch,
    Forecaster,
    ForecastInputError,
    SarimaForecaster,
    SeasonalNaive,
    make_forecaster,
)

RESOLUTION_SECONDS = 3600
DAY = 24
HORIZON = 30  # longer than a day: the daily-season models must continue past one season
LENGTH = 15 * DAY  # two weeks and a day: enough week-over-week errors for the weekly naive
END_MS = 1_700_000_000_000 - (1_700_000_000_000 % 3_600_000)


def _registry(spec: str) -> Callable[[], Forecaster]:
    return lambda: make_forecaster(
        spec, horizon_slots=HORIZON, resolution_seconds=RESOLUTION_SECONDS
    )


FACTORIES: dict[str, Callable[[], Forecaster]] = {
    "seasonal_naive_day": _registry("seasonal_naive_day"),
    "seasonal_naive_week": _registry("seasonal_naive_week"),
    "ets": _registry("ets"),
    "sarima": _registry("sarima"),
    "seasonal_naive_5_levels": lambda: SeasonalNaive(
        DAY, HORIZON, (0.05, 0.25, 0.5, 0.75, 0.95), name="sn5"
    ),
    "ets_damped_trend": lambda: EtsForecaster(DAY, HORIZON, trend=True, name="ets_trend"),
    "sarima_ar2": lambda: SarimaForecaster(
        DAY, HORIZON, (0.25, 0.75), ar_order=2, ma_order=0, name="sarima_ar2"
    ),
}


@pytest.fixture(params=sorted(FACTORIES))
def make(request: pytest.FixtureRequest) -> Callable[[], Forecaster]:
    return FACTORIES[request.param]


def _load(rows: int, seed: int = 7, length: int = LENGTH) -> np.ndarray:
    """Daily and weekly pattern, a per-meter level, noise; all finite."""
    rng = np.random.default_rng(seed)
    t = np.arange(length)
    daily = np.sin(2 * np.pi * t / DAY)
    weekend = ((t // DAY) % 7 >= 5).astype(float)
    out = np.empty((rows, length))
    for i in range(rows):
        level = 0.5 + 0.3 * i
        out[i] = level * (2 + daily + 0.5 * weekend) + 0.05 * rng.standard_normal(length)
    return out


def _mixed_batch(f: Forecaster) -> tuple[np.ndarray, dict[str, int]]:
    """Good rows, rows with gaps, and rows with too little history."""
    hist = _load(6)
    hist[1, 50:80] = np.nan  # an interior gap
    hist[2, -3:] = np.nan  # the newest slots are missing
    hist[3, :] = np.nan  # nothing at all
    hist[4, : LENGTH - f.min_history_slots + 1] = np.nan  # one finite value too few
    rows = {"good": 0, "gap": 1, "recent_gap": 2, "empty": 3, "short": 4, "good_2": 5}
    return hist, rows


def _ends(rows: int) -> np.ndarray:
    return np.full(rows, END_MS, dtype=np.int64)


def test_declares_the_protocol(make: Callable[[], Forecaster]) -> None:
    f = make()
    assert isinstance(f, Forecaster)
    assert isinstance(f.name, str) and f.name
    assert f.version == "1"
    assert f.horizon_slots == HORIZON
    assert 0 < f.min_history_slots <= LENGTH
    levels = f.quantile_levels
    assert all(0 < a < b < 1 for a, b in itertools.pairwise(levels))


def test_shapes_and_types(make: Callable[[], Forecaster]) -> None:
    f = make()
    batch = f.forecast(_load(3), _ends(3), RESOLUTION_SECONDS)
    assert isinstance(batch, ForecastBatch)
    q = len(f.quantile_levels)
    assert batch.point_kwh.shape == (3, HORIZON) and batch.point_kwh.dtype == np.float64
    assert batch.quantiles_kwh.shape == (3, HORIZON, q)
    assert batch.quantiles_kwh.dtype == np.float64
    assert batch.quantile_levels == f.quantile_levels
    assert batch.valid.dtype == np.bool_ and batch.valid.all()
    assert np.isfinite(batch.point_kwh).all() and np.isfinite(batch.quantiles_kwh).all()


def test_quantiles_are_monotone_and_bracket_plausibly(make: Callable[[], Forecaster]) -> None:
    f = make()
    batch = f.forecast(_load(3), _ends(3), RESOLUTION_SECONDS)
    assert (np.diff(batch.quantiles_kwh, axis=-1) >= 0).all()
    # the spread is real: the noisy data gives strictly increasing outer quantiles
    assert (batch.quantiles_kwh[..., -1] > batch.quantiles_kwh[..., 0]).all()
    # and the point sits inside the outer quantiles' range widened by one spread
    lo, hi = batch.quantiles_kwh[..., 0], batch.quantiles_kwh[..., -1]
    width = hi - lo
    assert ((batch.point_kwh >= lo - width) & (batch.point_kwh <= hi + width)).all()


def test_nan_rows_are_flagged_not_raised(make: Callable[[], Forecaster]) -> None:
    f = make()
    hist, rows = _mixed_batch(f)
    batch = f.forecast(hist, _ends(hist.shape[0]), RESOLUTION_SECONDS)
    for name in ("good", "gap", "recent_gap", "good_2"):
        i = rows[name]
        assert batch.valid[i], name
        assert np.isfinite(batch.point_kwh[i]).all() and np.isfinite(batch.quantiles_kwh[i]).all()
    for name in ("empty", "short"):
        i = rows[name]
        assert not batch.valid[i], name
        assert np.isnan(batch.point_kwh[i]).all() and np.isnan(batch.quantiles_kwh[i]).all()


def test_exactly_min_history_is_enough(make: Callable[[], Forecaster]) -> None:
    f = make()
    hist = _load(1)
    hist[0, : LENGTH - f.min_history_slots] = np.nan
    assert f.forecast(hist, _ends(1), RESOLUTION_SECONDS).valid.all()


def test_deterministic(make: Callable[[], Forecaster]) -> None:
    hist, _ = _mixed_batch(make())
    first = make().forecast(hist, _ends(6), RESOLUTION_SECONDS)
    again_same = make().forecast(hist, _ends(6), RESOLUTION_SECONDS)
    f = make()
    f.forecast(hist[::-1].copy(), _ends(6), RESOLUTION_SECONDS)  # an unrelated call between
    again_used = f.forecast(hist, _ends(6), RESOLUTION_SECONDS)
    for other in (again_same, again_used):
        np.testing.assert_array_equal(first.point_kwh, other.point_kwh)
        np.testing.assert_array_equal(first.quantiles_kwh, other.quantiles_kwh)
        np.testing.assert_array_equal(first.valid, other.valid)


def test_batch_of_one_equals_row_of_many(make: Callable[[], Forecaster]) -> None:
    f = make()
    hist, _ = _mixed_batch(f)
    many = f.forecast(hist, _ends(6), RESOLUTION_SECONDS)
    for i in range(hist.shape[0]):
        one = f.forecast(hist[i : i + 1].copy(), _ends(1), RESOLUTION_SECONDS)
        np.testing.assert_array_equal(one.valid[0], many.valid[i])
        np.testing.assert_array_equal(one.point_kwh[0], many.point_kwh[i])
        np.testing.assert_array_equal(one.quantiles_kwh[0], many.quantiles_kwh[i])


def test_input_is_not_modified(make: Callable[[], Forecaster]) -> None:
    f = make()
    hist, _ = _mixed_batch(f)
    before = hist.copy()
    f.forecast(hist, _ends(6), RESOLUTION_SECONDS)
    np.testing.assert_array_equal(hist, before)


def test_bad_shapes_raise_input_error(make: Callable[[], Forecaster]) -> None:
    f = make()
    with pytest.raises(ForecastInputError, match="2-D"):
        f.forecast(_load(1)[0], _ends(1), RESOLUTION_SECONDS)
    with pytest.raises(ForecastInputError, match="end_ms"):
        f.forecast(_load(2), _ends(3), RESOLUTION_SECONDS)
    with pytest.raises(ForecastInputError, match="LOOKBACK"):
        f.forecast(_load(2)[:, : f.min_history_slots // 2], _ends(2), RESOLUTION_SECONDS)


def test_empty_batch(make: Callable[[], Forecaster]) -> None:
    f = make()
    batch = f.forecast(np.empty((0, LENGTH)), _ends(0), RESOLUTION_SECONDS)
    assert batch.point_kwh.shape == (0, HORIZON)
    assert batch.quantiles_kwh.shape == (0, HORIZON, len(f.quantile_levels))


def test_a_history_in_watt_hours_scales_the_forecast(make: Callable[[], Forecaster]) -> None:
    f = make()
    hist = _load(2)
    kwh = f.forecast(hist, _ends(2), RESOLUTION_SECONDS)
    wh = f.forecast(hist * 1000.0, _ends(2), RESOLUTION_SECONDS)
    np.testing.assert_allclose(wh.point_kwh, kwh.point_kwh * 1000.0, rtol=1e-3)
    np.testing.assert_allclose(wh.quantiles_kwh, kwh.quantiles_kwh * 1000.0, rtol=1e-3)


@settings(max_examples=60, deadline=None)
@given(
    data=st.data(),
    rows=st.integers(1, 5),
    length=st.integers(7 * DAY, 16 * DAY),
)
def test_seasonal_naive_invariants_on_random_gaps(
    data: st.DataObject, rows: int, length: int
) -> None:
    """Cheap forecasters only: any NaN pattern gives a well-formed batch."""
    hist = _load(rows, length=length)
    nan_share = data.draw(st.floats(0.0, 1.0))
    mask = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1))).random(hist.shape)
    hist[mask < nan_share] = np.nan
    for spec in ("seasonal_naive_day", "seasonal_naive_week"):
        f = make_forecaster(spec, horizon_slots=HORIZON, resolution_seconds=RESOLUTION_SECONDS)
        batch = f.forecast(hist, _ends(rows), RESOLUTION_SECONDS)  # validates itself
        expected = np.isfinite(hist).sum(axis=1) >= f.min_history_slots
        np.testing.assert_array_equal(batch.valid, expected)
        assert (np.diff(batch.quantiles_kwh[batch.valid], axis=-1) >= 0).all()

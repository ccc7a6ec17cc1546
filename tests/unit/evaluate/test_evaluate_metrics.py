"""Metrics against values computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from streamer.evaluate import (
    MetricInputError,
    crps_from_quantiles,
    interval_coverage,
    mae,
    mape,
    mase,
    nrmse,
    pinball,
    rmse,
    smape,
)
from streamer.evaluate.accumulator import HorizonAccumulator
from streamer.evaluate.buckets import horizon_buckets
from streamer.evaluate.metrics import seasonal_naive_scale

NAN = float("nan")
# pairs used: (1, 2), (2, 2), (0, 1), (4, 2); the last pair has no actual
ACTUAL = [1.0, 2.0, 0.0, 4.0, NAN]
FORECAST = [2.0, 2.0, 1.0, 2.0, 5.0]


def test_mae_rmse() -> None:
    assert mae(ACTUAL, FORECAST) == 1.0  # (1 + 0 + 1 + 2) / 4
    assert rmse(ACTUAL, FORECAST) == pytest.approx(math.sqrt(6 / 4))


def test_mape_skips_zero_actuals_and_counts_them() -> None:
    result = mape(ACTUAL, FORECAST)
    assert result.value == pytest.approx(50.0)  # (100 + 0 + 50) / 3
    assert result.n_pairs == 3 and result.skipped_zero == 1
    near_zero = mape([0.001, 2.0], [1.0, 1.0], zero_tolerance=0.01)
    assert near_zero.value == 50.0 and near_zero.skipped_zero == 1
    assert math.isnan(mape([0.0], [1.0]).value)


def test_smape_scale_and_zero_over_zero() -> None:
    # 200*1/3, 0, 200*1/1, 200*2/6
    assert smape(ACTUAL, FORECAST) == pytest.approx((200 / 3 + 0 + 200 + 200 / 3) / 4)
    assert smape([0.0, 0.0], [0.0, 0.0]) == 0.0
    assert smape([0.0], [3.0]) == 200.0


def test_mase_one_series() -> None:
    insample = [1.0, 3.0, 2.0, 5.0, 4.0, 8.0]  # season 2: |2-1|, |5-3|, |4-2|, |8-5| -> mean 2
    assert seasonal_naive_scale(insample, 2) == 2.0
    assert mase([2.0, 4.0], [3.0, 3.0], insample, 2) == 0.5  # MAE 1 / 2


def test_mase_several_series_each_with_its_scale() -> None:
    insample = np.array([[1.0, 3.0, 2.0, 5.0, 4.0, 8.0], [0.0, 0.0, 1.0, 1.0, 2.0, 2.0]])
    actual = np.array([[2.0, 4.0], [3.0, 3.0]])
    forecast = np.array([[3.0, 3.0], [3.0, 1.0]])
    # scaled errors: row 0 scale 2 -> 0.5, 0.5; row 1 scale 1 -> 0, 2
    assert mase(actual, forecast, insample, 2) == pytest.approx(3.0 / 4)


def test_mase_leaves_out_series_with_zero_scale() -> None:
    insample = np.array([[1.0, 2.0, 1.0, 2.0], [1.0, 3.0, 2.0, 5.0]])  # scales 0 and 1.5
    actual = np.array([[1.0], [2.0]])
    forecast = np.array([[9.0], [5.0]])
    assert mase(actual, forecast, insample, 2) == 2.0
    assert math.isnan(mase([1.0], [2.0], [1.0, 1.0, 1.0], 1))
    with pytest.raises(MetricInputError, match="leading shape"):
        mase(actual, forecast, insample[0], 2)


def test_pinball_per_level_and_mean() -> None:
    actual = [10.0, 20.0, NAN]
    quantiles = [[8.0, 10.0, 13.0], [15.0, 18.0, 19.0], [1.0, 2.0, 3.0]]
    result = pinball(actual, quantiles, (0.1, 0.5, 0.9))
    # obs 1: diffs 2, 0, -3 -> 0.2, 0, 0.3; obs 2: diffs 5, 2, 1 -> 0.5, 1.0, 0.9
    assert result.per_level == pytest.approx((0.35, 0.5, 0.6))
    assert result.mean == pytest.approx(1.45 / 3)
    assert result.levels == (0.1, 0.5, 0.9)
    with pytest.raises(MetricInputError, match="one level per quantile"):
        pinball(actual, quantiles, (0.1, 0.9))


def test_pinball_of_the_median_is_half_the_absolute_error() -> None:
    rng = np.random.default_rng(0)
    a, f = rng.normal(size=50), rng.normal(size=50)
    assert pinball(a, f[:, None], (0.5,)).mean == pytest.approx(mae(a, f) / 2)


def test_interval_coverage() -> None:
    actual = [1.0, 5.0, 3.0, NAN, 2.0]
    lower = [0.0, 0.0, 3.0, 0.0, NAN]
    upper = [2.0, 4.0, 4.0, 1.0, 9.0]
    assert interval_coverage(actual, lower, upper) == pytest.approx(2 / 3)  # bounds included


def test_no_pairs_give_nan() -> None:
    assert math.isnan(mae([NAN], [1.0]))
    assert math.isnan(rmse([], []))
    assert math.isnan(interval_coverage([NAN], [0.0], [1.0]))


def test_shapes_must_broadcast() -> None:
    with pytest.raises(MetricInputError, match="broadcast"):
        mae([1.0, 2.0], [1.0, 2.0, 3.0])


def test_accumulator_equals_the_metric_functions() -> None:
    rng = np.random.default_rng(4)
    levels = (0.1, 0.5, 0.9)
    acc = HorizonAccumulator(6, levels)
    scale = np.array([1.0, 2.0, 0.0, 0.5])
    actuals, points, quants = [], [], []
    for _ in range(3):
        actual = rng.normal(1.0, 1.0, (4, 6))
        actual[rng.random(actual.shape) < 0.1] = np.nan
        actual[0, 0] = 0.0
        point = actual + rng.normal(0, 0.3, actual.shape)
        point[3] = np.nan  # an invalid row
        quant = np.sort(point[..., None] + rng.normal(0, 0.3, (4, 6, 3)), axis=-1)
        acc.update(actual, point, quant, scale)
        actuals.append(actual)
        points.append(point)
        quants.append(quant)
    a, p, q = np.stack(actuals), np.stack(points), np.stack(quants)
    for first, last in ((1, 6), (2, 4)):
        sl = slice(first - 1, last)
        got = acc.summary(first, last)
        assert got.mae_kwh == pytest.approx(mae(a[..., sl], p[..., sl]))
        assert got.rmse_kwh == pytest.approx(rmse(a[..., sl], p[..., sl]))
        m = mape(a[..., sl], p[..., sl])
        assert got.mape_percent == pytest.approx(m.value)
        assert got.mape_skipped_zero == m.skipped_zero
        assert got.smape_percent == pytest.approx(smape(a[..., sl], p[..., sl]))
        pin = pinball(a[..., sl], q[..., sl, :], levels)
        assert got.pinball_per_level_kwh == pytest.approx(pin.per_level)
        assert got.nrmse == pytest.approx(nrmse(a[..., sl], p[..., sl]))
        assert got.crps_kwh == pytest.approx(crps_from_quantiles(a[..., sl], q[..., sl, :], levels))
        cov = interval_coverage(a[..., sl], q[..., sl, 0], q[..., sl, 2])
        assert got.coverage == pytest.approx(cov)
        ok_scale = scale > 0
        scaled = np.abs(a - p)[:, ok_scale, sl] / scale[ok_scale][None, :, None]
        assert got.mase == pytest.approx(np.nanmean(scaled))
        assert got.nominal_coverage == pytest.approx(0.8)
    assert acc.summary(1, 6).mape_skipped_zero == 3


def test_horizon_buckets() -> None:
    assert [b.label for b in horizon_buckets(48)] == ["1-4", "5-12", "13-24", "25-48"]
    assert [b.label for b in horizon_buckets(96)][-1] == "49-96"
    assert [b.label for b in horizon_buckets(200)][-2:] == ["97-192", "193-200"]
    assert [b.label for b in horizon_buckets(5)] == ["1-4", "5"]
    assert [b.label for b in horizon_buckets(3)] == ["1-3"]


def test_docstring_examples_run() -> None:
    import doctest

    import streamer.evaluate.buckets as buckets_module

    assert doctest.testmod(buckets_module).attempted == 1
    assert doctest.testmod(buckets_module).failed == 0


def test_nrmse_and_crps_by_hand() -> None:
    # errors 1, 0 (the NaN pair is skipped): RMSE sqrt(1/2), mean actual (1 + 3) / 2 = 2
    assert nrmse([1.0, 3.0, NAN], [2.0, 3.0, 5.0]) == pytest.approx(math.sqrt(0.5) / 2)
    assert math.isnan(nrmse([0.0, 0.0], [1.0, 1.0]))  # mean actual 0
    # actual 1, quantiles (0, 1, 3) at (0.1, 0.5, 0.9): pinball 0.1 * 1, 0, 0.1 * 2 -> mean 0.1
    levels = (0.1, 0.5, 0.9)
    assert crps_from_quantiles([1.0], [[0.0, 1.0, 3.0]], levels) == pytest.approx(0.2)
    # one level 0.5: CRPS equals the MAE
    assert crps_from_quantiles([1.0, 4.0], [[2.0], [2.0]], (0.5,)) == pytest.approx(1.5)


def test_accumulator_pooled_and_per_meter_means_differ() -> None:
    """Meter A: two perfect pairs; meter B: one pair off by 2. Pooled metrics weigh pairs,
    the per-meter mean weighs meters."""
    levels = (0.1, 0.5, 0.9)
    acc = HorizonAccumulator(2, levels, meters=2)
    actual = np.array([[1.0, 1.0], [2.0, NAN]])
    point = np.array([[1.0, 1.0], [4.0, 0.0]])
    quantiles = np.stack([point - 0.5, point, point + 0.5], axis=-1)
    acc.update(actual, point, quantiles, np.array([1.0, 2.0]))
    got = acc.summary(1, 2)
    assert got.n_pairs == 3 and got.meters_scored == 2
    assert got.mae_kwh == pytest.approx(2 / 3)
    assert got.mae_kwh_per_meter == pytest.approx((0 + 2) / 2)
    # pooled: RMSE sqrt(4 / 3) over mean actual 4 / 3; per meter: A 0 / 1, B 2 / 2
    assert got.nrmse == pytest.approx(math.sqrt(4 / 3) / (4 / 3))
    assert got.nrmse_per_meter == pytest.approx((0 + 1) / 2)
    # scaled errors 0, 0 (scale 1) and 2 / 2 = 1 (scale 2)
    assert got.mase == pytest.approx(1 / 3)
    assert got.mase_per_meter == pytest.approx(0.5)
    assert got.coverage == pytest.approx(2 / 3)
    assert got.coverage_per_meter == pytest.approx(0.5)
    # pinball at (0.1, 0.5, 0.9): each A pair 0.05, 0, 0.05 (band +-0.5 around the actual);
    # B (actual 2 vs 3.5, 4, 4.5) 0.9 * 1.5, 0.5 * 2, 0.1 * 2.5. CRPS: twice their mean.
    assert got.pinball_per_level_kwh == pytest.approx((1.45 / 3, 1 / 3, 0.35 / 3))
    assert got.crps_kwh == pytest.approx(2 * (1.45 + 1 + 0.35) / 9)
    # without meters the per-meter means are not kept
    plain = HorizonAccumulator(2, levels).update(actual, point, quantiles, np.ones(2)).summary(1, 2)
    assert plain.meters_scored == 0 and math.isnan(plain.mae_kwh_per_meter)

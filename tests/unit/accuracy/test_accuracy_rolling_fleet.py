"""RollingAccuracy (per meter) and FleetAccuracy (per worker): exact values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamer.accuracy import (
    AccuracyConfigError,
    AccuracyInputError,
    AccuracyStateDecodeError,
    FleetAccuracy,
    HorizonAccuracy,
    Match,
    RollingAccuracy,
)
from streamer.accuracy.rolling_accuracy import ENCODED_SIZE, smape_term
from streamer.evaluate.metrics import interval_coverage, mae, pinball, smape, smape_terms

# ----------------------------------------------------------------------------- rolling


def test_rolling_exact_values() -> None:
    acc = RollingAccuracy(half_life=1.0)  # each older pair weighs half
    assert math.isnan(acc.get().mae_kwh) and acc.get().n == 0
    acc.update(1.0, 0.0)  # |e| = 1, sMAPE 200
    assert acc.get().mae_kwh == 1.0
    assert acc.get().smape_pct == 200.0
    acc.update(2.0, 2.0)  # |e| = 0, sMAPE 0
    assert acc.get().mae_kwh == pytest.approx(0.5 / 1.5, rel=1e-15)
    assert acc.get().smape_pct == pytest.approx(100.0 / 1.5, rel=1e-15)
    acc.update(0.0, 0.0)  # both zero: a perfect forecast
    assert acc.get().mae_kwh == pytest.approx(0.25 / 1.75, rel=1e-15)
    assert acc.get().smape_pct == pytest.approx(50.0 / 1.75, rel=1e-15)
    assert acc.get().n == 3


def test_rolling_long_half_life_is_the_plain_mean() -> None:
    acc = RollingAccuracy(half_life=1e12)
    actual, forecast = [1.0, 2.0, 4.0, 0.5], [1.5, 2.0, 3.0, 0.0]
    for a, f in zip(actual, forecast, strict=True):
        acc.update(a, f)
    assert acc.get().mae_kwh == pytest.approx(mae(actual, forecast), rel=1e-9)
    assert acc.get().smape_pct == pytest.approx(smape(actual, forecast), rel=1e-9)


def test_rolling_forgets_with_the_half_life() -> None:
    acc = RollingAccuracy(half_life=10.0)
    for _ in range(200):
        acc.update(1.0, 2.0)  # |e| = 1
    for _ in range(10):
        acc.update(1.0, 1.0)  # |e| = 0
    # After one half-life the old pairs weigh about half.
    assert acc.get().mae_kwh == pytest.approx(0.5, abs=1e-3)


def test_rolling_skips_non_finite_pairs() -> None:
    acc = RollingAccuracy()
    acc.update(1.0, 0.5).update(math.nan, 1.0).update(1.0, math.inf)
    assert acc.get().n == 1


def test_rolling_bytes() -> None:
    acc = RollingAccuracy(half_life=48.0)
    for k in range(30):
        acc.update(k * 0.1, k * 0.12)
    data = acc.to_bytes()
    assert len(data) == ENCODED_SIZE == 44
    restored = acc.restore(data)
    assert restored.get() == acc.get()
    restored.update(1.0, 2.0)
    acc.update(1.0, 2.0)
    assert restored.to_bytes() == acc.to_bytes()
    with pytest.raises(AccuracyStateDecodeError, match="other parameters"):
        RollingAccuracy.from_bytes(data, half_life=96.0)
    broken = bytearray(data)
    broken[12] ^= 2
    with pytest.raises(AccuracyStateDecodeError, match="CRC"):
        RollingAccuracy.from_bytes(bytes(broken), half_life=48.0)


def test_rolling_reset_and_clone() -> None:
    acc = RollingAccuracy(half_life=5.0).update(1.0, 3.0)
    assert acc.clone().to_bytes() == RollingAccuracy(half_life=5.0).to_bytes()
    acc.reset()
    assert acc.to_bytes() == RollingAccuracy(half_life=5.0).to_bytes()


@pytest.mark.parametrize("half_life", [0.0, -1.0, math.inf, math.nan])
def test_rolling_rejects_bad_half_life(half_life: float) -> None:
    with pytest.raises(AccuracyConfigError, match="half_life"):
        RollingAccuracy(half_life)


@settings(max_examples=200, deadline=None)
@given(st.floats(-1e3, 1e3), st.floats(-1e3, 1e3))
def test_smape_term_agrees_with_evaluate(actual: float, forecast: float) -> None:
    assert smape_term(actual, forecast) == pytest.approx(
        float(smape_terms([actual], [forecast])[0]), rel=1e-12, abs=1e-12
    )


# ----------------------------------------------------------------------------- fleet


def test_fleet_exact_values() -> None:
    fleet = FleetAccuracy()
    fleet.update(Match(1, 2.0, 1.0, 2.0, 3.0, 3.0))
    fleet.update(Match(1, 1.0, 0.5, 1.0, 1.5, 0.0))
    fleet.update(Match(48, 4.0, 2.0, 4.0, 6.0, 5.0))
    # h=1: |e| 1 and 1; sMAPE 40 and 200; pinball: a=3 -> 0.2 + 0.5 + 0 = 0.7,
    # a=0 -> 0.45 + 0.5 + 0.15 = 1.1, mean (0.7 + 1.1) / 6; covered 1 of 2; bias (-1 + 1) / 2.
    h1, h48 = fleet.get()
    assert h1 == HorizonAccuracy(
        horizon_slots=1,
        count=2,
        mae_kwh=1.0,
        smape_pct=120.0,
        pinball_kwh=pytest.approx(1.8 / 6),  # type: ignore[arg-type]
        coverage=0.5,
        bias_kwh=0.0,
    )
    assert (h48.count, h48.mae_kwh, h48.coverage, h48.bias_kwh) == (1, 1.0, 1.0, -1.0)
    assert h48.smape_pct == pytest.approx(200.0 / 9.0)
    assert h48.pinball_kwh == pytest.approx((0.3 + 0.5 + 0.1) / 3)
    assert fleet.count == 3


def test_fleet_agrees_with_evaluate_metrics() -> None:
    rng = np.random.default_rng(0)
    actual = rng.gamma(2.0, 0.5, 500)
    p50 = actual * rng.uniform(0.7, 1.3, 500)
    p10, p90 = p50 * 0.6, p50 * 1.4
    point = p50 + 0.01
    fleet = FleetAccuracy()
    for row in zip(actual, point, p10, p50, p90, strict=True):
        a, f, q10, q50, q90 = (float(v) for v in row)
        fleet.update(Match(4, f, q10, q50, q90, a))
    (h4,) = fleet.get()
    assert h4.mae_kwh == pytest.approx(mae(actual, point), rel=1e-12)
    assert h4.smape_pct == pytest.approx(smape(actual, point), rel=1e-12)
    expected = pinball(actual, np.stack([p10, p50, p90], axis=1), (0.1, 0.5, 0.9)).mean
    assert h4.pinball_kwh == pytest.approx(expected, rel=1e-12)
    assert h4.coverage == pytest.approx(interval_coverage(actual, p10, p90), rel=1e-12)
    assert h4.bias_kwh == pytest.approx(float(np.mean(point - actual)), rel=1e-9)
    # The vectorised path gives the same sums.
    arrays = FleetAccuracy().update_arrays(4, actual, point, p10, p50, p90).get()[0]
    for name in ("mae_kwh", "smape_pct", "pinball_kwh", "coverage", "bias_kwh"):
        assert getattr(arrays, name) == pytest.approx(getattr(h4, name), rel=1e-9)
    assert arrays.count == 500


def test_fleet_merge_equals_one_accumulator() -> None:
    matches = [
        Match(h, 1.0 + k, 0.5 + k, 1.0 + k, 1.5 + k, 2.0 * k) for k in range(10) for h in (1, 48)
    ]
    whole = FleetAccuracy().update_many(matches)
    left = FleetAccuracy().update_many(matches[:7])
    right = FleetAccuracy().update_many(matches[7:])
    merged = left.merge(right).get()
    assert [m.count for m in merged] == [w.count for w in whole.get()] == [10, 10]
    for m, w in zip(merged, whole.get(), strict=True):
        for name in ("mae_kwh", "smape_pct", "pinball_kwh", "coverage", "bias_kwh"):
            assert getattr(m, name) == pytest.approx(getattr(w, name), rel=1e-12)


def test_fleet_skips_non_finite_and_resets() -> None:
    fleet = FleetAccuracy().update(Match(1, math.nan, 0.0, 0.0, 0.0, 1.0))
    assert fleet.get() == ()
    fleet.update_arrays(1, [1.0, math.nan], [1.0, 1.0], [0.0, 0.0], [1.0, 1.0], [2.0, 2.0])
    assert fleet.count == 1
    fleet.reset()
    assert fleet.count == 0
    assert fleet.metrics() == {}


def test_fleet_metrics_are_flat() -> None:
    fleet = FleetAccuracy().update(Match(12, 2.0, 1.0, 2.0, 3.0, 3.0))
    assert fleet.metrics() == {
        "count.h12": 1.0,
        "mae_kwh.h12": 1.0,
        "smape_pct.h12": 40.0,
        "pinball_kwh.h12": pytest.approx(0.7 / 3),
        "coverage.h12": 1.0,
        "bias_kwh.h12": -1.0,
    }


def test_fleet_rejects_bad_input() -> None:
    with pytest.raises(AccuracyInputError, match="horizon_slots"):
        FleetAccuracy().update(Match(0, 1.0, 1.0, 1.0, 1.0, 1.0))
    with pytest.raises(AccuracyInputError, match="1-D"):
        FleetAccuracy().update_arrays(1, [1.0], [1.0, 2.0], [1.0], [1.0], [1.0])

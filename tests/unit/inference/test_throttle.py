"""The test-only inference throttle: slower by the delay, otherwise the wrapped forecaster."""

from __future__ import annotations

import time

import numpy as np

from streamer.forecast.protocol import Forecaster
from streamer.forecast.seasonal_naive import SeasonalNaive
from streamer.inference.throttle import ThrottledForecaster, throttled


def make() -> SeasonalNaive:
    return SeasonalNaive(season_slots=48, horizon_slots=4)


def test_zero_delay_returns_the_forecaster_itself() -> None:
    forecaster = make()
    assert throttled(forecaster, 0.0) is forecaster


def test_delay_is_added_to_each_call_and_results_are_unchanged() -> None:
    inner = make()
    slow = throttled(inner, 50.0)
    assert isinstance(slow, ThrottledForecaster)
    assert isinstance(slow, Forecaster)
    history = np.tile(np.arange(48, dtype=np.float64), (3, 3))
    end_ms = np.full(3, 1_795_430_000_000, dtype=np.int64)
    started = time.perf_counter()
    got = slow.forecast(history, end_ms, 1800)
    assert time.perf_counter() - started >= 0.05
    want = inner.forecast(history, end_ms, 1800)
    np.testing.assert_array_equal(got.point_kwh, want.point_kwh)


def test_attributes_are_the_wrapped_forecasters() -> None:
    inner = make()
    slow = throttled(inner, 1.0)
    assert (slow.name, slow.version, slow.horizon_slots) == (
        inner.name,
        inner.version,
        inner.horizon_slots,
    )
    slow.input_observer = print  # type: ignore[attr-defined]  # set on the wrapped one
    assert inner.input_observer is print  # type: ignore[attr-defined]
    assert "ms per call" in repr(slow)

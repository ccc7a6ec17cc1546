"""Windows read and imputed together equal ``MeterState.get()`` of each meter."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamer.pipeline.window_batch import read_windows, stack_stored
from streamer.state.config import WindowConfig
from streamer.state.errors import EmptyStateError
from streamer.state.meter_state import MeterState

RES_MS = 1_800_000
T0 = 1_795_392_000_000


def config(lookback: int = 336, per_day_seconds: int = 1800) -> WindowConfig:
    return WindowConfig(
        resolution_seconds=per_day_seconds,
        lookback_slots=lookback,
        allowed_lateness_slots=min(48, lookback),
        interpolate_max_gap_slots=4,
    )


def random_state(rng: np.random.Generator, cfg: WindowConfig) -> MeterState:
    """A meter with gaps, late fills, corrections and maybe a register stretch."""
    state = MeterState.new(cfg)
    res_ms = cfg.resolution_seconds * 1000
    slots = int(rng.integers(1, 2 * cfg.lookback_slots))
    start = int(rng.integers(0, 1000))
    missing = rng.random(slots) < rng.choice([0.0, 0.05, 0.3, 0.9])
    for k in range(slots):
        if missing[k] and k != slots - 1:
            continue
        ts = T0 + (start + k) * res_ms
        state.update(ts, float(np.float32(rng.gamma(2.0, 0.2))), ts)
        if rng.random() < 0.03 and k > 2:  # a late fill or a correction a few slots back
            back = ts - int(rng.integers(1, 3)) * res_ms
            state.update(back, float(np.float32(rng.gamma(2.0, 0.2))), ts)
    if rng.random() < 0.2:  # a register meter for a while: spread slots
        head_end = state.head_end_ms
        assert head_end is not None
        register = 100.0
        for k in range(1, 20, 3):
            register += float(rng.gamma(2.0, 0.5))
            state.update_register(head_end + k * res_ms, register, head_end)
    return state


def assert_equal_to_get(states: list[MeterState]) -> None:
    got = read_windows(states)
    for i, state in enumerate(states):
        view = state.get()
        assert got.values_kwh[i].tobytes() == view.values_kwh.tobytes()
        np.testing.assert_array_equal(got.flags[i], view.flags)
        assert int(got.end_ms[i]) == view.end_ms
        assert float(got.observed_fraction[i]) == view.observed_fraction


@pytest.mark.parametrize("seed", range(6))
def test_read_windows_equal_each_meters_get(seed: int) -> None:
    rng = np.random.default_rng(seed)
    cfg = config()
    states = [random_state(rng, cfg) for _ in range(40)]
    assert_equal_to_get(states)
    # and after a round trip through the bytes, as the worker holds decoded records
    assert_equal_to_get([MeterState.from_bytes(s.to_bytes(), cfg) for s in states])


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from([(20, 1800), (100, 3600), (400, 1800)]))
def test_read_windows_equal_get_for_other_window_shapes(seed: int, shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(seed)
    cfg = config(*shape)
    assert_equal_to_get([random_state(rng, cfg) for _ in range(int(rng.integers(1, 8)))])


def test_observed_fraction_and_subsets() -> None:
    cfg = config(lookback=10)
    states = []
    for observed in (10, 4, 1):
        state = MeterState.new(cfg)
        for k in range(10 - observed, 10):
            state.update(T0 + k * RES_MS, 0.5, 0)
        states.append(state)
    stored = stack_stored(states)
    assert stored.observed_fraction.tolist() == [1.0, 0.4, 0.1]
    assert stored.take(np.array([2, 0])).end_ms.tolist() == [T0 + 9 * RES_MS] * 2


def test_a_state_without_readings_has_no_window() -> None:
    with pytest.raises(EmptyStateError):
        stack_stored([MeterState.new(config())])
    with pytest.raises(ValueError, match="at least one"):
        stack_stored([])

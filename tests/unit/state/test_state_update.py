"""MeterState.update / get / flatline on exact cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamer.state import (
    EmptyStateError,
    InvalidReadingError,
    MeterState,
    Outcome,
    SlotFlag,
    WindowConfig,
)
from streamer.state.codec import decode_state

DAY_MS = 86_400_000
T0_MS = 1_709_251_200_000  # 2024-03-01T00:00:00Z, a slot boundary for every resolution


def config(resolution_seconds: int = 1800, lookback: int = 8, lateness: int = 4) -> WindowConfig:
    return WindowConfig(
        resolution_seconds=resolution_seconds,
        lookback_slots=lookback,
        allowed_lateness_slots=lateness,
        interpolate_max_gap_slots=2,
        flatline_slots=3,
    )


def end(k: int, resolution_seconds: int = 1800) -> int:
    """End time of the k-th slot after T0."""
    return T0_MS + k * resolution_seconds * 1000


def stored(state: MeterState) -> tuple[list[float], list[int]]:
    """Raw stored values/flags, read back through bytes (no imputation)."""
    fields = decode_state(state.to_bytes(), state.config)
    return fields.values_kwh.tolist(), fields.flags.tolist()


@pytest.mark.parametrize("resolution_seconds", [900, 1800])
def test_first_reading_sets_head(resolution_seconds: int) -> None:
    state = MeterState.new(config(resolution_seconds))
    assert (state.head_slot, state.head_end_ms) == (None, None)
    # 10 minutes into slot 3 -> belongs to the slot ending at end(3)
    ts = end(2, resolution_seconds) + 600_000
    assert state.update(ts, 1.5, arrival_ms=ts + 5) == Outcome.APPLIED
    assert state.head_end_ms == end(3, resolution_seconds)
    assert state.head_slot == end(3, resolution_seconds) // (resolution_seconds * 1000)
    assert state.last_arrival_ms == ts + 5
    view = state.get()
    assert view.end_ms == end(3, resolution_seconds)
    assert view.values_kwh.shape == (8,)
    assert view.values_kwh[-1] == 1.5
    assert view.flags[-1] == SlotFlag.OBSERVED
    assert np.isnan(view.values_kwh[:-1]).all()
    assert view.observed_fraction == 1 / 8


def test_reading_on_slot_end_belongs_to_that_slot() -> None:
    state = MeterState.new(config(900))
    state.update(end(4, 900), 1.0, 0)
    state.update(end(4, 900) + 1, 2.0, 0)
    assert state.head_end_ms == end(5, 900)
    assert stored(state)[0][-2:] == [1.0, 2.0]


def test_advancing_head_shifts_and_marks_skipped_slots_missing() -> None:
    state = MeterState.new(config())
    state.update(end(0), 1.0, 0)
    state.update(end(1), 2.0, 0)
    assert state.update(end(4), 5.0, 0) == Outcome.APPLIED
    values, flags = stored(state)
    assert flags == [0, 0, 0, 1, 1, 0, 0, 1]
    assert values[3:5] == [1.0, 2.0]
    assert values[-1] == 5.0
    assert all(math.isnan(v) for v in values[:3] + values[5:7])


def test_jump_beyond_lookback_clears_window() -> None:
    state = MeterState.new(config())
    for k in range(8):
        state.update(end(k), float(k), 0)
    state.update(end(100), 9.0, 0)
    values, flags = stored(state)
    assert flags == [0] * 7 + [1]
    assert values[-1] == 9.0


def test_late_reading_fills_missing_slot_within_lateness() -> None:
    state = MeterState.new(config(lateness=4))
    state.update(end(10), 1.0, 100)
    # head is slot 10; lateness 4 accepts slots 7..10
    assert state.update(end(7), 0.5, 200) == Outcome.APPLIED
    assert state.last_arrival_ms == 200
    assert stored(state)[1] == [0, 0, 0, 0, 1, 0, 0, 1]


def test_too_late_leaves_state_unchanged() -> None:
    state = MeterState.new(config(lateness=4))
    state.update(end(10), 1.0, 100)
    before = state.to_bytes()
    assert state.update(end(6), 0.5, 200) == Outcome.TOO_LATE
    assert state.update(end(-50), 0.5, 200) == Outcome.TOO_LATE
    assert state.to_bytes() == before
    assert state.last_arrival_ms == 100


def test_lateness_equal_to_lookback_accepts_the_oldest_slot_only() -> None:
    state = MeterState.new(config(lookback=8, lateness=8))
    state.update(end(10), 1.0, 0)
    assert state.update(end(3), 0.5, 0) == Outcome.APPLIED
    assert state.update(end(2), 0.5, 0) == Outcome.TOO_LATE
    assert stored(state)[1][0] == SlotFlag.OBSERVED


def test_duplicate_same_float32_value_is_unchanged() -> None:
    state = MeterState.new(config())
    state.update(end(5), 0.1, 100)
    before = state.to_bytes()
    assert state.update(end(5), 0.1, 900) == Outcome.DUPLICATE
    # equal after float32 rounding counts as the same value
    assert state.update(end(5) - 1, float(np.float32(0.1)), 900) == Outcome.DUPLICATE
    assert state.to_bytes() == before
    assert state.last_arrival_ms == 100


def test_different_value_corrects_and_later_arrival_wins() -> None:
    state = MeterState.new(config())
    state.update(end(5), 1.0, 100)
    state.update(end(6), 2.0, 110)
    assert state.update(end(5), 1.25, 120) == Outcome.CORRECTED
    assert state.last_arrival_ms == 120
    values, flags = stored(state)
    assert values[-2:] == [1.25, 2.0]
    assert flags[-2:] == [SlotFlag.CORRECTED, SlotFlag.OBSERVED]
    # the same corrected value again is a duplicate; the original value again corrects back
    assert state.update(end(5), 1.25, 130) == Outcome.DUPLICATE
    assert state.update(end(5), 1.0, 140) == Outcome.CORRECTED
    assert stored(state)[0][-2] == 1.0
    # correcting the head slot itself
    assert state.update(end(6), 3.0, 150) == Outcome.CORRECTED
    assert state.get().flags[-1] == SlotFlag.CORRECTED


def test_negative_zero_is_stored_as_zero() -> None:
    a = MeterState.new(config())
    b = MeterState.new(config())
    a.update(end(1), -0.0, 0)
    b.update(end(1), 0.0, 0)
    assert a.to_bytes() == b.to_bytes()
    assert a.update(end(1), 0.0, 0) == Outcome.DUPLICATE


def test_last_arrival_is_the_largest_accepted_arrival() -> None:
    state = MeterState.new(config())
    state.update(end(5), 1.0, 500)
    state.update(end(4), 1.0, 300)  # late reading with an older arrival stamp
    assert state.last_arrival_ms == 500


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, 1e39])
def test_non_finite_value_is_rejected(bad: float) -> None:
    state = MeterState.new(config())
    with pytest.raises(InvalidReadingError, match="validate readings"):
        state.update(end(1), bad, 0)
    assert state.head_slot is None


def test_get_on_empty_state_explains() -> None:
    with pytest.raises(EmptyStateError, match="head_slot"):
        MeterState.new(config()).get()


def test_get_imputes_and_is_read_only() -> None:
    state = MeterState.new(config(lookback=8, lateness=8))
    for k, v in [(1, 1.0), (4, 4.0), (5, 5.0), (8, 8.0)]:
        state.update(end(k), v, 0)
    view = state.get()
    # window slots 1..8; gaps 2..3 (len 2, interpolated), 6..7 (len 2, interpolated)
    assert view.values_kwh.tolist() == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]
    assert view.flags.tolist() == [1, 4, 4, 1, 1, 4, 4, 1]
    assert view.observed_fraction == 0.5
    with pytest.raises(ValueError, match="read-only"):
        view.values_kwh[0] = 0.0
    # the state itself is unchanged by get()
    assert stored(state)[1] == [1, 0, 0, 1, 1, 0, 0, 1]


def test_get_uses_day_earlier_at_15_minutes() -> None:
    cfg = WindowConfig(900, lookback_slots=200, allowed_lateness_slots=200)
    state = MeterState.new(cfg)
    for k in range(96):  # one full day
        state.update(end(k, 900), float(k % 96), 0)
    state.update(end(96 + 10, 900), 99.0, 0)  # slots 96..105 missing (10 > 4)
    view = state.get()
    tail = view.values_kwh[-11:-1].tolist()
    assert tail == [float((96 + j) % 96) for j in range(10)]
    assert (view.flags[-11:-1] == SlotFlag.IMPUTED_DAY).all()


def test_flatline_run() -> None:
    state = MeterState.new(config(lookback=8, lateness=8))
    assert state.flatline_run_slots() == 0
    for k, v in [(1, 2.0), (2, 0.5), (3, 0.5), (4, 0.5)]:
        state.update(end(k), v, 0)
    assert state.flatline_run_slots() == 3
    assert [state.flatlined] == [True]  # flatline_slots=3
    state.update(end(5), 0.7, 0)
    assert state.flatline_run_slots() == 1
    assert [state.flatlined] == [False]
    state.update(end(7), 0.7, 0)  # slot 6 missing breaks the run
    assert state.flatline_run_slots() == 1
    state.update(end(6), 0.7, 0)  # late fill joins it up
    assert state.flatline_run_slots() == 3
    state.update(end(6), 0.9, 0)  # a correction is still an observation, but different
    assert state.flatline_run_slots() == 1


def test_flatline_run_counts_whole_window() -> None:
    state = MeterState.new(config(lookback=8, lateness=8))
    for k in range(20):
        state.update(end(k), 0.0, 0)
    assert state.flatline_run_slots() == 8


def test_repr_names_head() -> None:
    state = MeterState.new(config())
    state.update(end(3), 1.0, 7)
    assert "observed=1/8" in repr(state)
    assert "last_arrival_ms=7" in repr(state)


@given(
    steps=st.lists(
        st.tuples(st.integers(0, 12), st.sampled_from([0.0, 0.5, 0.5, 0.5, 1.5])),
        min_size=0,
        max_size=30,
    ),
    cap=st.integers(1, 10),
)
def test_capped_flatline_run_is_the_run_capped(steps: list[tuple[int, float]], cap: int) -> None:
    """The tail shortcut gives min(run, cap) whatever the gaps, corrections and cap."""
    state = MeterState.new(config(lookback=8, lateness=8))
    for k, value in steps:
        state.update(end(k), value, 0)
        assert state.flatline_run_slots(cap=cap) == min(state.flatline_run_slots(), cap)


@given(
    st.one_of(
        st.floats(
            min_value=-float(np.finfo(np.float32).max),
            max_value=float(np.finfo(np.float32).max),
            allow_nan=False,
        ),
        # float32 subnormals, halfway cases and values at the ends of the range
        st.sampled_from(
            [
                0.0,
                -0.0,
                1e-45,
                -1e-45,
                1.5e-45,
                1.401298464324817e-45,
                0.1,
                1.0 + 2.0**-24,
                1.0 + 3 * 2.0**-24,
                float(np.finfo(np.float32).max),
            ]
        ),
    )
)
def test_values_are_rounded_to_float32_as_numpy_rounds_them(kwh: float) -> None:
    from streamer.state.meter_state import _as_float32

    expected = float(np.float32(kwh)) + 0.0
    got = _as_float32(kwh)
    assert math.copysign(1.0, got) == math.copysign(1.0, expected)
    assert got == expected


def test_the_next_slot_and_a_jump_shift_the_window() -> None:
    """The usual reading (the slot after the head: a shift by one) and a jump of two slots
    (the general path, the skipped slot MISSING)."""
    one, jump = MeterState.new(config()), MeterState.new(config())
    for state in (one, jump):
        for i in range(6):
            state.update(T0_MS + i * 1_800_000, 0.5 + i, T0_MS)
    assert one.update(T0_MS + 6 * 1_800_000, 9.0, T0_MS + 1) is Outcome.APPLIED
    assert jump.update(T0_MS + 7 * 1_800_000, 9.0, T0_MS + 1) is Outcome.APPLIED
    observed, missing = int(SlotFlag.OBSERVED), int(SlotFlag.MISSING)
    values, flags = one.stored_window()
    assert values.tolist()[1:] == [0.5, 1.5, 2.5, 3.5, 4.5, 5.5, 9.0]
    assert math.isnan(values[0])
    assert flags.tolist() == [missing] + [observed] * 7
    values, flags = jump.stored_window()
    assert values.tolist()[:6] == [0.5, 1.5, 2.5, 3.5, 4.5, 5.5]
    assert math.isnan(values[6]) and values[7] == 9.0
    assert flags.tolist() == [observed] * 6 + [missing, observed]
    assert one.last_arrival_ms == jump.last_arrival_ms == T0_MS + 1

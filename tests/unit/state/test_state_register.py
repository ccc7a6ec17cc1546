"""Cumulative register readings: deltas, spreads, resets, rollovers, order."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamer.state import MeterState, Outcome, RegisterEvent, SlotFlag, WindowConfig
from streamer.state.codec import decode_state
from streamer.state.register import register_digits, register_step

T0_MS = 1_709_251_200_000
R_MS = 1_800_000


def config(lookback: int = 8, max_per_slot: float = 10.0) -> WindowConfig:
    return WindowConfig(
        resolution_seconds=1800,
        lookback_slots=lookback,
        allowed_lateness_slots=4,
        register_max_kwh_per_slot=max_per_slot,
    )


def end(k: int) -> int:
    return T0_MS + k * R_MS


def stored(state: MeterState) -> tuple[list[float], list[int]]:
    fields = decode_state(state.to_bytes(), state.config)
    return fields.values_kwh.tolist(), fields.flags.tolist()


def test_first_reading_is_a_baseline_only() -> None:
    state = MeterState.new(config())
    assert state.update_register(end(3), 1234.5, 10) == (Outcome.APPLIED, None)
    assert state.register_baseline == (1234.5, state.head_slot)
    assert state.head_end_ms == end(3)
    assert state.last_arrival_ms == 10
    assert stored(state)[1] == [0] * 8


def test_next_slot_delta_is_observed() -> None:
    state = MeterState.new(config())
    state.update_register(end(3), 1000.0, 0)
    assert state.update_register(end(4), 1001.25, 0) == (Outcome.APPLIED, None)
    values, flags = stored(state)
    assert values[-1] == 1.25
    assert flags[-2:] == [SlotFlag.MISSING, SlotFlag.OBSERVED]
    # zero consumption is a real observation
    assert state.update_register(end(5), 1001.25, 0) == (Outcome.APPLIED, None)
    values, flags = stored(state)
    assert values[-1] == 0.0
    assert flags[-1] == SlotFlag.OBSERVED


def test_delta_over_several_slots_is_spread_evenly() -> None:
    state = MeterState.new(config())
    state.update_register(end(1), 500.0, 0)
    assert state.update_register(end(5), 506.0, 0) == (Outcome.APPLIED, None)
    values, flags = stored(state)
    assert values[-4:] == [1.5, 1.5, 1.5, 1.5]
    assert flags[-5:] == [0, 3, 3, 3, 3]
    view = state.get()
    assert view.observed_fraction == 4 / 8


def test_spread_longer_than_window_fills_the_window() -> None:
    state = MeterState.new(config(lookback=8, max_per_slot=10.0))
    state.update_register(end(0), 0.0, 0)
    state.update_register(end(20), 40.0, 0)
    values, flags = stored(state)
    assert values == [2.0] * 8
    assert flags == [SlotFlag.REGISTER_SPREAD] * 8


def test_same_slot_same_value_is_duplicate() -> None:
    state = MeterState.new(config())
    state.update_register(end(1), 500.0, 5)
    state.update_register(end(2), 501.0, 6)
    before = state.to_bytes()
    assert state.update_register(end(2) - 60_000, 501.0, 99) == (Outcome.DUPLICATE, None)
    assert state.to_bytes() == before


def test_second_reading_in_same_slot_adds_to_it() -> None:
    state = MeterState.new(config())
    state.update_register(end(1), 500.0, 0)
    state.update_register(end(2) - 20 * 60_000, 500.5, 0)  # 10 minutes into slot 2
    state.update_register(end(2), 501.0, 0)  # end of slot 2
    values, flags = stored(state)
    assert values[-1] == 1.0
    assert flags[-1] == SlotFlag.OBSERVED


def test_second_reading_in_baseline_slot_moves_baseline_only() -> None:
    state = MeterState.new(config())
    state.update_register(end(1) - 60_000, 500.0, 0)
    state.update_register(end(1), 500.4, 0)
    assert state.register_baseline == (500.4, state.head_slot)
    assert stored(state)[1] == [0] * 8


def test_a_late_reading_splits_the_spread_it_falls_in() -> None:
    state = MeterState.new(config())
    state.update_register(end(1), 500.0, 1)
    state.update_register(end(5), 510.0, 2)  # 10 kWh spread over slots 2..5
    assert stored(state)[0][-4:] == [2.5] * 4
    assert state.update_register(end(2), 501.0, 3) == (Outcome.CORRECTED, None)
    values, flags = stored(state)
    assert values[-4:] == [1.0, 3.0, 3.0, 3.0]
    assert flags[-4:] == [int(SlotFlag.OBSERVED)] + [int(SlotFlag.REGISTER_SPREAD)] * 3
    assert state.last_arrival_ms == 3
    # the rest, in any order, until every slot is exact
    assert state.update_register(end(4), 507.0, 4) == (Outcome.CORRECTED, None)
    assert state.update_register(end(3), 503.5, 5) == (Outcome.CORRECTED, None)
    values, flags = stored(state)
    assert values[-4:] == [1.0, 2.5, 3.5, 3.0]
    assert flags[-4:] == [int(SlotFlag.OBSERVED)] * 4
    assert state.register_baseline == (510.0, state.head_slot)  # the newest stays the baseline


def test_a_replayed_older_reading_is_a_duplicate() -> None:
    state = MeterState.new(config())
    for k, register in ((1, 500.0), (2, 501.0), (3, 502.5), (4, 504.0)):
        state.update_register(end(k), register, k)
    before = state.to_bytes()
    for k, register in ((1, 500.0), (2, 501.0), (3, 502.5)):  # the baseline's slot too
        assert state.update_register(end(k), register, 9) == (Outcome.DUPLICATE, None)
    assert state.to_bytes() == before


def test_older_readings_that_do_not_fit_are_out_of_order_and_change_nothing() -> None:
    state = MeterState.new(config())
    state.update_register(end(1), 500.0, 1)
    state.update_register(end(2), 501.0, 2)
    state.update_register(end(5), 510.0, 3)  # spread over 3..5
    before = state.to_bytes()
    cases = [
        (end(2), 501.7),  # an observed slot, another value
        (end(3), 500.5),  # inside the spread, but the register would run backwards
        (end(4), 511.0),  # inside the spread, above the newest reading
        (end(0), 499.0),  # before the baseline
    ]
    for ts, register in cases:
        assert state.update_register(ts, register, 9) == (Outcome.REGISTER_OUT_OF_ORDER, None)
    assert state.to_bytes() == before


def test_older_than_the_allowed_lateness_is_out_of_order() -> None:
    state = MeterState.new(config(lookback=16))  # lateness 4
    state.update_register(end(1), 500.0, 1)
    state.update_register(end(9), 516.0, 2)  # spread over 2..9; slot 2 is 8 behind
    assert state.update_register(end(2), 502.0, 3) == (Outcome.REGISTER_OUT_OF_ORDER, None)
    # inside the lateness, but the spread begins before it: where it began is not exact
    assert state.update_register(end(7), 512.0, 3) == (Outcome.REGISTER_OUT_OF_ORDER, None)


def test_decrease_is_a_reset_with_event_and_fills_nothing() -> None:
    state = MeterState.new(config())
    state.update_register(end(1), 5000.0, 0)
    state.update_register(end(2), 5001.0, 0)
    _, before_flags = stored(state)
    outcome, event = state.update_register(end(3), 12.0, 0)
    assert outcome == Outcome.APPLIED
    assert isinstance(event, RegisterEvent)
    assert event.kind == "reset"
    assert (event.ts_ms, event.previous_register_kwh, event.register_kwh) == (end(3), 5001.0, 12.0)
    assert "not a plausible rollover" in event.detail
    assert stored(state)[1] == [*before_flags[1:], 0]  # head moved, new slot not filled
    assert state.register_baseline == (12.0, state.head_slot)
    # the next reading measures from the new baseline
    state.update_register(end(4), 13.5, 0)
    assert stored(state)[0][-1] == 1.5


def test_implausible_jump_is_a_reset() -> None:
    state = MeterState.new(config(max_per_slot=10.0))
    state.update_register(end(1), 100.0, 0)
    outcome, event = state.update_register(end(3), 121.0, 0)  # 21 kWh over 2 slots > 20
    assert outcome == Outcome.APPLIED
    assert event is not None
    assert event.kind == "reset"
    assert "jumped" in event.detail
    assert stored(state)[1] == [0] * 8
    # exactly at the bound is still plausible
    outcome, event = state.update_register(end(5), 141.0, 0)
    assert event is None
    assert stored(state)[0][-2:] == [10.0, 10.0]


def test_rollover_applies_wrapped_delta() -> None:
    state = MeterState.new(config(max_per_slot=10.0))
    state.update_register(end(1), 99_998.0, 0)
    outcome, event = state.update_register(end(2), 1.5, 0)
    assert outcome == Outcome.APPLIED
    assert event is not None
    assert event.kind == "rollover"
    assert event.previous_register_kwh == 99_998.0
    assert "100000" in event.detail
    values, flags = stored(state)
    assert values[-1] == 3.5
    assert flags[-1] == SlotFlag.OBSERVED
    assert state.register_baseline == (1.5, state.head_slot)


def test_rollover_spread_over_slots() -> None:
    state = MeterState.new(config(max_per_slot=10.0))
    state.update_register(end(1), 9_999.0, 0)
    outcome, event = state.update_register(end(3), 3.0, 0)
    assert outcome == Outcome.APPLIED
    assert event is not None
    assert event.kind == "rollover"
    assert stored(state)[0][-2:] == [2.0, 2.0]
    assert stored(state)[1][-2:] == [SlotFlag.REGISTER_SPREAD] * 2


@pytest.mark.parametrize(
    ("previous", "new", "slots", "kind", "delta"),
    [
        (100.0, 101.5, 1, "advance", 1.5),
        (100.0, 100.0, 3, "advance", 0.0),
        (100.0, 1200.0, 1, "reset", None),  # 1100 > 1000 per slot
        (100.0, 1200.0, 2, "advance", 1100.0),
        (99_999.0, 2.0, 1, "rollover", 3.0),
        (95_000.0, 2.0, 10, "rollover", 5_002.0),
        (95_000.0, 2.0, 1, "reset", None),  # wrapped delta 5002 > 1000
        (89_999.0, 2.0, 100, "reset", None),  # previous not in the top decile of 10**5
        (99_999.0, 20_000.0, 100, "reset", None),  # new not in the bottom decile
        (999.5, 0.1, 1, "reset", None),  # fewer than 4 digits: not a rollover
        (9_999.9, 0.1, 1, "rollover", 0.2),
        (5.0, 4.0, 0, "reset", None),
    ],
)
def test_register_step_cases(
    previous: float, new: float, slots: int, kind: str, delta: float | None
) -> None:
    step = register_step(previous, new, slots, 1000.0)
    assert step.kind == kind
    if delta is None:
        assert step.delta_kwh is None
    else:
        assert step.delta_kwh == pytest.approx(delta)


@pytest.mark.parametrize(
    ("value", "digits"), [(0.0, 1), (9.99, 1), (10.0, 2), (99_999.0, 5), (100_000.0, 6)]
)
def test_register_digits(value: float, digits: int) -> None:
    assert register_digits(value) == digits


def test_non_finite_register_is_rejected() -> None:
    state = MeterState.new(config())
    with pytest.raises(ValueError, match="not finite"):
        state.update_register(end(1), math.nan, 0)


@settings(max_examples=200, deadline=None)
@given(
    start=st.floats(0.0, 1e6),
    steps=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 5000)), min_size=1, max_size=40),
)
def test_in_order_register_energy_is_conserved_and_never_negative(
    start: float, steps: list[tuple[int, int]]
) -> None:
    cfg = config(lookback=200, max_per_slot=10.0)
    state = MeterState.new(cfg)
    state.update_register(end(0), start, 0)
    slot, register, baseline = 0, start, start
    for gap, delta_wh in steps:
        if gap == 0 and delta_wh == 0:
            continue
        slot += gap
        register += delta_wh / 1000
        outcome, event = state.update_register(end(slot), register, 0)
        assert outcome == Outcome.APPLIED
        assert event is None  # increases within the bound are never resets
        if slot == 0:
            baseline = register  # energy inside the baseline slot is not attributed
    values, flags = stored(state)
    real = [v for v, f in zip(values, flags, strict=True) if f]
    assert all(v >= 0.0 for v in real)
    # settled slots are stored rounded: at most 0.5 Wh each below 8.19 kWh (state codec)
    rounding = 0.0005 * len(real)
    assert sum(real) == pytest.approx(register - baseline, rel=1e-4, abs=1e-2 + rounding)


def test_register_meter_window_after_baseline_only() -> None:
    state = MeterState.new(config())
    state.update_register(end(3), 42.0, 0)
    view = state.get()
    assert view.end_ms == end(3)
    assert view.observed_fraction == 0.0
    assert np.isnan(view.values_kwh).all()
    assert (view.flags == SlotFlag.MISSING).all()


@settings(max_examples=200, deadline=None)
@given(
    steps_wh=st.lists(st.integers(0, 5000), min_size=6, max_size=12),
    late=st.integers(1, 3),
    order=st.randoms(use_true_random=False),
)
def test_late_register_readings_restore_the_in_order_window(
    steps_wh: list[int], late: int, order: object
) -> None:
    """The ``late`` readings before the newest come after it (all within the lateness of 4).
    In time order (as a partition read again delivers them) the window ends exactly as if every
    reading had come in order; in any order, every one is taken and the energy is the same
    (two spreads left side by side are one spread then: where one ended is not stored)."""
    import random

    assert isinstance(order, random.Random)
    registers = [1000.0 + sum(steps_wh[: k + 1]) / 1000.0 for k in range(len(steps_wh))]
    in_order = MeterState.new(config(lookback=16))
    for k, register in enumerate(registers):
        in_order.update_register(end(k), register, k)
    want_values, want_flags = stored(in_order)
    held_back = list(range(len(registers) - 1 - late, len(registers) - 1))
    shuffled = list(held_back)
    order.shuffle(shuffled)
    for arrival, exact in ((held_back, True), (shuffled, False)):
        state = MeterState.new(config(lookback=16))
        for k, register in enumerate(registers):
            if k not in held_back:
                state.update_register(end(k), register, k)
        for k in arrival:
            outcome, _ = state.update_register(end(k), registers[k], 99)
            assert outcome in (Outcome.CORRECTED, Outcome.DUPLICATE)
        got_values, got_flags = stored(state)
        if exact:
            assert got_flags == want_flags
            assert np.allclose(got_values, want_values, atol=1e-6, equal_nan=True)
            for k in held_back:  # each read again once more: a replay
                assert state.update_register(end(k), registers[k], 100)[0] == Outcome.DUPLICATE
        assert math.isclose(np.nansum(got_values), np.nansum(want_values), abs_tol=1e-4)
        # a replay of the newest changes nothing
        before = state.to_bytes()
        assert state.update_register(end(len(registers) - 1), registers[-1], 100)[0] == (
            Outcome.DUPLICATE
        )
        assert state.to_bytes() == before

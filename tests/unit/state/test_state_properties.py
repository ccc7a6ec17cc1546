"""Window invariants under reordering, duplication and lateness (hypothesis)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from streamer.state import MeterState, Outcome, SlotFlag, WindowConfig
from streamer.state.codec import decode_state

T0_MS = 1_709_251_200_000
BASE_SLOT_30 = T0_MS // 1_800_000


@dataclass(frozen=True)
class Message:
    slot: int
    ts_ms: int
    kwh: float
    arrival_ms: int


@st.composite
def configs(draw: st.DrawFn) -> WindowConfig:
    resolution = draw(st.sampled_from([900, 1800]))
    lookback = draw(st.integers(2, 48))
    lateness = draw(st.integers(1, lookback))
    return WindowConfig(
        resolution_seconds=resolution,
        lookback_slots=lookback,
        allowed_lateness_slots=lateness,
        interpolate_max_gap_slots=draw(st.integers(0, 4)),
    )


# a small value alphabet makes flatlines and equal neighbours common
values_kwh = st.one_of(st.sampled_from([0.0, 0.25, 0.5, 1.0]), st.floats(0.0, 20.0, width=32))


def message(config: WindowConfig, slot: int, kwh: float, offset_ms: int) -> Message:
    """A reading for ``slot`` at some time inside it; arrival depends on the slot only."""
    r_ms = config.resolution_ms
    ts = (slot - 1) * r_ms + 1 + offset_ms % r_ms  # in ((slot-1)*r, slot*r]
    return Message(slot, ts, kwh, arrival_ms=slot * r_ms + 60_000)


@st.composite
def shuffled_within_lateness(draw: st.DrawFn) -> tuple[WindowConfig, list[Message], list[Message]]:
    """(config, readings sorted by slot, delivery: duplicated and reordered within lateness).

    Delivery order sorts copies by ``slot + jitter`` with ``jitter < allowed_lateness_slots``, so
    whenever a copy is delivered every earlier delivered slot is < its slot + lateness: no copy
    is ever too late, yet the order is as shuffled as lateness allows.
    """
    config = draw(configs())
    start = BASE_SLOT_30 * (1800 // config.resolution_seconds)
    slots = sorted(draw(st.sets(st.integers(0, 150), min_size=1, max_size=60)))
    readings = [
        message(config, start + s, draw(values_kwh), draw(st.integers(0, 10**7))) for s in slots
    ]
    keyed = []
    for reading in readings:
        for _ in range(draw(st.integers(1, 3))):
            jitter = draw(st.integers(0, config.allowed_lateness_slots - 1))
            offset = draw(st.integers(0, 10**7))  # a duplicate may carry another ts in the slot
            copy = Message(
                reading.slot,
                (reading.slot - 1) * config.resolution_ms + 1 + offset % config.resolution_ms,
                reading.kwh,
                reading.arrival_ms,
            )
            keyed.append((reading.slot + jitter, draw(st.integers(0, 10**6)), copy))
    keyed.sort(key=lambda item: (item[0], item[1]))
    return config, readings, [copy for _, _, copy in keyed]


def build(config: WindowConfig, messages: list[Message]) -> tuple[MeterState, list[Outcome]]:
    state = MeterState.new(config)
    outcomes = [state.update(m.ts_ms, m.kwh, m.arrival_ms) for m in messages]
    return state, outcomes


@settings(max_examples=200, deadline=None)
@given(shuffled_within_lateness())
def test_reordering_and_duplicates_within_lateness_do_not_change_the_result(
    case: tuple[WindowConfig, list[Message], list[Message]],
) -> None:
    config, readings, delivery = case
    reference, reference_outcomes = build(config, readings)
    state, outcomes = build(config, delivery)

    assert reference_outcomes == [Outcome.APPLIED] * len(readings)
    assert len(outcomes) == len(delivery)
    assert all(isinstance(o, Outcome) for o in outcomes)
    counts = Counter(outcomes)
    assert counts[Outcome.APPLIED] == len(readings)
    assert counts[Outcome.APPLIED] + counts[Outcome.DUPLICATE] == len(delivery)

    assert state.to_bytes() == reference.to_bytes()
    assert state.head_slot == reference.head_slot == readings[-1].slot
    got, want = state.get(), reference.get()
    np.testing.assert_array_equal(got.values_kwh, want.values_kwh)  # NaN == NaN here
    np.testing.assert_array_equal(got.flags, want.flags)
    assert got.end_ms == want.end_ms == readings[-1].slot * config.resolution_ms
    assert got.observed_fraction == want.observed_fraction
    assert not (got.flags == SlotFlag.CORRECTED).any()


@st.composite
def any_delivery(draw: st.DrawFn) -> tuple[WindowConfig, list[Message]]:
    """Messages in any order, with different values per slot and arbitrary lateness."""
    config = draw(configs())
    start = BASE_SLOT_30 * (1800 // config.resolution_seconds)
    messages = []
    for _ in range(draw(st.integers(1, 80))):
        slot = start + draw(st.integers(0, 100))
        ts_ms = slot * config.resolution_ms - draw(st.integers(0, config.resolution_ms - 1))
        kwh = draw(st.sampled_from([0.0, 0.5, 1.0, 2.5]))
        messages.append(Message(slot, ts_ms, kwh, arrival_ms=draw(st.integers(0, 10**12))))
    return config, messages


@settings(max_examples=200, deadline=None)
@given(any_delivery())
def test_state_follows_a_plain_dictionary_model(case: tuple[WindowConfig, list[Message]]) -> None:
    """Compare to a dict-based model of the rules; check rejected readings change nothing."""
    config, messages = case
    state = MeterState.new(config)
    model: dict[int, tuple[float, int]] = {}
    head: int | None = None
    last_arrival = 0
    for m in messages:
        before = state.to_bytes()
        outcome = state.update(m.ts_ms, m.kwh, m.arrival_ms)
        if head is None or m.slot > head:
            head, expected = m.slot, Outcome.APPLIED
            model[m.slot] = (m.kwh, SlotFlag.OBSERVED)
        elif head - m.slot >= config.allowed_lateness_slots:
            # beyond lateness: a replay of the very value still in the window is a duplicate
            in_window = m.slot in model and head - m.slot < config.lookback_slots
            same = in_window and model[m.slot][0] == m.kwh
            expected = Outcome.DUPLICATE if same else Outcome.TOO_LATE
        elif m.slot not in model:
            expected = Outcome.APPLIED
            model[m.slot] = (m.kwh, SlotFlag.OBSERVED)
        elif model[m.slot][0] == m.kwh:
            expected = Outcome.DUPLICATE
        else:
            expected = Outcome.CORRECTED
            model[m.slot] = (m.kwh, SlotFlag.CORRECTED)
        assert outcome == expected
        if expected in (Outcome.APPLIED, Outcome.CORRECTED):
            last_arrival = max(last_arrival, m.arrival_ms)
        else:
            assert state.to_bytes() == before
        # keep the model to the window, as the state does
        model = {s: v for s, v in model.items() if s > head - config.lookback_slots}
    assert state.head_slot == head
    assert state.last_arrival_ms == last_arrival
    assert head is not None
    lookback = config.lookback_slots
    fields = decode_state(state.to_bytes(), config)
    values, flags = fields.values_kwh, fields.flags
    for i, slot in enumerate(range(head - lookback + 1, head + 1)):
        if slot in model:
            assert (float(values[i]), int(flags[i])) == model[slot]
        else:
            assert np.isnan(values[i])
            assert flags[i] == SlotFlag.MISSING
    assert state.get().observed_fraction == len(model) / lookback

"""apply_batch equals update in order; expiry and silence rules."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamer.state import (
    InvalidReadingError,
    MeterState,
    Outcome,
    WindowConfig,
    apply_batch,
    is_expired,
    silent_meters,
)

T0_MS = 1_709_251_200_000
R_MS = 1_800_000
CONFIG = WindowConfig(resolution_seconds=1800, lookback_slots=24, allowed_lateness_slots=6)


def arrays(rows: list[tuple[int, float, int]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ts = np.array([T0_MS + k * R_MS for k, _, _ in rows], dtype=np.int64)
    kwh = np.array([v for _, v, _ in rows], dtype=np.float64)
    arrival = np.array([a for _, _, a in rows], dtype=np.int64)
    return ts, kwh, arrival


def sequential(state: MeterState, rows: list[tuple[int, float, int]]) -> list[Outcome]:
    ts, kwh, arrival = arrays(rows)
    return [
        state.update(int(t), float(v), int(a)) for t, v, a in zip(ts, kwh, arrival, strict=True)
    ]


rows_strategy = st.lists(
    st.tuples(st.integers(0, 80), st.sampled_from([0.0, 0.5, 1.0, 3.25]), st.integers(0, 10**9)),
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(prefix=rows_strategy, batch=rows_strategy, in_order=st.booleans())
def test_apply_batch_equals_update_in_order(
    prefix: list[tuple[int, float, int]], batch: list[tuple[int, float, int]], in_order: bool
) -> None:
    if in_order:  # exercise the vectorised path: strictly increasing slots after the prefix
        top = max((k for k, _, _ in prefix), default=-1)
        first_per_slot = {k: (v, a) for k, v, a in reversed(batch)}
        batch = [(top + 1 + k, v, a) for k, (v, a) in sorted(first_per_slot.items())]
    a, b = MeterState.new(CONFIG), MeterState.new(CONFIG)
    sequential(a, prefix)
    sequential(b, prefix)
    expected = sequential(a, batch)
    got = apply_batch(b, *arrays(batch))
    assert got == expected
    assert b.to_bytes() == a.to_bytes()


def test_in_order_batch_into_empty_state() -> None:
    state = MeterState.new(CONFIG)
    rows = [(k, float(k), 100 + k) for k in range(0, 60, 2)]
    assert apply_batch(state, *arrays(rows)) == [Outcome.APPLIED] * 30
    assert state.head_end_ms == T0_MS + 58 * R_MS
    assert state.last_arrival_ms == 158
    view = state.get()
    assert view.values_kwh[-1] == 58.0
    assert view.observed_fraction == 12 / 24


def test_long_in_order_batch_takes_the_vectorised_path(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    original = MeterState._extend_in_order

    def spy(self: MeterState, slots: np.ndarray, kwh: np.ndarray, arrival_ms: int) -> None:
        calls.append(len(slots))
        original(self, slots, kwh, arrival_ms)

    monkeypatch.setattr(MeterState, "_extend_in_order", spy)
    state = MeterState.new(CONFIG)
    rows = [(k, 1.0, 0) for k in range(40)]
    assert apply_batch(state, *arrays(rows)) == [Outcome.APPLIED] * 40
    # not after the head: reading by reading; lateness 6 accepts slots 34..39
    late = [(k, 2.0, 0) for k in range(26, 40)]
    assert apply_batch(state, *arrays(late)) == [Outcome.TOO_LATE] * 8 + [Outcome.CORRECTED] * 6
    assert calls == [40]


def test_empty_batch_and_shape_errors() -> None:
    state = MeterState.new(CONFIG)
    empty = np.array([], dtype=np.int64)
    assert apply_batch(state, empty, empty.astype(float), empty) == []
    with pytest.raises(ValueError, match="one length"):
        apply_batch(state, np.zeros(2, dtype=np.int64), np.zeros(3), np.zeros(2, dtype=np.int64))


def test_batch_with_bad_value_raises_after_applying_earlier_ones() -> None:
    state = MeterState.new(CONFIG)
    ts, kwh, arrival = arrays([(1, 1.0, 0), (2, float("nan"), 0), (3, 1.0, 0)])
    with pytest.raises(InvalidReadingError):
        apply_batch(state, ts, kwh, arrival)
    assert state.head_end_ms == T0_MS + R_MS


def test_is_expired() -> None:
    state = MeterState.new(CONFIG)
    state.update(T0_MS, 1.0, arrival_ms=1_000)
    assert not is_expired(state, now_ms=6_000, retention_ms=5_000)
    assert is_expired(state, now_ms=6_001, retention_ms=5_000)
    # rejected readings do not keep a meter alive
    state.update(T0_MS - 100 * R_MS, 1.0, arrival_ms=9_000)
    assert is_expired(state, now_ms=6_001, retention_ms=5_000)


def test_silent_meters() -> None:
    last = np.array([0, 1_000, 5_000, 10_000], dtype=np.int64)
    mask = silent_meters(last, now_ms=10_000, silent_after_ms=5_000)
    assert mask.dtype == np.bool_
    assert mask.tolist() == [True, True, False, False]

"""ForecastLedger: exact matches, order of calls, expiry, bytes."""

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
    ForecastLedger,
    LedgerConfig,
    Match,
    quantile_columns,
)
from streamer.accuracy.forecast_ledger import MAGIC, VERSION
from streamer.drift.sealed import seal

H = 48


def _forecast(base: float = 0.0, horizon: int = H) -> tuple[np.ndarray, np.ndarray]:
    """point[h-1] = base + h; p10/p50/p90 = point - 0.5, point, point + 0.5 (float16-exact)."""
    point = base + np.arange(1.0, horizon + 1)
    return point, np.stack([point - 0.5, point, point + 0.5], axis=1)


def test_matches_each_horizon_once_with_exact_values() -> None:
    ledger = ForecastLedger()
    assert ledger.record(100, *_forecast()) == 5
    assert ledger.pending == 5
    assert ledger.match(101, 1.5) == [Match(1, 1.0, 0.5, 1.0, 1.5, 1.5)]
    assert ledger.match(101, 1.5) == []  # matched once
    assert ledger.match(102, 7.0) == []  # no tracked horizon 2
    assert ledger.match(104, 3.0) == [Match(4, 4.0, 3.5, 4.0, 4.5, 3.0)]
    assert ledger.match(112, 0.0) == [Match(12, 12.0, 11.5, 12.0, 12.5, 0.0)]
    assert ledger.match(124, 30.0) == [Match(24, 24.0, 23.5, 24.0, 24.5, 30.0)]
    assert ledger.match(148, 48.0) == [Match(48, 48.0, 47.5, 48.0, 48.5, 48.0)]
    assert ledger.match(149, 48.0) == []
    assert ledger.pending == 0


def test_every_slot_cadence_matches_every_horizon() -> None:
    # Forecast from every slot 0..99 (point = 100 * origin + h, float16-exact below 2048 only,
    # so use origin % 8); from slot 48 on, each target gets all 5 horizons.
    ledger = ForecastLedger()
    for slot in range(100):
        if slot > 0:
            matches = ledger.match(slot, 1.0)
            expected_h = [h for h in (1, 4, 12, 24, 48) if slot - h >= 0]
            assert [m.horizon_slots for m in matches] == expected_h
            for m in matches:
                assert m.point == 100 * ((slot - m.horizon_slots) % 8) + m.horizon_slots
        point = 100.0 * (slot % 8) + np.arange(1.0, H + 1)
        ledger.record(slot, point, np.stack([point, point, point], axis=1))
    assert ledger.pending == 1 + 4 + 12 + 24 + 48
    assert ledger.head_origin_slot == 99


def test_record_drops_targets_up_to_its_origin() -> None:
    ledger = ForecastLedger()
    ledger.record(100, *_forecast())
    ledger.record(101, *_forecast(1000.0))  # slot 101 was not matched first
    assert ledger.match(101, 1.0) == []
    # Origin 100's 4-, 12-, 24-, 48-slot entries are still there, next to origin 101's.
    assert [(m.horizon_slots, m.point) for m in ledger.match(104, 1.0)] == [(4, 4.0)]
    assert [(m.horizon_slots, m.point) for m in ledger.match(105, 1.0)] == [(4, 1004.0)]
    assert [(m.horizon_slots, m.point) for m in ledger.match(112, 1.0)] == [(12, 12.0)]


def test_cadence_of_several_slots() -> None:
    ledger = ForecastLedger()
    for origin in range(0, 40, 4):  # forecast every 4 slots, match every slot
        for slot in range(origin - 3, origin + 1):
            if slot > 0:
                for m in ledger.match(slot, 2.0):
                    assert (slot - m.horizon_slots) % 4 == 0
        ledger.record(origin, *_forecast(float(origin)))
    # Target 40: 4-slot forecast from 36, 12 from 28, 24 from 16; none from 39 (not an origin).
    assert [(m.horizon_slots, m.point) for m in ledger.match(40, 2.0)] == [
        (4, 40.0),
        (12, 40.0),
        (24, 40.0),
    ]


def test_gap_longer_than_a_horizon_clears_its_ring() -> None:
    ledger = ForecastLedger()
    ledger.record(100, *_forecast())
    ledger.record(130, *_forecast(100.0))  # 30 slots later: rings 1, 4, 12, 24 cleared
    assert ledger.match(131, 1.0) == [Match(1, 101.0, 100.5, 101.0, 101.5, 1.0)]
    assert [m.horizon_slots for m in ledger.match(148, 1.0)] == [48]  # from origin 100


def test_shorter_model_horizon_keeps_fewer_entries() -> None:
    ledger = ForecastLedger()
    assert ledger.record(10, *_forecast(horizon=24)) == 4
    assert ledger.match(58, 1.0) == []
    assert ledger.pending == 4


def test_stale_origin_is_ignored_same_origin_replaces() -> None:
    ledger = ForecastLedger()
    ledger.record(100, *_forecast())
    assert ledger.record(99, *_forecast(500.0)) == 0
    assert ledger.record(100, *_forecast(7.0)) == 5
    assert ledger.match(101, 0.0)[0].point == 8.0
    assert ledger.head_origin_slot == 100


def test_non_finite_values_are_not_kept() -> None:
    point, quantiles = _forecast()
    point[0] = math.nan
    quantiles[3, 2] = math.inf
    ledger = ForecastLedger()
    assert ledger.record(0, point, quantiles) == 3
    assert ledger.match(1, 1.0) == []
    assert ledger.match(4, 1.0) == []
    assert ledger.match(12, 1.0) != []


def test_non_finite_actual_matches_nothing_and_keeps_the_entry() -> None:
    ledger = ForecastLedger()
    ledger.record(0, *_forecast())
    assert ledger.match(1, math.nan) == []
    assert len(ledger.match(1, 0.5)) == 1


def test_nothing_matches_before_the_first_forecast() -> None:
    assert ForecastLedger().match(5, 1.0) == []


def test_float16_rounding_and_clamping() -> None:
    point = np.full(H, 0.1)
    point[3] = 1e6
    point[11] = -1e6
    ledger = ForecastLedger()
    ledger.record(0, point, np.stack([point, point, point], axis=1))
    assert ledger.match(1, 0.1)[0].point == float(np.float16(0.1)) == 0.0999755859375
    assert ledger.match(4, 0.0)[0].p90 == 65504.0
    assert ledger.match(12, 0.0)[0].p10 == -65504.0


def test_shapes_are_checked() -> None:
    ledger = ForecastLedger()
    with pytest.raises(AccuracyInputError, match=r"\(H, 3\)"):
        ledger.record(0, np.zeros(48), np.zeros((48, 2)))
    with pytest.raises(AccuracyInputError):
        ledger.record(0, np.zeros((2, 48)), np.zeros((48, 3)))


# ----------------------------------------------------------------------------- bytes


def test_encoded_size() -> None:
    ledger = ForecastLedger()
    assert len(ledger.to_bytes()) == LedgerConfig().encoded_size == 732
    ledger.record(5, *_forecast())
    assert len(ledger.to_bytes()) == 732
    small = LedgerConfig(horizons=(1, 2, 48))
    assert len(ForecastLedger(small).to_bytes()) == small.encoded_size == 20 + 8 * 51


def test_round_trip_resumes_identically() -> None:
    a, b = ForecastLedger(), ForecastLedger()
    out_a: list[Match] = []
    out_b: list[Match] = []
    for slot in range(1, 80):
        out_a += a.match(slot, float(slot % 5))
        b = ForecastLedger.from_bytes(b.to_bytes())
        out_b += b.match(slot, float(slot % 5))
        a.record(slot, *_forecast(float(slot % 3)))
        b.record(slot, *_forecast(float(slot % 3)))
        assert a.to_bytes() == b.to_bytes()
    assert out_a == out_b
    assert len(out_a) > 200


def test_layout_is_head_then_float16_entries() -> None:
    """The stored layout (format version 1, unchanged): head slot, then per horizon ring the
    (point, p10, p50, p90) float16 entries, rounded as numpy rounds float64 to float16."""
    rng = np.random.default_rng(5)
    point = rng.standard_normal(H) * np.logspace(-6, 5, H)
    quantiles = np.stack([point * 0.9, point, point * 1.1], axis=1)
    ledger = ForecastLedger()
    ledger.record(1000, point, quantiles)
    config = LedgerConfig()
    values = np.full((config.entries, 4), np.nan, dtype="<f2")
    for h, offset in zip(config.horizons, config.offsets, strict=True):
        entry = np.array([point[h - 1], *quantiles[h - 1]])
        values[offset + 1000 % h] = np.clip(entry, -65504, 65504) + 0.0
    body = (1000).to_bytes(8, "little", signed=True) + values.tobytes()
    assert ledger.to_bytes() == seal(MAGIC, VERSION, 1, config.fingerprint(), body)


def test_gaps_drop_the_right_entries() -> None:
    # gaps of every length across the rings' wrap-around, against the naive model
    for gap in range(1, 60):
        ledger, naive = ForecastLedger(), _NaiveLedger((1, 4, 12, 24, 48))
        point, quantiles = _forecast()
        for led in (ledger, naive):
            led.record(45, point, quantiles)
            led.record(45 + gap, point, quantiles)
        for slot in range(46, 45 + gap + 50):
            assert ledger.match(slot, 1.0) == naive.match(slot, 1.0), (gap, slot)


def test_equal_ledgers_equal_bytes() -> None:
    point, quantiles = _forecast()
    point[0] = 0.0
    a, b = ForecastLedger(), ForecastLedger()
    a.record(3, point, quantiles)
    point[0] = -0.0
    b.record(3, point, quantiles)
    assert a.to_bytes() == b.to_bytes()


def test_empty_ledger_round_trip() -> None:
    restored = ForecastLedger.from_bytes(ForecastLedger().to_bytes())
    assert restored.head_origin_slot is None
    assert restored.pending == 0


def test_bad_bytes_are_rejected() -> None:
    ledger = ForecastLedger()
    ledger.record(7, *_forecast())
    data = ledger.to_bytes()
    broken = bytearray(data)
    broken[40] ^= 1
    with pytest.raises(AccuracyStateDecodeError, match="CRC"):
        ForecastLedger.from_bytes(bytes(broken))
    with pytest.raises(AccuracyStateDecodeError, match="other parameters"):
        ForecastLedger.from_bytes(data, LedgerConfig(horizons=(1, 4)))
    with pytest.raises(AccuracyStateDecodeError, match="truncated"):
        ForecastLedger.from_bytes(data[:6])
    config = LedgerConfig()
    values = np.full((config.entries, 4), np.nan, dtype="<f2")
    values[0, :2] = 1.0  # a partial entry
    body = (7).to_bytes(8, "little", signed=True) + values.tobytes()
    with pytest.raises(AccuracyStateDecodeError, match="partial"):
        ForecastLedger.from_bytes(seal(MAGIC, VERSION, 1, config.fingerprint(), body))
    values[0, :] = 1.0
    body = (0).to_bytes(8, "little") + values.tobytes()
    with pytest.raises(AccuracyStateDecodeError, match="no head"):
        ForecastLedger.from_bytes(seal(MAGIC, VERSION, 0, config.fingerprint(), body))
    values[0, 3] = np.inf  # an infinite value
    body = (7).to_bytes(8, "little") + values.tobytes()
    with pytest.raises(AccuracyStateDecodeError, match="infinite"):
        ForecastLedger.from_bytes(seal(MAGIC, VERSION, 1, config.fingerprint(), body))


# ----------------------------------------------------------------------------- model check


class _NaiveLedger:
    """Every forecast in a dict keyed by (target, horizon), with the documented rules."""

    def __init__(self, horizons: tuple[int, ...]) -> None:
        self.horizons = horizons
        self.head: int | None = None
        self.entries: dict[tuple[int, int], tuple[float, ...]] = {}

    def record(self, origin: int, point: np.ndarray, quantiles: np.ndarray) -> None:
        if self.head is not None and origin < self.head:
            return
        self.head = origin
        self.entries = {k: v for k, v in self.entries.items() if k[0] > origin}
        for h in self.horizons:
            if h <= point.size:
                values = (point[h - 1], *quantiles[h - 1])
                key = (origin + h, h)
                self.entries.pop(key, None)
                if all(math.isfinite(v) for v in values):
                    self.entries[key] = tuple(float(np.float16(v)) for v in values)

    def match(self, slot: int, actual: float) -> list[Match]:
        out = []
        for h in self.horizons:
            values = self.entries.pop((slot, h), None)
            if values is not None:
                point, p10, p50, p90 = values
                out.append(Match(h, point, p10, p50, p90, actual))
        return out


@settings(max_examples=100, deadline=None)
@given(
    steps=st.lists(
        st.tuples(st.integers(0, 6), st.booleans(), st.integers(0, 2)), min_size=1, max_size=60
    ),
    horizons=st.sampled_from([(1, 4, 12, 24, 48), (1, 2, 3), (2, 5)]),
)
def test_agrees_with_a_naive_model(
    steps: list[tuple[int, bool, int]], horizons: tuple[int, ...]
) -> None:
    """Random walk of the worker: the head advances by 0..6 slots, each new slot's actual is
    matched, then (or not) a forecast is recorded; sometimes an older origin is replayed."""
    ledger = ForecastLedger(LedgerConfig(horizons))
    naive = _NaiveLedger(horizons)
    slot = 0
    for advance, forecast, replay in steps:
        for s in range(slot + 1, slot + advance + 1):
            assert ledger.match(s, float(s)) == naive.match(s, float(s))
        slot += advance
        if forecast:
            origin = slot - replay
            point = np.arange(1.0, 49.0) + origin % 7
            quantiles = np.stack([point - 1, point, point + 1], axis=1)
            ledger.record(origin, point, quantiles)
            naive.record(origin, point, quantiles)
        assert ledger.pending == len(naive.entries)
        ledger = ForecastLedger.from_bytes(ledger.to_bytes(), LedgerConfig(horizons))


# ----------------------------------------------------------------------------- helpers


def test_quantile_columns() -> None:
    assert quantile_columns((0.05, 0.1, 0.5, 0.9, 0.95)) == [1, 2, 3]
    assert quantile_columns((0.1, 0.5, 0.9)) == [0, 1, 2]
    with pytest.raises(AccuracyInputError, match=r"0\.9"):
        quantile_columns((0.1, 0.5))


@pytest.mark.parametrize("horizons", [(), (0, 4), (4, 4), (12, 4), (1, 400)])
def test_bad_horizons_are_rejected(horizons: tuple[int, ...]) -> None:
    with pytest.raises(AccuracyConfigError, match="horizons"):
        LedgerConfig(horizons)


_EDGES = [0.0, -0.0, 1e-7, -3e-8, 0.333, 65504.0, 65519.0, 65520.0, -1e6, np.inf, -np.inf, np.nan]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([None, 90, 99, 100, 101, 150]),  # head before this batch
            st.sampled_from([99, 100, 101, 103, 140]),  # origin recorded
        ),
        min_size=1,
        max_size=6,
    ),
    st.sampled_from([48, 12]),  # 12: shorter than the longest ring (one by one)
    st.integers(0, 2**32 - 1),
)
def test_record_rows_writes_what_record_writes_row_by_row(
    rows: list[tuple[int | None, int]], horizon: int, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    values = rng.normal(0.5, 2.0, size=(len(rows), horizon, 4))
    edges = rng.random(values.shape) < 0.1  # some at float16's edges, or not finite
    values[edges] = rng.choice(np.array(_EDGES), size=int(edges.sum()))
    point, quantiles = values[:, :, 0], values[:, :, 1:]

    def ledgers() -> list[ForecastLedger]:
        out = []
        for head, _ in rows:
            ledger = ForecastLedger()
            if head is not None:
                ledger.record(head, np.arange(48.0), np.ones((48, 3)))
            out.append(ledger)
        return out

    one_by_one, together = ledgers(), ledgers()
    for ledger, (_, origin), p, q in zip(one_by_one, rows, point, quantiles, strict=True):
        ledger.record(origin, p, q)
    ForecastLedger.record_rows(together, [origin for _, origin in rows], point, quantiles)
    assert [x.to_bytes() for x in together] == [x.to_bytes() for x in one_by_one]

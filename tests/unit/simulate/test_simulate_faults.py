from __future__ import annotations

import json
import math

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamer.contract.errors import InvalidReading
from streamer.contract.reading import ReadingLimits, parse_reading
from streamer.simulate.errors import SimulationConfigError
from streamer.simulate.faults import (
    DelayedMessage,
    FaultConfig,
    FaultTally,
    apply_faults,
    release_all,
)
from streamer.simulate.malformed import MalformedKind, break_reading, eligible_kinds

from .readback import classify

SLOT_END_MS = 1_795_003_200_000
SLOT = SLOT_END_MS // 1_800_000
LIMITS = ReadingLimits(
    max_message_bytes=16_384, max_interval_kwh=500.0, future_tolerance_ms=300_000
)

INTERVAL = orjson.dumps(
    {"meter_id": "m-000001", "ts": "2026-11-18T12:00:00+00:00", "kwh": 0.412,
     "meter_type": "consumption", "quality": "actual"}
)  # fmt: skip
REGISTER = orjson.dumps(
    {"meter_id": "m-000002", "ts": SLOT_END_MS, "register_kwh": 1234.5, "meter_type": "consumption"}
)
NET = orjson.dumps({"meter_id": "m-000003", "ts": SLOT_END_MS, "kwh": -0.2, "meter_type": "net"})


def _clean(n: int) -> list[tuple[bytes, bytes]]:
    return [
        (f"m-{i:06d}".encode(), orjson.dumps(
            {"meter_id": f"m-{i:06d}", "ts": SLOT_END_MS, "kwh": 0.1, "meter_type": "consumption"}
        ))
        for i in range(n)
    ]  # fmt: skip


@pytest.mark.parametrize(
    "kwargs",
    [
        {"missing_rate": -0.1},
        {"duplicate_rate": 1.5},
        {"missing_rate": 0.6, "out_of_order_rate": 0.6},
        {"late_max_slots": 0},
    ],
)
def test_fault_config_refuses_impossible_settings(kwargs: dict[str, float]) -> None:
    with pytest.raises(SimulationConfigError):
        FaultConfig(**kwargs)  # type: ignore[arg-type]


def test_defaults_are_small_but_not_zero() -> None:
    config = FaultConfig()
    rates = [config.missing_rate, config.duplicate_rate, config.out_of_order_rate]
    assert all(0 < r <= 0.05 for r in [*rates, config.malformed_rate])


def test_no_faults_sends_every_reading_once_in_order() -> None:
    clean = _clean(500)
    chunk = apply_faults(clean, slot_index=SLOT, config=FaultConfig.none(), seed=1)
    assert chunk.messages == clean
    assert chunk.delayed == ()
    assert chunk.tally == FaultTally(clean=500)


def test_faults_are_deterministic_in_seed_and_slot() -> None:
    clean = _clean(2000)
    config = FaultConfig(0.05, 0.05, 0.05, 0.05)
    first = apply_faults(clean, slot_index=SLOT, config=config, seed=3)
    again = apply_faults(clean, slot_index=SLOT, config=config, seed=3)
    assert first == again
    assert apply_faults(clean, slot_index=SLOT + 1, config=config, seed=3) != first
    assert apply_faults(clean, slot_index=SLOT, config=config, seed=4) != first


@settings(max_examples=60, deadline=None)
@given(
    rates=st.lists(st.floats(0.0, 0.25), min_size=4, max_size=4),
    n=st.integers(0, 300),
    late_max=st.integers(1, 6),
    seed=st.integers(0, 2**32),
)
def test_every_reading_meets_exactly_one_fate(
    rates: list[float], n: int, late_max: int, seed: int
) -> None:
    config = FaultConfig(rates[0], rates[1], rates[2], rates[3], late_max_slots=late_max)
    chunk = apply_faults(_clean(n), slot_index=SLOT, config=config, seed=seed)
    assert chunk.tally.readings + len(chunk.delayed) == n
    assert len(chunk.messages) == chunk.tally.messages
    assert all(SLOT < d.release_slot <= SLOT + late_max for d in chunk.delayed)
    assert chunk.tally.out_of_order == 0  # nothing carried in, nothing released yet


def test_late_messages_are_released_at_their_slot_after_the_slot_messages() -> None:
    carried = (
        DelayedMessage(SLOT, b"m-a", b"due"),
        DelayedMessage(SLOT - 2, b"m-b", b"overdue"),
        DelayedMessage(SLOT + 1, b"m-c", b"later"),
    )
    clean = _clean(3)
    chunk = apply_faults(clean, slot_index=SLOT, config=FaultConfig.none(), seed=0, carried=carried)
    assert chunk.messages == [*clean, (b"m-a", b"due"), (b"m-b", b"overdue")]
    assert chunk.delayed == (carried[2],)
    assert chunk.tally == FaultTally(clean=3, out_of_order=2)
    flushed = release_all(chunk.delayed)
    assert flushed.messages == [(b"m-c", b"later")]
    assert flushed.tally == FaultTally(out_of_order=1)


def test_eligible_kinds_follow_the_meter() -> None:
    assert MalformedKind.NEGATIVE_ENERGY not in eligible_kinds(orjson.loads(NET))
    assert MalformedKind.ABOVE_PHYSICAL_BOUND not in eligible_kinds(orjson.loads(REGISTER))
    assert set(eligible_kinds(orjson.loads(INTERVAL))) == set(MalformedKind)


CASES = [
    (kind, name, value)
    for name, value in [("interval", INTERVAL), ("register", REGISTER), ("net", NET)]
    for kind in eligible_kinds(json.loads(value))
]


@pytest.mark.parametrize(("kind", "name", "value"), CASES, ids=[f"{k}-{n}" for k, n, _ in CASES])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_each_malformed_kind_is_refused_by_the_contract_for_its_reason(
    kind: MalformedKind, name: str, value: bytes, seed: int
) -> None:
    broken = break_reading(value, kind, np.random.default_rng(seed))
    assert classify(broken, SLOT_END_MS) == kind.value
    key = json.loads(value)["meter_id"].encode()
    with pytest.raises(InvalidReading) as info:
        parse_reading(broken, key, limits=LIMITS, now_ms=SLOT_END_MS)
    assert info.value.reason.value == kind.value, name


def test_the_good_readings_pass_the_contract() -> None:
    for value in (INTERVAL, REGISTER, NET):
        key = json.loads(value)["meter_id"].encode()
        parse_reading(value, key, limits=LIMITS, now_ms=SLOT_END_MS)


def test_non_finite_uses_the_nan_token_and_future_is_past_the_wall_clock() -> None:
    rng = np.random.default_rng(0)
    nan = break_reading(INTERVAL, MalformedKind.NON_FINITE, rng)
    assert b'"kwh":NaN' in nan
    assert math.isnan(json.loads(nan)["kwh"])
    now_ms = SLOT_END_MS + 30 * 86_400_000
    future = json.loads(break_reading(REGISTER, MalformedKind.FUTURE_TIMESTAMP, rng, now_ms=now_ms))
    assert future["ts"] == now_ms + 7 * 86_400_000

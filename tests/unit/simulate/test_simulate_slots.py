from __future__ import annotations

import json
from collections import defaultdict

import numpy as np
import pytest

from streamer.contract.errors import InvalidReading
from streamer.contract.reading import ReadingLimits, parse_reading
from streamer.simulate.faults import FaultConfig, FaultTally
from streamer.simulate.fleet import FleetModel
from streamer.simulate.slots import SlotStream, iter_slot_chunks

from .readback import tally_from_messages, ts_to_ms

START_MS = 1_795_000_000_000  # 2026-11-18 11:06:40 UTC (not on the grid)
HEAVY = FaultConfig(0.05, 0.05, 0.08, 0.05, late_max_slots=3)
LIMITS = ReadingLimits(
    max_message_bytes=16_384, max_interval_kwh=500.0, future_tolerance_ms=300_000
)


def test_tallies_match_the_messages_read_back() -> None:
    model = FleetModel(400, seed=21)
    slots = 12
    chunks = list(iter_slot_chunks(model, HEAVY, START_MS, START_MS + slots * 1_800_000))
    assert chunks[-1].is_flush
    assert sum(not c.is_flush for c in chunks) == slots
    total = FaultTally()
    for chunk in chunks:
        total = total + chunk.tally
    assert total.readings == 400 * slots
    assert total.messages == sum(len(c.messages) for c in chunks)
    assert tally_from_messages(chunks, 400 * slots) == total
    for kind, count in total.malformed_by_kind().items():
        assert count > 0, f"no {kind} in 4800 readings at 5% malformed"
    assert min(total.missing, total.duplicated, total.out_of_order) > 0


def test_every_message_gets_the_contract_verdict_its_fate_says() -> None:
    model = FleetModel(300, seed=22)
    verdicts: dict[str, int] = defaultdict(int)
    total = FaultTally()
    for chunk in iter_slot_chunks(model, HEAVY, START_MS, START_MS + 6 * 1_800_000):
        total = total + chunk.tally
        for key, value in chunk.messages:
            try:
                parse_reading(value, key, limits=LIMITS, now_ms=chunk.slot_end_ms)
                verdicts["valid"] += 1
            except InvalidReading as exc:
                verdicts[exc.reason.value] += 1
    expected = {f"{k.value}": v for k, v in total.malformed_by_kind().items() if v}
    expected["valid"] = total.clean + 2 * total.duplicated + total.out_of_order
    assert dict(verdicts) == expected


def test_same_seed_same_bytes_and_other_seed_differs() -> None:
    def stream(seed: int) -> list[list[tuple[bytes, bytes]]]:
        model = FleetModel(200, seed=seed)
        return [
            c.messages for c in iter_slot_chunks(model, HEAVY, START_MS, START_MS + 4 * 1_800_000)
        ]

    assert stream(5) == stream(5)
    assert stream(5) != stream(6)


def test_a_stream_continued_in_pieces_equals_one_run() -> None:
    model = FleetModel(150, seed=23, resolution_seconds=900)
    end_ms = START_MS + 10 * 900_000
    whole = [c.messages for c in iter_slot_chunks(model, HEAVY, START_MS, end_ms, flush=False)]
    stream = SlotStream(model, HEAVY, START_MS)
    pieces = [stream.next_chunk().messages for _ in range(10)]
    assert pieces == whole
    assert stream.pending_late > 0
    assert len(stream.flush().messages) > 0
    assert stream.pending_late == 0


def test_timestamps_are_slot_ends_in_both_forms() -> None:
    model = FleetModel(300, seed=24, resolution_seconds=900)
    forms: dict[type, int] = defaultdict(int)
    for chunk in iter_slot_chunks(model, FaultConfig.none(), START_MS, START_MS + 4 * 900_000):
        assert chunk.slot_end_ms % 900_000 == 0
        assert START_MS < chunk.slot_end_ms <= START_MS + 4 * 900_000
        for key, value in chunk.messages:
            reading = json.loads(value)
            assert key == reading["meter_id"].encode()
            forms[type(reading["ts"])] += 1
            assert ts_to_ms(reading["ts"]) == chunk.slot_end_ms
            if isinstance(reading["ts"], str):
                assert reading["ts"].endswith("+00:00")
    assert set(forms) == {int, str}
    assert 0.1 < forms[int] / (forms[int] + forms[str]) < 0.3


def test_register_meters_count_up_by_the_interval_energy() -> None:
    model = FleetModel(300, seed=25)
    slots = 48
    ends = model.slot_ends(START_MS, START_MS + slots * 1_800_000)
    expected_kwh = model.load_kwh(ends)
    registers: dict[str, list[float]] = defaultdict(list)
    intervals: dict[str, list[float]] = defaultdict(list)
    for chunk in iter_slot_chunks(model, FaultConfig.none(), START_MS, int(ends[-1])):
        for _key, value in chunk.messages:
            reading = json.loads(value)
            assert ("kwh" in reading) != ("register_kwh" in reading)
            if "register_kwh" in reading:
                registers[reading["meter_id"]].append(reading["register_kwh"])
            else:
                intervals[reading["meter_id"]].append(reading["kwh"])
    register_rows = np.flatnonzero(model.is_register)
    assert sorted(registers) == sorted(model.meter_ids[register_rows].tolist())
    for row in register_rows:
        values = np.array(registers[model.meter_ids[row]])
        assert len(values) == slots
        assert (np.diff(values) >= 0).all()
        np.testing.assert_allclose(np.diff(values), expected_kwh[row, 1:], atol=1e-6)
    for row in np.flatnonzero(~model.is_register)[:50]:
        np.testing.assert_array_equal(intervals[model.meter_ids[row]], expected_kwh[row])


@pytest.mark.parametrize("n_meters", [1, 7])
def test_tiny_fleets_work(n_meters: int) -> None:
    model = FleetModel(n_meters, seed=26)
    chunks = list(iter_slot_chunks(model, FaultConfig(), START_MS, START_MS + 3 * 1_800_000))
    assert sum(c.tally.readings for c in chunks) == 3 * n_meters

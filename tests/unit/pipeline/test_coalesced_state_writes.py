"""Coalesced state writes: a meter's record is made into bytes only when flushed, and what a
flush writes is what writing every batch would have left in the store."""

from __future__ import annotations

import logging
import random

import pytest

from streamer.pipeline.batch_processor import BatchProcessor, BatchResult
from streamer.pipeline.config import PipelineConfig
from streamer.pipeline.messages import InMessage
from streamer.pipeline.meter_record import MeterRecord
from tests.unit.pipeline.test_batch_processor import (
    NOW,
    Store,
    daily,
    explode_at,
    home,
    msg,
    processor,
    settings,
)

METERS = ("a", "b", "c")


def kwh(slot: int) -> float:
    """Values that settling rounds (the window keeps settled slots rounded in memory)."""
    return daily(slot) + 0.000123457 * slot


def batches() -> list[list[InMessage]]:
    """Two slots of every meter a batch, with a duplicate and a late reading here and there."""
    out: list[list[InMessage]] = []
    for start in range(0, 120, 2):
        batch = [msg(m, s, kwh(s)) for s in (start, start + 1) for m in METERS]
        if start % 10 == 4:
            batch.append(msg("a", start - 1, kwh(start - 1)))  # a duplicate of the last batch
        if start % 10 == 8:
            batch.append(msg("b", start - 3, 0.5))  # a late correction
        out.append(batch)
    return out


def apply(result: BatchResult, store: Store) -> None:
    for meter_id, write in result.state_writes.items():
        store[meter_id] = write.value


def test_flushed_records_equal_those_written_every_batch_and_outputs_are_unchanged() -> None:
    plain, coalesced = processor(settings()), processor(settings())
    coalesced.coalesce_state_writes = True
    plain_store, coalesced_store = Store(), Store()
    writes = forecasts = 0
    for number, batch in enumerate(batches()):
        expected = plain.process(batch, plain_store.load, NOW)
        apply(expected, plain_store)
        got = coalesced.process(batch, coalesced_store.load, NOW)
        assert got.state_writes == {}  # nothing is made into bytes before a flush
        assert coalesced.unflushed_meters == len(METERS)
        assert got.sources == expected.sources  # every meter applied, on its partition
        assert [f.to_bytes() for f in got.forecasts] == [f.to_bytes() for f in expected.forecasts]
        assert got.matches == expected.matches and got.outcomes == expected.outcomes
        forecasts += len(got.forecasts)
        if number % 3 == 2:
            assert coalesced.flush_state(got) == len(METERS)
            writes += len(got.state_writes)
            apply(got, coalesced_store)
            assert coalesced.unflushed_meters == 0
            assert coalesced_store == plain_store  # byte for byte
    final = BatchResult()
    coalesced.flush_state(final)
    apply(final, coalesced_store)
    assert coalesced_store == plain_store
    assert 0 < writes < len(batches()) * len(METERS)
    assert forecasts > 0  # (matched against their actuals in the later batches)


def test_a_flush_with_nothing_changed_writes_nothing() -> None:
    p, store = processor(settings()), Store()
    p.coalesce_state_writes = True
    first = [msg(m, s, daily(s), offset=s * 3 + i) for s in range(40) for i, m in enumerate(METERS)]
    result = p.process(first, store.load, NOW)
    p.flush_state(result)
    apply(result, store)
    before = dict(store)
    again = p.process(first, store.load, NOW)  # every reading a replay
    assert again.outcomes == {"duplicate": len(first)}
    assert p.flush_state(again) == len(METERS) and again.state_writes == {}
    assert store == before


def test_a_meter_failing_while_unflushed_goes_back_to_its_last_write(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    p, store = processor(settings()), Store()
    p.coalesce_state_writes = True
    result = p.process([msg("a", s, daily(s)) for s in range(10)], store.load, NOW)
    p.flush_state(result)
    apply(result, store)
    written = store["a"]
    p.process([msg("a", s, daily(s)) for s in range(10, 12)], store.load, NOW)  # unflushed
    explode_at(monkeypatch, 0.999)
    with caplog.at_level(logging.WARNING):
        failed = p.process([msg("a", 12, 0.999)], store.load, NOW)
    assert failed.dlq_reasons == {"processing_error": 1}
    assert "goes back to its last state write" in caplog.text
    assert p.unflushed_meters == 0 and p.flush_state(failed) == 0
    assert store["a"] is written  # the record it goes on from is the one stored


def test_without_coalescing_every_batch_writes() -> None:
    p: BatchProcessor = processor(settings())
    store = Store()
    result = p.process([msg("a", 0, 0.3)], store.load, NOW)
    assert set(result.state_writes) == {"a"} and p.unflushed_meters == 0


# --- a crash between flushes --------------------------------------------------------------------
CRASH_METERS = ("m1", "m2", "m3", "m4", "m5", "m6")
CRASH_SLOTS = 200
FLUSH_EVERY = 3


def faulty_stream() -> list[InMessage]:
    """Every meter's readings slot by slot, with gaps, duplicates, late readings filling a gap and
    late corrections; each partition's offsets count up from 0, as Kafka's do."""
    rng = random.Random(5)
    offsets: dict[int, int] = {}
    out: list[InMessage] = []
    skipped: dict[str, list[int]] = {m: [] for m in CRASH_METERS}
    for slot in range(CRASH_SLOTS):
        for number, meter in enumerate(CRASH_METERS):
            value = kwh(slot) * (1 + number / 10)
            sends: list[tuple[int, float]] = []
            draw = rng.random()
            if draw < 0.04:
                skipped[meter].append(slot)  # a gap, filled late below (or never)
            else:
                sends.append((slot, value))
                if draw > 0.97:
                    sends.append((slot, value))  # the meter reports twice
            if skipped[meter] and rng.random() < 0.3:
                late = skipped[meter].pop(0)
                if slot - late < 40:
                    sends.append((late, kwh(late) * (1 + number / 10)))
            if slot > 5 and rng.random() < 0.02:
                sends.append((slot - rng.randint(1, 4), 0.4 + number / 100))  # a correction
            for at_slot, reading in sends:
                partition = home(meter.encode())
                offset = offsets.get(partition, 0)
                offsets[partition] = offset + 1
                out.append(msg(meter, at_slot, reading, offset=offset))
    return out


def cut(messages: list[InMessage], rng: random.Random) -> list[list[InMessage]]:
    """``messages`` in batches of uneven size, in order."""
    batches: list[list[InMessage]] = []
    start = 0
    while start < len(messages):
        size = rng.choice((3, 10, 20, 40))
        batches.append(messages[start : start + size])
        start += size
    return batches


def windows(store: Store) -> dict[str, bytes]:
    """Each meter's window as bytes (the ledger beside it depends on where batches were cut)."""
    record = PipelineConfig.from_settings(settings()).record
    return {m: MeterRecord.from_bytes(v, record).state.to_bytes() for m, v in store.items()}


@pytest.mark.parametrize("trial", range(3))
def test_a_coalescing_worker_killed_between_flushes_rebuilds_the_same_windows(trial: int) -> None:
    """Killed after a flush, with offsets committed up to an earlier flush and part of the next
    flush's writes in the changelog, then restarted from the changelog and the committed offsets
    (the messages from there replayed): the windows are those of a worker never killed."""
    messages = faulty_stream()
    steady, steady_store = processor(settings()), Store()
    for batch in cut(messages, random.Random(99)):
        apply(steady.process(batch, steady_store.load, NOW), steady_store)
    expected = windows(steady_store)
    assert len(expected) == len(CRASH_METERS)

    rng = random.Random(trial)
    crashy, store = processor(settings()), Store()
    crashy.coalesce_state_writes = True
    flushes: list[tuple[int, Store, dict[str, bytes]]] = []  # (messages done, changelog, writes)
    done = 0
    kill_at = rng.randrange(len(messages) // 4, len(messages) * 3 // 4)
    for number, batch in enumerate(cut(messages[:kill_at], rng), start=1):
        result = crashy.process(batch, store.load, NOW)
        done += len(batch)
        if number % FLUSH_EVERY == 0:
            crashy.flush_state(result)
            writes = {m: w.value for m, w in result.state_writes.items()}
            store.update(writes)
            flushes.append((done, Store(store), writes))
    assert len(flushes) >= 3
    landed = rng.randrange(1, len(flushes) - 1)  # the last flush whose writes all landed
    committed = flushes[rng.randrange(0, landed + 1)][0]  # offsets committed with a flush before
    changelog = Store(flushes[landed][1])
    following = flushes[landed + 1][2]  # ... and part of the next flush's writes landed too
    for meter_id in sorted(following)[: len(following) // 2]:
        changelog[meter_id] = following[meter_id]

    restarted = processor(settings())
    restarted.coalesce_state_writes = True
    for batch in cut(messages[committed:], rng):
        result = restarted.process(batch, changelog.load, NOW)
        restarted.flush_state(result)
        apply(result, changelog)
    assert windows(changelog) == expected

"""Coalesced state writes: a meter's record is made into bytes only when flushed, and what a
flush writes is what writing every batch would have left in the store."""

from __future__ import annotations

import logging

import pytest

from streamer.pipeline.batch_processor import BatchProcessor, BatchResult
from streamer.pipeline.messages import InMessage
from tests.unit.pipeline.test_batch_processor import (
    NOW,
    Store,
    daily,
    explode_at,
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

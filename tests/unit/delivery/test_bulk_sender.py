"""BulkSender without a broker: grouping by partition, the default partitioner, batch splits and
retries, against a stand-in for the aiokafka producer's batch API."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka.partitioner import DefaultPartitioner

from streamer.delivery import bulk_sender
from streamer.delivery.bulk_sender import BulkSender, OutRecord


class FakeBatch:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.records: list[tuple[bytes | None, bytes | None]] = []
        self.timestamps: list[int | None] = []
        self.closed = False

    def append(
        self, *, key: bytes | None, value: bytes | None, timestamp: int | None
    ) -> object | None:
        if self.closed:
            return None
        if len(self.records) >= self.capacity:
            self.close()  # as aiokafka's BatchBuilder does when full
            return None
        self.records.append((key, value))
        self.timestamps.append(timestamp)
        return object()

    def close(self) -> None:
        self.closed = True


class FakeProducer:
    """Records each submitted batch; fails the first ``failures`` submissions' deliveries."""

    def __init__(self, partitions: int = 4, capacity: int = 3, failures: int = 0) -> None:
        self.partitions = partitions
        self.capacity = capacity
        self.failures = failures
        self.sent: list[tuple[str, int, list[tuple[bytes | None, bytes | None]]]] = []
        self.timestamps: list[int | None] = []
        self.open_batches_submitted = 0

    async def partitions_for(self, topic: str) -> set[int]:
        return set(range(self.partitions))

    def create_batch(self) -> FakeBatch:
        return FakeBatch(self.capacity)

    async def send_batch(self, batch: FakeBatch, topic: str, *, partition: int) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.open_batches_submitted += not batch.closed
        if self.failures:
            self.failures -= 1
            future.set_exception(RuntimeError("broker away"))
        else:
            self.sent.append((topic, partition, batch.records))
            self.timestamps.extend(batch.timestamps)
            future.set_result(None)
        return future


def delivered(producer: FakeProducer) -> dict[tuple[str, int], list[bytes | None]]:
    out: dict[tuple[str, int], list[bytes | None]] = {}
    for topic, partition, records in producer.sent:
        out.setdefault((topic, partition), []).extend(v for _, v in records)
    return out


def test_records_go_to_their_partition_in_order_and_keyed_ones_by_murmur2() -> None:
    producer = FakeProducer(capacity=100)
    keys = [f"m-{i}".encode() for i in range(20)]
    records = [OutRecord("changelog", 2, b"a", b"1"), OutRecord("changelog", 2, b"b", b"2")]
    records += [OutRecord("forecasts", None, k, k + b"!") for k in keys]
    assert asyncio.run(BulkSender(producer).send(records)) == 22
    got = delivered(producer)
    assert got[("changelog", 2)] == [b"1", b"2"]
    partitioner = DefaultPartitioner()
    for key in keys:
        expected = partitioner(key, [0, 1, 2, 3], [0, 1, 2, 3])
        assert key + b"!" in got[("forecasts", expected)]


def test_a_full_batch_is_sent_and_another_started() -> None:
    producer = FakeProducer(capacity=3)
    records = [OutRecord("t", 0, None, bytes([i])) for i in range(7)]
    asyncio.run(BulkSender(producer).send(records))
    assert [len(r) for _, _, r in producer.sent] == [3, 3, 1]
    assert delivered(producer)[("t", 0)] == [bytes([i]) for i in range(7)]
    # the last, partly filled batch is closed too: the producer sends it without lingering
    assert producer.open_batches_submitted == 0


def test_a_failed_delivery_is_retried_until_acknowledged(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bulk_sender, "RETRY_PAUSE_SECONDS", 0.0)
    producer = FakeProducer(capacity=10, failures=2)
    records = [OutRecord("t", 1, None, b"x"), OutRecord("t", 1, None, b"y")]
    asyncio.run(BulkSender(producer).send(records))
    assert delivered(producer) == {("t", 1): [b"x", b"y"]}  # at least once: here exactly once


def test_a_record_too_large_for_any_batch_says_which_setting_to_raise() -> None:
    producer = FakeProducer(capacity=0)
    with pytest.raises(ValueError, match="STREAMER_PRODUCER_BATCH_BYTES"):
        asyncio.run(BulkSender(producer).send([OutRecord("t", 0, None, b"big")]))


def test_a_record_keeps_its_timestamp_and_others_get_the_producers() -> None:
    producer = FakeProducer(capacity=100)
    records = [
        OutRecord("t", 0, b"a", b"1", None, 1_795_392_061_000),
        OutRecord("t", 0, b"b", b"2"),
    ]
    asyncio.run(BulkSender(producer).send(records))
    assert producer.timestamps == [1_795_392_061_000, None]

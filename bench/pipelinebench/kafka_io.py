"""Kafka from the benchmark's side: produce a backlog, the raw consume ceiling, offsets, lag."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import GroupCoordinatorNotAvailableError

from streamer.simulate.wire import Message


def new_producer(bootstrap: str, linger_ms: int = 20) -> Any:
    """Fast, still safe: acks from the leader, 20 ms linger, 256 KiB batches."""
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        client_id="streamer-bench",
        acks=1,
        linger_ms=linger_ms,
        max_batch_size=256 * 1024,
    )


async def send_all(producer: Any, topic: str, messages: Sequence[Message]) -> None:
    """Queue every message without awaiting each, then wait for all acknowledgements."""
    futures = [await producer.send(topic, value=value, key=key) for key, value in messages]
    await asyncio.gather(*futures)


async def produce(bootstrap: str, topic: str, messages: Sequence[Message]) -> float:
    """Send ``messages`` to ``topic``; returns the seconds it took."""
    producer = new_producer(bootstrap)
    await producer.start()
    try:
        started = time.perf_counter()
        await send_all(producer, topic, messages)
        await producer.flush()
        return time.perf_counter() - started
    finally:
        await producer.stop()


@dataclass(frozen=True, slots=True)
class ConsumeRun:
    messages: int
    seconds: float  # first getmany call to the last message

    @property
    def per_second(self) -> float:
        return self.messages / self.seconds if self.seconds > 0 else 0.0


async def raw_consume(
    bootstrap: str, topic: str, expected: int, timeout_seconds: float
) -> ConsumeRun:
    """The ceiling: aiokafka ``getmany`` from the beginning of every partition, no decoding.

    The clock runs from the first ``getmany`` call (after the consumer has connected and
    been assigned the partitions) until ``expected`` records have been received.
    """
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,  # no group: every partition, from the beginning
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        client_id="streamer-bench-ceiling",
    )
    await consumer.start()
    try:
        while not consumer.assignment():  # metadata on its way  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        count = 0
        deadline = time.monotonic() + timeout_seconds
        started = time.perf_counter()
        while count < expected:
            if time.monotonic() > deadline:
                raise TimeoutError(f"raw consume got {count} of {expected} messages from {topic}")
            batches = await consumer.getmany(timeout_ms=500)
            count += sum(len(records) for records in batches.values())
        return ConsumeRun(count, time.perf_counter() - started)
    finally:
        await consumer.stop()


class OffsetWatcher:
    """End offsets of topics and committed offsets of consumer groups, from one client each."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, group_id=None, client_id="streamer-bench-offsets"
        )
        self._admin = AIOKafkaAdminClient(
            bootstrap_servers=bootstrap, client_id="streamer-bench-admin"
        )
        self._partitions: dict[str, list[TopicPartition]] = {}

    async def start(self) -> None:
        await self._consumer.start()
        await self._admin.start()

    async def stop(self) -> None:
        await self._consumer.stop()
        await self._admin.close()

    async def partitions(self, topic: str) -> list[TopicPartition]:
        found = self._partitions.get(topic)
        if found is None:
            described = await self._admin.describe_topics([topic])
            ids = [p["partition"] for d in described for p in d.get("partitions", [])]
            found = [TopicPartition(topic, p) for p in sorted(ids)]
            if not found:
                raise RuntimeError(f"topic {topic} has no partitions (does it exist?)")
            self._partitions[topic] = found
        return found

    async def end_total(self, topic: str) -> int:
        return sum((await self.end_offsets(topic)).values())

    async def end_offsets(self, topic: str) -> dict[int, int]:
        """The end offset of each partition of ``topic``."""
        offsets = await self._consumer.end_offsets(await self.partitions(topic))
        return {tp.partition: int(offset) for tp, offset in offsets.items()}

    async def beginning_offsets(self, topic: str) -> dict[int, int]:
        """The first offset still in the log of each partition of ``topic``."""
        offsets = await self._consumer.beginning_offsets(await self.partitions(topic))
        return {tp.partition: int(offset) for tp, offset in offsets.items()}

    async def group_state(self, group: str) -> tuple[str, int]:
        """The consumer group's state (``Stable``, ``PreparingRebalance`` ...) and member count;
        ``("Unknown", 0)`` while the broker has no coordinator for it yet (a fresh broker whose
        offsets topic is still being created)."""
        try:
            responses = await self._admin.describe_consumer_groups([group])
        except GroupCoordinatorNotAvailableError:
            return "Unknown", 0
        for response in responses:
            for described in response.groups:
                # (error_code, group, state, protocol_type, protocol, members, ...)
                if described[1] == group:
                    return str(described[2]), len(described[5])
        return "Unknown", 0

    async def committed_lag(self, group: str, topic: str) -> int:
        """Messages of ``topic`` not yet committed by ``group`` (end offsets minus committed)."""
        partitions = await self.partitions(topic)
        ends = await self._consumer.end_offsets(partitions)
        committed = await self._admin.list_consumer_group_offsets(group, partitions=partitions)
        lag = 0
        for tp in partitions:
            meta = committed.get(tp)
            done = meta.offset if meta is not None and meta.offset >= 0 else 0
            lag += ends[tp] - done
        return int(lag)


async def sample_values(
    bootstrap: str, topic: str, max_records: int, timeout_seconds: float = 30.0
) -> list[tuple[bytes | None, bytes | None]]:
    """Up to ``max_records`` (key, value) pairs of ``topic``, from the start of its partitions."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        client_id="streamer-bench-sample",
    )
    await consumer.start()
    deadline = time.monotonic() + timeout_seconds
    try:
        while not consumer.assignment():
            if time.monotonic() > deadline:
                raise TimeoutError(f"no partitions of {topic} assigned (does it exist?)")
            await asyncio.sleep(0.01)
        ends = await consumer.end_offsets(list(consumer.assignment()))
        want = min(max_records, int(sum(ends.values())))
        out: list[tuple[bytes | None, bytes | None]] = []
        while len(out) < want and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500, max_records=want - len(out))
            for records in batches.values():
                out.extend((r.key, r.value) for r in records)
        return out[:max_records]
    finally:
        await consumer.stop()


async def read_between(
    bootstrap: str,
    topic: str,
    start: dict[int, int],
    end: dict[int, int],
    timeout_seconds: float = 60.0,
) -> list[tuple[bytes | None, bytes | None, int]]:
    """(key, value, timestamp ms) of the records of ``topic`` from offsets ``start`` to ``end``
    (exclusive) of each partition."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        client_id="streamer-bench-read",
    )
    await consumer.start()
    try:
        wanted = {
            TopicPartition(topic, p): (start.get(p, 0), stop)
            for p, stop in end.items()
            if stop > start.get(p, 0)
        }
        if not wanted:
            return []
        consumer.assign(list(wanted))
        for tp, (first, _) in wanted.items():
            consumer.seek(tp, first)
        out: list[tuple[bytes | None, bytes | None, int]] = []
        open_parts = set(wanted)
        deadline = time.monotonic() + timeout_seconds
        while open_parts:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"reading {topic} back: {len(out)} records read, "
                    f"{len(open_parts)} partitions unfinished"
                )
            batches = await consumer.getmany(*open_parts, timeout_ms=500)
            for tp, records in batches.items():
                stop = wanted[tp][1]
                out.extend((r.key, r.value, r.timestamp) for r in records if r.offset < stop)
            for tp in list(open_parts):
                if await consumer.position(tp) >= wanted[tp][1]:
                    open_parts.discard(tp)
        return out
    finally:
        await consumer.stop()

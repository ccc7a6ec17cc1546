"""Produce to and read back from topics of the test broker with plain aiokafka."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaError


@dataclass(frozen=True)
class Record:
    key: bytes | None
    value: bytes | None
    partition: int
    offset: int


async def produce(
    bootstrap: str, topic: str, messages: Sequence[tuple[bytes | None, bytes | None]]
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=10, acks="all")
    await producer.start()
    try:
        futures = [await producer.send(topic, value=value, key=key) for key, value in messages]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def read_topic(
    bootstrap: str,
    topic: str,
    *,
    until: Callable[[list[Record]], bool],
    timeout_seconds: float = 60.0,
    isolation_level: str = "read_uncommitted",
    client_options: Mapping[str, Any] | None = None,
) -> list[Record]:
    """Read ``topic`` from the beginning until ``until(records)`` holds or the time is up.

    ``isolation_level="read_committed"`` reads only committed transactions (exactly_once).
    ``client_options`` go to the consumer as they are (e.g. TLS/SASL settings).
    """
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
        isolation_level=isolation_level,
        **(client_options or {}),
    )
    await consumer.start()
    records: list[Record] = []
    deadline = time.monotonic() + timeout_seconds
    try:
        while time.monotonic() < deadline and not until(records):
            batch = await consumer.getmany(timeout_ms=500, max_records=5000)
            for messages in batch.values():
                records.extend(Record(m.key, m.value, m.partition, m.offset) for m in messages)
    finally:
        await consumer.stop()
    return records


async def read_all(bootstrap: str, topic: str, *, seconds: float) -> list[Record]:
    """Every record of ``topic`` read from the beginning within ``seconds``."""
    return await read_topic(bootstrap, topic, until=lambda r: False, timeout_seconds=seconds)


async def group_lag_by_partition(bootstrap: str, group_id: str, topic: str) -> dict[int, int]:
    """Messages of each partition of ``topic`` not yet committed by consumer group ``group_id``."""
    from aiokafka import TopicPartition

    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group_id, enable_auto_commit=False
    )
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        if not partitions:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        ends = await consumer.end_offsets(tps)
        lags = {}
        for tp in tps:
            committed = await consumer.committed(tp)
            lags[tp.partition] = ends[tp] - (committed or 0)
        return lags
    finally:
        await consumer.stop()


async def group_lag(bootstrap: str, group_id: str, topic: str) -> int:
    """Messages of ``topic`` not yet committed by consumer group ``group_id``."""
    return sum((await group_lag_by_partition(bootstrap, group_id, topic)).values())


async def wait_caught_up(
    bootstrap: str,
    group_id: str,
    topic: str,
    *,
    timeout_seconds: float = 120.0,
    stall_seconds: float | None = None,
) -> None:
    """Wait until ``group_id`` has committed all of ``topic``.

    Gives up after ``timeout_seconds``, or sooner when ``stall_seconds`` is given and the lag
    has not fallen for that long (a loaded machine is slow, a stalled commit does not move). The
    error shows the lag per partition and how it moved.
    """
    started = time.monotonic()
    deadline = started + timeout_seconds
    lags: dict[int, int] = {}
    history: list[str] = []
    next_sample = started
    lowest: int | None = None
    progressed = started
    why = f"after {timeout_seconds:.0f} s"
    while time.monotonic() < deadline:
        try:
            lags = await group_lag_by_partition(bootstrap, group_id, topic)
        except KafkaError as exc:  # e.g. a broker just restarted: ask again
            history.append(f"{time.monotonic() - started:.0f}s: {type(exc).__name__}")
            await asyncio.sleep(1.0)
            continue
        lag = sum(lags.values())
        if lag == 0:
            return
        now = time.monotonic()
        if lowest is None or lag < lowest:
            lowest, progressed = lag, now
        elif stall_seconds is not None and now - progressed > stall_seconds:
            why = f"with no progress for {stall_seconds:.0f} s ({now - started:.0f} s in all)"
            break
        if now >= next_sample:
            history.append(f"{now - started:.0f}s: {lag}")
            next_sample += 10.0
        await asyncio.sleep(1.0)
    raise AssertionError(
        f"group {group_id} still {sum(lags.values())} messages behind on {topic} {why}; "
        f"by partition {lags}; lag every 10 s: {', '.join(history)}"
    )


async def last_values(
    bootstrap: str, topic: str, *, isolation_level: str = "read_uncommitted"
) -> dict[bytes, bytes | None]:
    """The compacted view of ``topic``: the last value per key (None for a tombstone)."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        isolation_level=isolation_level,
    )
    await consumer.start()
    try:
        from aiokafka import TopicPartition

        partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in partitions]
        ends = await consumer.end_offsets(tps)
        values: dict[bytes, bytes | None] = {}
        remaining = {tp for tp in tps if ends[tp] > 0}
        deadline = time.monotonic() + 60
        while remaining and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500, max_records=10000)
            for messages in batch.values():
                for m in messages:
                    assert m.key is not None
                    values[m.key] = m.value
            # by position, not by the last record: transaction markers take offsets too
            for tp in list(remaining):
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
        assert not remaining, f"could not read {topic} to its end"
        return values
    finally:
        await consumer.stop()

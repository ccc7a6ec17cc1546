"""A batch's outputs sent as one Kafka record batch per topic partition (at-least-once mode).

faust's ``send_soon`` queues every message through its producer buffer, one ``send`` coroutine
each; at a few thousand messages a batch that costs more than the stream processing itself.
Here the records of a micro-batch are appended to aiokafka ``BatchBuilder`` s (one per topic
partition) and submitted with ``send_batch``: a few microseconds a record. :meth:`send` returns
once Kafka acknowledged every record, retrying what failed, so the caller may then let its
input offsets be committed.

Keyed records without a partition get the one aiokafka's default partitioner (murmur2) would
give, so consumers see the same key-to-partition mapping as with ``send_soon``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any, NamedTuple

from aiokafka.partitioner import DefaultPartitioner

log = logging.getLogger(__name__)

RETRY_PAUSE_SECONDS = 1.0


class OutRecord(NamedTuple):
    topic: str
    partition: int | None  # None: by key, as the default partitioner would
    key: bytes | None
    value: bytes | None
    # the readings partition the record follows from (exactly_once: its transaction); None when
    # it follows from no single one
    source: int | None = None
    # the record's timestamp (epoch ms); None: the producer's clock when it is sent
    timestamp_ms: int | None = None


#: a record as batched: key, value, timestamp
_Item = tuple[bytes | None, bytes | None, int | None]


class BulkSender:
    """Sends records through an aiokafka producer in per-partition record batches."""

    def __init__(self, producer: Any) -> None:
        self._producer = producer
        self._partitioner = DefaultPartitioner()
        self._partitions: dict[str, list[int]] = {}

    @property
    def producer(self) -> Any:
        return self._producer

    async def _partitions_of(self, topic: str) -> list[int]:
        partitions = self._partitions.get(topic)
        if partitions is None:
            partitions = sorted(await self._producer.partitions_for(topic))
            self._partitions[topic] = partitions
        return partitions

    async def _group(self, records: Iterable[OutRecord]) -> dict[tuple[str, int], list[_Item]]:
        groups: dict[tuple[str, int], list[_Item]] = {}
        for record in records:
            partition = record.partition
            if partition is None:
                partitions = self._partitions.get(record.topic)
                if partitions is None:  # once per topic: no await per record
                    partitions = await self._partitions_of(record.topic)
                partition = self._partitioner(record.key, partitions, partitions)
            groups.setdefault((record.topic, partition), []).append(
                (record.key, record.value, record.timestamp_ms)
            )
        return groups

    async def submit(self, records: Iterable[OutRecord]) -> list[asyncio.Future[Any]]:
        """Hand ``records`` to the producer; the futures of their record batches (no retry:
        for a transaction, where a failed send fails the whole transaction)."""
        futures: list[asyncio.Future[Any]] = []
        for group in (await self._group(records)).items():
            futures.extend(await self._submit(*group))
        return futures

    async def send(self, records: Iterable[OutRecord]) -> int:
        """Send ``records``; return when all are acknowledged. Returns how many were sent."""
        groups = await self._group(records)
        count = sum(len(items) for items in groups.values())
        pending = list(groups.items())
        while pending:
            failed: list[tuple[tuple[str, int], list[_Item]]] = []
            submitted = [(group, await self._submit(*group)) for group in pending]
            for group, futures in submitted:
                results = await asyncio.gather(*futures, return_exceptions=True)
                errors = [r for r in results if isinstance(r, BaseException)]
                if errors:
                    log.warning(
                        "sending %d records to %s[%d] failed (%s); retrying in %.0f s",
                        len(group[1]),
                        group[0][0],
                        group[0][1],
                        errors[0],
                        RETRY_PAUSE_SECONDS,
                    )
                    failed.append(group)
            if failed:
                await asyncio.sleep(RETRY_PAUSE_SECONDS)
            pending = failed
        return count

    async def _submit(
        self, where: tuple[str, int], items: list[_Item]
    ) -> list[asyncio.Future[Any]]:
        topic, partition = where
        producer = self._producer
        futures: list[asyncio.Future[Any]] = []
        batch = producer.create_batch()
        filled = 0
        for key, value, timestamp in items:
            if batch.append(key=key, value=value, timestamp=timestamp) is None:
                if filled == 0:
                    raise _too_large(topic, value)
                futures.append(await producer.send_batch(batch, topic, partition=partition))
                batch = producer.create_batch()
                filled = 0
                if batch.append(key=key, value=value, timestamp=timestamp) is None:
                    raise _too_large(topic, value)
            filled += 1
        if filled:
            # closed: complete, so the producer sends it at once instead of lingering for more
            batch.close()
            futures.append(await producer.send_batch(batch, topic, partition=partition))
        return futures


def _too_large(topic: str, value: bytes | None) -> ValueError:
    return ValueError(
        f"a record of {len(value or b'')} bytes for {topic} does not fit in one producer "
        "batch; raise STREAMER_PRODUCER_BATCH_BYTES"
    )

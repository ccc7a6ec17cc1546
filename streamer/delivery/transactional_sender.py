"""exactly_once delivery: a batch's outputs, state writes and input offsets in one transaction
per readings partition.

Each readings partition has its own transactional producer, with a transactional id made of the
application id, the readings topic and the partition (``streamer-worker-meter-readings-3``).
When a partition moves to another worker, that worker's producer for it starts with the same id:
Kafka then aborts any transaction the previous owner left open and fences it, so a worker that
lost a partition (crashed, or only slow) can never commit for it again. This is the design of
Kafka Streams' first exactly-once mode; faust-streaming 0.15.3's own exactly-once mode cannot
be used because it sends records of topics the worker does not consume outside its
transactions.

One transaction holds, for the readings of one partition in a batch: the forecasts, dead
letters, status events and drift reports they caused, the state and latest-forecast changelog
records of their meters, and the consumer group's next offset for the partition. It commits
all of it or none. The worker's consumer reads with ``isolation_level=read_committed``, so a
restored table never holds an aborted state write; consumers of the output topics that read
committed see every forecast exactly once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from aiokafka.errors import ProducerFenced
from aiokafka.structs import TopicPartition

from streamer.delivery.bulk_sender import RETRY_PAUSE_SECONDS, BulkSender, OutRecord

log = logging.getLogger(__name__)


def transactional_id(app_id: str, readings_topic: str, partition: int) -> str:
    """The transactional id of the producer for one readings partition."""
    return f"{app_id}-{readings_topic}-{partition}"


class TransactionalSender:
    """Commits a batch's records with its input offsets, partition by partition.

    ``make_producer(transactional_id)`` returns an unstarted aiokafka producer configured with
    that transactional id (and the broker's connection and security settings).
    """

    def __init__(
        self,
        make_producer: Callable[[str], Any],
        *,
        app_id: str,
        readings_topic: str,
        owns: Callable[[int], bool] = lambda partition: True,
    ) -> None:
        self._make_producer = make_producer
        self._owns = owns
        self._app_id = app_id
        self._readings_topic = readings_topic
        # one sender (and its producer) per partition: partition lookups are cached across batches
        self._senders: dict[int, BulkSender] = {}
        self._starting: dict[int, asyncio.Lock] = {}
        self.fenced = 0
        self.aborted = 0

    async def _sender(self, partition: int) -> BulkSender:
        lock = self._starting.setdefault(partition, asyncio.Lock())
        async with lock:
            sender = self._senders.get(partition)
            if sender is None:
                producer = self._make_producer(
                    transactional_id(self._app_id, self._readings_topic, partition)
                )
                # init_transactions: aborts what a previous owner left open, fences it
                await producer.start()
                sender = self._senders[partition] = BulkSender(producer)
            return sender

    async def _drop(self, partition: int) -> None:
        sender = self._senders.pop(partition, None)
        if sender is not None:
            try:
                await sender.producer.stop()
            except Exception as exc:  # closing a broken producer must not stop the worker
                log.debug("stopping the producer of partition %d: %s", partition, exc)

    async def commit(
        self,
        records_by_partition: Mapping[int, Sequence[OutRecord]],
        next_offsets: Mapping[int, int],
    ) -> set[int]:
        """Commit each partition's records with its next offset, concurrently; returns the
        partitions that committed. A partition whose producer was fenced while another worker
        owns it is left out and its producer closed; other failures are retried until they
        commit (a broker outage must not let the batch pass)."""
        partitions = sorted(next_offsets)
        results = await asyncio.gather(
            *(
                self._commit_one(p, records_by_partition.get(p, ()), next_offsets[p])
                for p in partitions
            )
        )
        return {p for p, ok in zip(partitions, results, strict=True) if ok}

    async def _commit_one(
        self, partition: int, records: Sequence[OutRecord], next_offset: int
    ) -> bool:
        offsets = {TopicPartition(self._readings_topic, partition): next_offset}
        while True:
            try:
                sender = await self._sender(partition)
                producer = sender.producer
                async with producer.transaction():
                    await asyncio.gather(*await sender.submit(records))  # raises the first failure
                    await producer.send_offsets_to_transaction(offsets, self._app_id)
                return True
            except ProducerFenced:
                self.fenced += 1
                await self._drop(partition)
                if self._owns(partition):
                    # a producer kept from an earlier ownership: a fresh one fences the other
                    log.warning(
                        "the producer of %s[%d] was fenced; retrying with a new one",
                        self._readings_topic,
                        partition,
                    )
                    continue
                log.warning(
                    "the producer of %s[%d] was fenced: another worker owns the partition "
                    "now and redoes this batch's part of it",
                    self._readings_topic,
                    partition,
                )
                return False
            except Exception as exc:
                self.aborted += 1
                log.warning(
                    "transaction for %s[%d] failed (%s: %s); retrying in %.0f s",
                    self._readings_topic,
                    partition,
                    type(exc).__name__,
                    exc,
                    RETRY_PAUSE_SECONDS,
                )
                await self._drop(partition)
                await asyncio.sleep(RETRY_PAUSE_SECONDS)

    async def release(self, partitions: set[int]) -> None:
        """Close the producers of partitions this worker no longer owns."""
        for partition in partitions:
            await self._drop(partition)

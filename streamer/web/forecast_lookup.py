"""A meter's newest forecast read back from the forecasts topic, where the latest-forecast
table holds only a pointer to it (after a recovery: :mod:`streamer.delivery.latest_forecast`).

One consumer, in no group, started on the first lookup: it seeks the pointer's partition to the
first record at or after the forecast's ``issued_at`` (``offsets_for_times``) and reads on until
it finds the meter's record with that timestamp, or passes the timestamp. The records stamped
with one ``issued_at`` are one batch's forecasts of that partition, so a lookup reads a few
hundred records at most. Lookups are made one at a time; each answer is put back into the table,
so a meter is looked up once after a recovery.
"""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaConsumer, TopicPartition

from streamer.settings import Settings
from streamer.whole_topic import groupless_consumer, start_client

log = logging.getLogger(__name__)

#: the most records a lookup reads before it gives up (a batch's forecasts of one partition
#: are at most STREAMER_BATCH_MAX_EVENTS)
MAX_SCANNED = 50_000
#: how long one fetch of a lookup waits for records
FETCH_TIMEOUT_MS = 2_000


class ForecastNotFound(LookupError):
    """The pointed-at forecast is not in the topic (retention deleted it, or it is not there)."""


class ForecastLookup:
    """Reads forecasts back from ``topic`` by partition, key and timestamp."""

    def __init__(self, settings: Settings, topic: str) -> None:
        self._settings = settings
        self._topic = topic
        self._consumer: AIOKafkaConsumer | None = None
        self._lock = asyncio.Lock()

    async def find(self, partition: int, key: bytes, issued_ms: int) -> bytes:
        """The value of the record of ``partition`` keyed ``key`` with timestamp
        ``issued_ms`` (the newest of them, should there be several); raises
        :class:`ForecastNotFound`."""
        async with self._lock:
            consumer = await self._started()
            tp = TopicPartition(self._topic, partition)
            consumer.assign([tp])
            found = (await consumer.offsets_for_times({tp: issued_ms})).get(tp)
            if found is None:
                raise ForecastNotFound(f"no record at or after {issued_ms} ms in {tp}")
            consumer.seek(tp, found.offset)
            end = (await consumer.end_offsets([tp]))[tp]
            value: bytes | None = None
            scanned = 0
            while await consumer.position(tp) < end and scanned < MAX_SCANNED:
                batch = await consumer.getmany(tp, timeout_ms=FETCH_TIMEOUT_MS)
                records = batch.get(tp, [])
                if not records:
                    break
                for record in records:
                    scanned += 1
                    if record.timestamp > issued_ms:
                        return _found(value, tp, key, issued_ms)
                    if record.key == key and record.timestamp == issued_ms:
                        value = record.value
            return _found(value, tp, key, issued_ms)

    async def _started(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            settings = self._settings
            consumer = groupless_consumer(
                settings,
                isolation_level="read_committed"
                if settings.processing_guarantee == "exactly_once"
                else "read_uncommitted",
            )
            await start_client(consumer, settings)
            self._consumer = consumer
        return self._consumer

    async def stop(self) -> None:
        if self._consumer is not None:
            consumer, self._consumer = self._consumer, None
            await consumer.stop()


def _found(value: bytes | None, tp: TopicPartition, key: bytes, issued_ms: int) -> bytes:
    if value is None:
        raise ForecastNotFound(f"no record keyed {key!r} at {issued_ms} ms in {tp}")
    return value

"""Topics every process reads whole, from the beginning, in no consumer group (the control
topic, group membership): a consumer to follow one, a read of one to its end, and a client start
that turns a refusing broker into one sentence; and the group-less consumer they (and the
forecast read-back of ``GET /meters/{id}/forecast``) are built from."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaConnectionError

from streamer.kafka_security import (
    KafkaSecurityError,
    aiokafka_security,
    explain_connection_failure,
)
from streamer.settings import Settings


async def start_client(client: AIOKafkaConsumer | AIOKafkaProducer, settings: Settings) -> None:
    """Start a client; a broker that refuses it is one sentence, not a traceback."""
    try:
        await client.start()
    except KafkaConnectionError:
        await client.stop()
        problem = await explain_connection_failure(settings)
        raise KafkaSecurityError(
            problem[0]
            if problem is not None
            else f"no Kafka broker answers at {settings.kafka_bootstrap}; start one with "
            "`streamer kafka start` or set STREAMER_KAFKA_BOOTSTRAP"
        ) from None


def groupless_consumer(
    settings: Settings, *topics: str, isolation_level: str = "read_uncommitted"
) -> AIOKafkaConsumer:
    """A consumer in no group that commits nothing, not started: subscribed to ``topics`` from
    their beginning, or (none given) for partitions assigned and sought by its user."""
    return AIOKafkaConsumer(
        *topics,
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        isolation_level=isolation_level,
        **aiokafka_security(settings),
    )


@asynccontextmanager
async def following(settings: Settings, topic: str) -> AsyncIterator[AIOKafkaConsumer]:
    """A started consumer of every partition of ``topic`` from its beginning (iterate it to
    follow the topic), stopped when the block ends."""
    consumer = groupless_consumer(settings, topic)
    await consumer.start()
    try:
        yield consumer
    finally:
        await consumer.stop()


async def read_whole_topic(settings: Settings, topic: str) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record ``topic`` holds now, read to its end (in order within each partition, so
    within each key); none when the topic does not exist."""
    consumer = groupless_consumer(settings)
    await start_client(consumer, settings)
    try:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:  # the consumer's cluster view is empty until a metadata update
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        records: list[ConsumerRecord[bytes, bytes]] = []
        if not tps:
            return records
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            batch = await consumer.getmany(*tps, timeout_ms=1000)
            for part in batch.values():
                records.extend(part)
        return records
    finally:
        await consumer.stop()

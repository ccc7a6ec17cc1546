"""Read and publish model assignments on the control topic (plain aiokafka, no group)."""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaConnectionError

from streamer.kafka_security import (
    KafkaSecurityError,
    aiokafka_security,
    explain_connection_failure,
)
from streamer.rollout.assignment import CONTROL_KEY, ControlMessageError, ModelAssignment
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


async def read_current(settings: Settings) -> ModelAssignment | None:
    """The newest valid assignment on the control topic (None when there is none)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=None,
        enable_auto_commit=False,
        **aiokafka_security(settings),
    )
    await start_client(consumer, settings)
    try:
        tp = TopicPartition(settings.control_topic, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        end = (await consumer.end_offsets([tp]))[tp]
        current: ModelAssignment | None = None
        while end and await consumer.position(tp) < end:
            batch = await consumer.getmany(tp, timeout_ms=1000)
            for message in batch.get(tp, []):
                if message.value is None:
                    continue
                try:
                    current = ModelAssignment.from_bytes(message.value)
                except ControlMessageError:
                    continue
        return current
    finally:
        await consumer.stop()


async def publish(settings: Settings, assignment: ModelAssignment) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap, acks="all", **aiokafka_security(settings)
    )
    await start_client(producer, settings)
    try:
        await producer.send_and_wait(
            settings.control_topic, assignment.to_bytes(), key=CONTROL_KEY, partition=0
        )
    finally:
        await producer.stop()

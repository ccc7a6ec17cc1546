"""Read and publish model assignments on the control topic (plain aiokafka, no group)."""

from __future__ import annotations

from aiokafka import AIOKafkaProducer

from streamer.kafka_security import aiokafka_security
from streamer.rollout.assignment import CONTROL_KEY, ControlMessageError, ModelAssignment
from streamer.settings import Settings
from streamer.whole_topic import read_whole_topic, start_client


async def read_current(settings: Settings) -> ModelAssignment | None:
    """The newest valid assignment on the control topic (None when there is none)."""
    current: ModelAssignment | None = None
    for message in await read_whole_topic(settings, settings.control_topic):
        if message.value is None:
            continue
        try:
            current = ModelAssignment.from_bytes(message.value)
        except ControlMessageError:
            continue
    return current


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

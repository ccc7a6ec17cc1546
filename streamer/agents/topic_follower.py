"""A consumer of a whole topic, from its beginning, in no consumer group: every worker reads
every record (the control topic, group membership), each with its own consumer."""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer

from streamer.kafka_security import aiokafka_security
from streamer.settings import Settings


def whole_topic_consumer(settings: Settings, topic: str) -> AIOKafkaConsumer:
    """Not started; iterate it after ``await consumer.start()`` and stop it after."""
    return AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        **aiokafka_security(settings),
    )

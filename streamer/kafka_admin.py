"""Create streamer's topics with the configured partition count, and check existing ones."""

from __future__ import annotations

import asyncio
import logging

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, KafkaError, TopicAlreadyExistsError

from streamer.errors import StreamerError
from streamer.kafka_security import aiokafka_security, explain_connection_failure
from streamer.settings import Settings
from streamer.tables import changelog_topics

log = logging.getLogger(__name__)


class TopicSetupError(StreamerError):
    """Topics cannot be created or have a shape streamer cannot work with."""


def topic_names(settings: Settings) -> list[str]:
    return [
        settings.readings_topic,
        settings.forecasts_topic,
        settings.dlq_topic,
        settings.status_topic,
        settings.drift_topic,
    ]


def wanted_topics(settings: Settings) -> list[NewTopic]:
    """Every topic a worker needs: its inputs and outputs, the tables' changelogs (compacted,
    co-partitioned with the readings; created here so that workers starting together do not
    race to create them) and the one-partition compacted control topic."""
    compacted = {"cleanup.policy": "compact"}
    partitions = settings.topic_partitions
    return [
        *(
            NewTopic(name, num_partitions=partitions, replication_factor=1)
            for name in topic_names(settings)
        ),
        *(
            NewTopic(name, num_partitions=partitions, replication_factor=1, topic_configs=compacted)
            for name in changelog_topics(settings)
        ),
        NewTopic(
            settings.control_topic, num_partitions=1, replication_factor=1, topic_configs=compacted
        ),
    ]


async def _connect(settings: Settings, timeout_seconds: float) -> AIOKafkaAdminClient:
    deadline = asyncio.get_running_loop().time() + timeout_seconds
    while True:
        admin = AIOKafkaAdminClient(
            bootstrap_servers=settings.kafka_bootstrap,
            request_timeout_ms=10000,
            **aiokafka_security(settings),
        )
        try:
            await admin.start()
            return admin
        except KafkaConnectionError:
            await admin.close()
            # Refused credentials or an untrusted certificate: say so now, retrying cannot help.
            problem = await explain_connection_failure(settings)
            if problem is not None and problem[1]:
                raise TopicSetupError(problem[0]) from None
            if asyncio.get_running_loop().time() > deadline:
                if problem is not None:
                    raise TopicSetupError(problem[0]) from None
                raise TopicSetupError(
                    f"no Kafka broker answers at {settings.kafka_bootstrap}; start one with "
                    "`streamer kafka start` or set STREAMER_KAFKA_BOOTSTRAP"
                ) from None
            await asyncio.sleep(0.5)


async def ensure_topics(settings: Settings, *, timeout_seconds: float = 60.0) -> None:
    """Create missing topics; fail clearly if the readings topic has another partition count."""
    admin = await _connect(settings, timeout_seconds)
    try:
        deadline = asyncio.get_running_loop().time() + timeout_seconds
        while True:
            try:
                existing = set(await admin.list_topics())
                missing = [t for t in wanted_topics(settings) if t.name not in existing]
                if missing:
                    try:
                        await admin.create_topics(missing)
                    except TopicAlreadyExistsError:  # another worker created some at once
                        pass
                    else:
                        log.info("created topics %s", ", ".join(t.name for t in missing))
                described = await admin.describe_topics([settings.readings_topic])
                break
            except KafkaError as exc:  # broker still starting (no controller, no leader yet)
                if asyncio.get_running_loop().time() > deadline:
                    raise TopicSetupError(
                        f"Kafka at {settings.kafka_bootstrap} did not accept topic set-up: {exc}"
                    ) from exc
                await asyncio.sleep(0.5)
        partitions = len(described[0].get("partitions", [])) if described else 0
        if partitions and partitions != settings.topic_partitions:
            raise TopicSetupError(
                f"topic {settings.readings_topic} has {partitions} partitions but "
                f"STREAMER_TOPIC_PARTITIONS={settings.topic_partitions}; set it to {partitions} "
                "(the state table must be co-partitioned with the readings)"
            )
    finally:
        await admin.close()

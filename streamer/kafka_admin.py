"""Create streamer's topics with the configured partition count, and check existing ones."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaError,
    TopicAlreadyExistsError,
    for_code,
)

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
        settings.group_contributions_topic,
        settings.group_forecasts_topic,
    ]


#: How long a changelog's tombstones (expired meters) stay readable once compacted.
CHANGELOG_DELETE_RETENTION_MS = 3_600_000
#: DescribeConfigs ``config_source`` of a value set on the topic itself (v1 and later).
_DYNAMIC_TOPIC_CONFIG = 1


def changelog_configs(settings: Settings) -> dict[str, str]:
    """Topic configs of a table changelog (a topic whose name ends with ``-changelog``).

    Kafka compacts only closed segments, and its defaults (1 GiB or 7 days a segment) keep a
    small changelog in one open segment: nothing is ever compacted and a restarted worker
    replays every write ever made. Segments roll after ``STREAMER_CHANGELOG_SEGMENT_MS`` or
    ``STREAMER_CHANGELOG_SEGMENT_BYTES``, and the cleaner takes a log once a tenth of it is
    superseded writes.
    """
    return {
        "cleanup.policy": "compact",
        "segment.ms": str(settings.changelog_segment_ms),
        "segment.bytes": str(settings.changelog_segment_bytes),
        "min.cleanable.dirty.ratio": "0.1",
        "min.compaction.lag.ms": "0",
        "delete.retention.ms": str(CHANGELOG_DELETE_RETENTION_MS),
    }


def described_configs(response: Any) -> dict[str, tuple[dict[str, str], dict[str, str]]]:
    """A DescribeConfigs response as ``{topic: (every value, the values set on the topic)}``;
    topics the broker answered with an error are left out."""
    topics: dict[str, tuple[dict[str, str], dict[str, str]]] = {}
    for resource in response.to_object()["resources"]:
        if resource["error_code"]:
            continue
        values: dict[str, str] = {}
        set_here: dict[str, str] = {}
        for entry in resource["config_entries"]:
            name, value = entry["config_names"], entry["config_value"]
            if value is None:  # a sensitive value the broker does not show
                continue
            values[name] = value
            if "config_source" in entry:
                dynamic = entry["config_source"] == _DYNAMIC_TOPIC_CONFIG
            else:
                dynamic = not entry.get("is_default", True)
            if dynamic:
                set_here[name] = value
        topics[resource["resource_name"]] = (values, set_here)
    return topics


def configs_to_alter(
    wanted: dict[str, str], values: dict[str, str], set_here: dict[str, str]
) -> dict[str, str] | None:
    """The complete config to set on a topic whose ``values`` differ from ``wanted`` (None
    when none does). AlterConfigs replaces a topic's config as a whole, so the values set on
    the topic (``set_here``) are kept unless ``wanted`` names them."""
    if all(values.get(name) == value for name, value in wanted.items()):
        return None
    return {**set_here, **wanted}


def wanted_topics(settings: Settings) -> list[NewTopic]:
    """Every topic a worker needs: its inputs and outputs, the tables' changelogs (compacted
    with segments that roll (:func:`changelog_configs`), co-partitioned with the readings;
    created here, before faust would, so that workers starting together do not race to create
    them and faust's defaults do not apply) and the one-partition compacted control topic."""
    compacted = {"cleanup.policy": "compact"}
    changelog = changelog_configs(settings)
    partitions = settings.topic_partitions
    return [
        *(
            NewTopic(name, num_partitions=partitions, replication_factor=1)
            for name in topic_names(settings)
        ),
        *(
            NewTopic(name, num_partitions=partitions, replication_factor=1, topic_configs=changelog)
            for name in changelog_topics(settings)
        ),
        NewTopic(
            settings.control_topic, num_partitions=1, replication_factor=1, topic_configs=compacted
        ),
        NewTopic(
            settings.groups_topic,
            num_partitions=partitions,
            replication_factor=1,
            topic_configs=compacted,
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
    """Create missing topics; fail clearly if the readings or forecasts topic has another
    partition count."""
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
                described = await admin.describe_topics(
                    [settings.readings_topic, settings.forecasts_topic]
                )
                break
            except KafkaError as exc:  # broker still starting (no controller, no leader yet)
                if asyncio.get_running_loop().time() > deadline:
                    raise TopicSetupError(
                        f"Kafka at {settings.kafka_bootstrap} did not accept topic set-up: {exc}"
                    ) from exc
                await asyncio.sleep(0.5)
        await _compact_changelogs(admin, settings)
        counts = {t.get("topic"): len(t.get("partitions", [])) for t in described or []}
        partitions = counts.get(settings.readings_topic, 0)
        if partitions and partitions != settings.topic_partitions:
            raise TopicSetupError(
                f"topic {settings.readings_topic} has {partitions} partitions but "
                f"STREAMER_TOPIC_PARTITIONS={settings.topic_partitions}; set it to {partitions} "
                "(the state table must be co-partitioned with the readings)"
            )
        forecasts = counts.get(settings.forecasts_topic, 0)
        if forecasts and forecasts != settings.topic_partitions:
            raise TopicSetupError(
                f"topic {settings.forecasts_topic} has {forecasts} partitions, the readings "
                f"{settings.topic_partitions}: a meter's forecasts go to the partition of its "
                "readings; recreate it with as many partitions (or set STREAMER_FORECASTS_TOPIC "
                "to a new topic)"
            )
    finally:
        await admin.close()


async def _compact_changelogs(admin: AIOKafkaAdminClient, settings: Settings) -> None:
    """Give changelog topics created before (by faust, or an older streamer) the configs of
    :func:`changelog_configs`; a broker that refuses is logged, not fatal."""
    wanted = changelog_configs(settings)
    names = changelog_topics(settings)
    try:
        responses = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name) for name in names]
        )
        current: dict[str, tuple[dict[str, str], dict[str, str]]] = {}
        for response in responses:
            current.update(described_configs(response))
        alter = {
            name: configs
            for name in names
            if name in current and (configs := configs_to_alter(wanted, *current[name])) is not None
        }
        if not alter:
            return
        responses = await admin.alter_configs(
            [
                ConfigResource(ConfigResourceType.TOPIC, name, configs)
                for name, configs in alter.items()
            ]
        )
    except KafkaError as exc:
        _not_compacting([f"{', '.join(names)}: {exc}"], wanted)
        return
    refused = [
        f"{resource['resource_name']}: {for_code(resource['error_code']).__name__} "
        f"{resource['error_message'] or ''}".rstrip()
        for response in responses
        for resource in response.to_object()["resources"]
        if resource["error_code"]
    ]
    if refused:
        _not_compacting(refused, wanted)
    else:
        log.info("set the compaction configs of changelog topics %s", ", ".join(alter))


def _not_compacting(problems: list[str], wanted: dict[str, str]) -> None:
    log.warning(
        "changelog topics keep configs that do not compact them (%s); a restarted worker "
        "replays all their history. Set them with kafka-configs --alter --entity-type topics "
        "--entity-name <topic> --add-config %s",
        "; ".join(problems),
        ",".join(f"{name}={value}" for name, value in wanted.items()),
    )

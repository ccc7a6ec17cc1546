"""Meters are placed by their id whatever partitioner the producer used (issue 16).

A producer on librdkafka (confluent-kafka here, as kcat, Go and .NET) places keys by CRC32 by
default, where Java and aiokafka use murmur2. Two workers consume readings produced that way:
each reading away from its meter's murmur2 home is sent on to it, so every meter's state lives
on one partition, either worker answers for every meter over HTTP, forecasts go to the
partition a murmur2 consumer predicts, and the counters add up.
"""

from __future__ import annotations

import asyncio
import time
import zlib
from collections import defaultdict
from pathlib import Path

import pytest

from streamer.contract.placement import home_partition
from streamer.kafka_admin import ensure_topics
from streamer.simulate.encode import ReadingEncoder
from streamer.simulate.fleet import FleetModel
from streamer.tables import STATE_TABLE
from streamer.timeutil import now_ms
from tests.support.fleet import fleet_messages
from tests.support.kafka import TestKafka
from tests.support.processes import (
    WorkerProcess,
    free_port,
    get_json,
    wait_all_own_readings,
)
from tests.support.topics import read_all, wait_caught_up

pytestmark = pytest.mark.integration

METERS = 24
PARTITIONS = 4


def librdkafka_produce(bootstrap: str, topic: str, messages: list[tuple[bytes, bytes]]) -> None:
    """Produce as a librdkafka client does by default (partitioner consistent_random: CRC32)."""
    try:
        from confluent_kafka import Producer
    except ImportError:
        pytest.fail(
            "confluent-kafka is needed for this test: .venv/bin/pip install confluent-kafka "
            "(it is in the dev extra; scripts/bootstrap.sh installs it)",
            pytrace=False,
        )
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "acks": "all"})
    failures: list[str] = []

    def delivered(error: object, _message: object) -> None:
        if error is not None:
            failures.append(str(error))

    for key, value in messages:
        producer.produce(topic, value=value, key=key, on_delivery=delivered)
        producer.poll(0)
    assert producer.flush(60) == 0 and not failures, failures


def total(workers: list[WorkerProcess], name: str) -> float:
    return sum(w.metrics().get(name, 0.0) for w in workers)


def test_meters_live_on_their_murmur2_home_whatever_the_producers_partitioner(
    kafka: TestKafka, tmp_path: Path
) -> None:
    first = kafka.settings(web_port=free_port(), consumer_session_timeout_seconds=6.0)
    second = first.model_copy(update={"web_port": free_port()})
    assert first.topic_partitions == PARTITIONS
    asyncio.run(ensure_topics(first))
    fleet = FleetModel(METERS, seed=13, resolution_seconds=first.resolution_seconds)
    res_ms = first.resolution_seconds * 1000
    last_slot = now_ms() // res_ms * res_ms - res_ms
    messages = fleet_messages(
        first, fleet, ReadingEncoder(fleet), last_slot - 2 * 86_400_000, last_slot
    )
    keys = sorted({key for key, _ in messages})
    # librdkafka's consistent_random: CRC32 of the key, modulo the partitions
    away = {k for k in keys if zlib.crc32(k) % PARTITIONS != home_partition(k, PARTITIONS)}
    assert away and len(away) < len(keys), "the fleet must have meters on both sides"
    expected_rerouted = sum(1 for key, _ in messages if key in away)

    workers = [
        WorkerProcess(first, tmp_path / "w1.log"),
        WorkerProcess(second, tmp_path / "w2.log"),
    ]
    try:
        for worker in workers:
            worker.wait_ready()
        wait_all_own_readings(workers)  # both own meters before the data flows

        librdkafka_produce(first.kafka_bootstrap, first.readings_topic, messages)
        sent = len(messages)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # the rerouted copies are consumed too
            consumed = total(workers, "streamer_readings_consumed_total")
            if consumed >= sent + expected_rerouted:
                break
            time.sleep(1.0)
        asyncio.run(wait_caught_up(first.kafka_bootstrap, first.app_id, first.readings_topic))

        # the counters add up: every message once, each rerouted one once more at home
        outcome = 'streamer_reading_outcomes_total{outcome="%s"}'
        rerouted = total(workers, outcome % "rerouted")
        ended = sum(
            total(workers, outcome % name)
            for name in ("applied", "corrected", "duplicate", "dead_lettered")
        )
        assert rerouted == expected_rerouted
        assert ended == sent
        assert total(workers, "streamer_readings_consumed_total") == sent + rerouted

        # each meter's state lives on its home partition only
        changelog = f"{first.app_id}-{STATE_TABLE}-changelog"
        state = asyncio.run(read_all(first.kafka_bootstrap, changelog, seconds=5.0))
        partitions: dict[bytes, set[int]] = defaultdict(set)
        for record in state:
            assert record.key is not None
            partitions[record.key].add(record.partition)
        assert set(partitions) == set(keys)
        for key, found in partitions.items():
            assert found == {home_partition(key, PARTITIONS)}, (key, found)

        # forecasts are on the partition a murmur2 consumer predicts
        forecasts = asyncio.run(read_all(first.kafka_bootstrap, first.forecasts_topic, seconds=5.0))
        assert {r.key for r in forecasts} == set(keys)
        for record in forecasts:
            assert record.key is not None
            assert record.partition == home_partition(record.key, PARTITIONS)

        # either worker answers for every meter, the same record
        for key in keys:
            meter = key.decode()
            answers = [get_json(f"{w.base_url}/meters/{meter}/forecast") for w in workers]
            assert [status for status, _ in answers] == [200, 200], (meter, answers)
            assert answers[0][1] == answers[1][1]
            assert answers[0][1]["meter_id"] == meter
    finally:
        for worker in workers:
            worker.stop()

"""A timer reports silent meters and expires long-silent ones without waiting for a reading."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from streamer.kafka_admin import ensure_topics
from streamer.tables import STATE_TABLE
from streamer.timeutil import now_ms
from tests.support.kafka import TestKafka
from tests.support.processes import WorkerProcess, free_port
from tests.support.topics import last_values, read_all, read_topic

pytestmark = pytest.mark.integration

HOUR_MS = 3_600_000
RES_MS = 1_800_000


async def produce_at(bootstrap: str, topic: str, meter: str, hours_ago: float, n: int) -> None:
    """``n`` readings of ``meter`` whose Kafka timestamps (arrival) are ``hours_ago`` old."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        arrival = now_ms() - int(hours_ago * HOUR_MS)
        head = arrival // RES_MS * RES_MS
        for i in range(n):
            body = {"meter_id": meter, "ts": head - (n - 1 - i) * RES_MS, "kwh": 0.2 + 0.01 * i}
            await producer.send_and_wait(
                topic, orjson.dumps(body), key=meter.encode(), timestamp_ms=arrival
            )
    finally:
        await producer.stop()


def test_silent_and_expired_meters_are_reported(kafka: TestKafka, tmp_path: Path) -> None:
    settings = kafka.settings(
        web_port=free_port(),
        silent_slots=6,
        retention_seconds=2 * 86400,
        silence_check_interval_seconds=1.0,
    )
    asyncio.run(ensure_topics(settings))
    for meter, hours_ago in (("m-live", 0.0), ("m-quiet", 5.0), ("m-gone", 72.0)):
        asyncio.run(
            produce_at(settings.kafka_bootstrap, settings.readings_topic, meter, hours_ago, 4)
        )
    worker = WorkerProcess(settings, tmp_path / "worker.log")
    try:
        worker.wait_ready()
        records = asyncio.run(
            read_topic(
                settings.kafka_bootstrap,
                settings.status_topic,
                until=lambda r: len({x.key for x in r}) >= 2,
                timeout_seconds=60,
            )
        )
        events = {(r.key, orjson.loads(r.value or b"")["status"]) for r in records}
        assert events == {(b"m-quiet", "silent"), (b"m-gone", "expired")}, worker.log_tail()
        # reported once, not on every tick
        asyncio.run(asyncio.sleep(3))
        records = asyncio.run(read_all(settings.kafka_bootstrap, settings.status_topic, seconds=3))
        assert len(records) == 2
        metrics = worker.metrics()
        assert metrics["streamer_silent_meters"] == 1
        assert metrics["streamer_meters_in_state"] == 2
    finally:
        worker.stop()
    table = asyncio.run(
        last_values(settings.kafka_bootstrap, f"{settings.app_id}-{STATE_TABLE}-changelog")
    )
    assert table[b"m-gone"] is None  # a tombstone: the expired meter's state is gone
    assert table[b"m-live"] is not None and table[b"m-quiet"] is not None

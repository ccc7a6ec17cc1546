"""Readings produced to real Kafka come out as forecasts on another topic (issue 2)."""

from __future__ import annotations

import asyncio
import base64
from collections import defaultdict
from pathlib import Path

import orjson
import pytest

from streamer.kafka_admin import ensure_topics
from streamer.simulate.encode import ReadingEncoder
from streamer.simulate.fleet import FleetModel
from streamer.timeutil import now_ms
from tests.support.fleet import fleet_messages
from tests.support.kafka import TestKafka
from tests.support.processes import WorkerProcess, free_port
from tests.support.topics import Record, produce, read_all, read_topic

pytestmark = pytest.mark.integration

METERS = 6
DAYS = 3


def by_meter(records: list[Record]) -> dict[bytes, list[dict[str, object]]]:
    grouped: dict[bytes, list[dict[str, object]]] = defaultdict(list)
    for record in records:
        assert record.key is not None and record.value is not None
        grouped[record.key].append(orjson.loads(record.value))
    return grouped


def test_readings_become_forecasts_and_bad_messages_are_dead_lettered(
    kafka: TestKafka, tmp_path: Path
) -> None:
    settings = kafka.settings(web_port=free_port())
    asyncio.run(ensure_topics(settings))
    res_ms = settings.resolution_seconds * 1000
    model = FleetModel(METERS, seed=3, resolution_seconds=settings.resolution_seconds)
    encoder = ReadingEncoder(model)
    last_slot = now_ms() // res_ms * res_ms - res_ms
    first = fleet_messages(settings, model, encoder, last_slot - DAYS * 86_400_000, last_slot)
    asyncio.run(produce(settings.kafka_bootstrap, settings.readings_topic, first))

    worker = WorkerProcess(settings, tmp_path / "worker.log")
    try:
        worker.wait_ready()
        meter_keys = set(encoder.keys)

        def every_meter_reached(origin_ms: int):  # type: ignore[no-untyped-def]
            def done(records: list[Record]) -> bool:
                seen = {
                    r.key
                    for r in records
                    if r.value and _origin_ms(orjson.loads(r.value)) >= origin_ms
                }
                return seen >= meter_keys

            return done

        records = asyncio.run(
            read_topic(
                settings.kafka_bootstrap,
                settings.forecasts_topic,
                until=every_meter_reached(last_slot),
                timeout_seconds=90,
            )
        )
        grouped = by_meter(records)
        assert set(grouped) == meter_keys, worker.log_tail()
        for key, forecasts in grouped.items():
            for forecast in forecasts:
                assert forecast["meter_id"] == key.decode()
                horizon = forecast["horizon_ts"]
                assert isinstance(horizon, list)
                assert len(horizon) == settings.horizon_slots
                assert len(forecast["point_kwh"]) == settings.horizon_slots  # type: ignore[arg-type]
                quantiles = forecast["quantiles_kwh"]
                assert isinstance(quantiles, dict) and set(quantiles) == {"p10", "p50", "p90"}
                assert all(len(q) == settings.horizon_slots for q in quantiles.values())
                origin = _origin_ms(forecast)
                assert origin % res_ms == 0
                steps = [_ms(ts) - origin for ts in horizon]
                assert steps == [res_ms * (i + 1) for i in range(settings.horizon_slots)]
            assert max(_origin_ms(f) for f in forecasts) == last_slot
        # the worker compresses what it writes (STREAMER_KAFKA_COMPRESSION=zstd by default): the
        # topic's log on the broker's disk is far smaller than its records' JSON
        logs = list(kafka.broker.data_dir.glob(f"{settings.forecasts_topic}-*/*.log"))
        on_disk = sum(path.stat().st_size for path in logs)
        every = asyncio.run(read_all(settings.kafka_bootstrap, settings.forecasts_topic, seconds=2))
        json_bytes = sum(len(r.value or b"") for r in every)
        assert logs and on_disk < 0.5 * json_bytes, (on_disk, json_bytes)

        # A malformed message goes to the DLQ with a reason and its bytes; the worker goes on.
        bad = b'{"meter_id": "m-000000", "ts": 17'
        nxt = fleet_messages(settings, model, encoder, last_slot, last_slot + res_ms)
        asyncio.run(
            produce(settings.kafka_bootstrap, settings.readings_topic, [(b"m-000000", bad), *nxt])
        )
        letters = asyncio.run(
            read_topic(
                settings.kafka_bootstrap,
                settings.dlq_topic,
                until=lambda r: len(r) >= 1,
                timeout_seconds=60,
            )
        )
        assert len(letters) == 1
        letter = orjson.loads(letters[0].value or b"")
        assert letter["reason"] == "invalid_json"
        assert base64.b64decode(letter["value_b64"]) == bad
        assert letter["source"]["topic"] == settings.readings_topic
        records = asyncio.run(
            read_topic(
                settings.kafka_bootstrap,
                settings.forecasts_topic,
                until=every_meter_reached(last_slot + res_ms),
                timeout_seconds=60,
            )
        )
        assert {
            r.key for r in records if _origin_ms(orjson.loads(r.value or b"")) == last_slot + res_ms
        } == meter_keys
        assert worker.alive

        # The counters add up: every consumed message has exactly one outcome.
        metrics = worker.metrics()
        consumed = metrics["streamer_readings_consumed_total"]
        outcomes = sum(
            metrics[f'streamer_reading_outcomes_total{{outcome="{o}"}}']
            for o in ("applied", "corrected", "duplicate", "dead_lettered")
        )
        assert consumed == len(first) + 1 + len(nxt) == outcomes
        assert metrics['streamer_dead_letters_total{reason="invalid_json"}'] == 1
    finally:
        worker.stop()


def _ms(ts: object) -> int:
    from datetime import datetime

    assert isinstance(ts, str)
    return int(datetime.fromisoformat(ts).timestamp() * 1000)


def _origin_ms(forecast: dict[str, object]) -> int:
    return _ms(forecast["origin_ts"])

"""A new model version rolls out while readings flow: forecasts switch version, none lost or
duplicated (issue 5)."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import orjson
import pytest

from streamer.kafka_admin import ensure_topics
from streamer.settings import Settings
from streamer.simulate.encode import ReadingEncoder
from streamer.simulate.fleet import FleetModel
from streamer.timeutil import now_ms
from tests.support.fleet import fleet_messages
from tests.support.kafka import TestKafka
from tests.support.processes import WorkerProcess, free_port
from tests.support.topics import Record, produce, read_all

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
METERS = 12
LIVE_SLOTS = 8


def model_repository(root: Path) -> Path:
    """lstm:1 (the committed model) and lstm:2 (the same weights, card version 2)."""
    models = root / "models"
    shutil.copytree(REPO / "models" / "lstm" / "1", models / "lstm" / "1")
    shutil.copy(REPO / "models" / "lstm" / "config.pbtxt", models / "lstm" / "config.pbtxt")
    shutil.copytree(models / "lstm" / "1", models / "lstm" / "2")
    card_file = models / "lstm" / "2" / "card.json"
    card = json.loads(card_file.read_text())
    card["version"] = "2"
    card_file.write_text(json.dumps(card, indent=2))
    return models


def cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streamer", *args],
        capture_output=True,
        text=True,
        env={**settings.to_env(), "PATH": "/usr/bin:/bin"},
        timeout=120,
        check=False,
    )


def test_rollout_switches_version_without_losing_or_repeating_forecasts(
    kafka: TestKafka, tmp_path: Path
) -> None:
    settings = kafka.settings(
        web_port=free_port(), models_dir=model_repository(tmp_path), forecaster="lstm:1"
    )
    # the rollout goes to this test's own control topic: lstm:2 stays live for no later test
    assert settings.control_topic != Settings.model_fields["control_topic"].default
    asyncio.run(ensure_topics(settings))
    model = FleetModel(METERS, seed=9, resolution_seconds=settings.resolution_seconds)
    encoder = ReadingEncoder(model)
    res_ms = settings.resolution_seconds * 1000
    first_live = now_ms() // res_ms * res_ms - LIVE_SLOTS * res_ms
    history = fleet_messages(settings, model, encoder, first_live - 3 * 86_400_000, first_live)
    asyncio.run(produce(settings.kafka_bootstrap, settings.readings_topic, history))

    def forecasts() -> list[Record]:
        return asyncio.run(read_all(settings.kafka_bootstrap, settings.forecasts_topic, seconds=2))

    def wait_for_origin(origin_ms: int) -> list[Record]:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            records = forecasts()
            done = {r.key for r in records if _origin(r) == origin_ms}
            if len(done) == METERS:
                return records
        raise AssertionError(f"no forecasts for origin {origin_ms} from all meters")

    worker = WorkerProcess(settings, tmp_path / "worker.log")
    try:
        worker.wait_ready()
        wait_for_origin(first_live)
        # live: one new slot for every meter at a time; the rollout lands in the middle
        for step in range(1, LIVE_SLOTS + 1):
            slot_end = first_live + step * res_ms
            messages = fleet_messages(settings, model, encoder, slot_end - res_ms, slot_end)
            asyncio.run(produce(settings.kafka_bootstrap, settings.readings_topic, messages))
            if step == LIVE_SLOTS // 2:
                published = cli(settings, "rollout", "lstm:2")
                assert published.returncode == 0, published.stderr
            records = wait_for_origin(slot_end)
        assert worker.alive
    finally:
        worker.stop()

    live = [r for r in records if _origin(r) > first_live]
    per_slot = Counter((r.key, _origin(r)) for r in live)
    assert len(per_slot) == METERS * LIVE_SLOTS  # every closed slot of every meter: a forecast
    assert set(per_slot.values()) == {1}  # and only one
    versions_by_origin = {
        origin: {
            orjson.loads(r.value or b"")["model_version"] for r in live if _origin(r) == origin
        }
        for origin in sorted({_origin(r) for r in live})
    }
    sequence = [versions_by_origin[o] for o in sorted(versions_by_origin)]
    assert sequence[0] == {"1"} and sequence[-1] == {"2"}
    switched = [i for i, versions in enumerate(sequence) if "2" in versions]
    assert all("1" not in versions for versions in sequence[switched[0] + 1 :])  # never back
    status = cli(settings, "rollout")
    assert "live: lstm:2" in status.stdout


def _origin(record: Record) -> int:
    from datetime import datetime

    body = orjson.loads(record.value or b"")
    return int(datetime.fromisoformat(body["origin_ts"]).timestamp() * 1000)

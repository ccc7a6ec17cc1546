"""A worker killed with SIGKILL and restarted rebuilds exactly the windows of one that never
crashed (issue 3): compare the serialized window of every meter in the two changelogs."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from streamer.kafka_admin import ensure_topics
from streamer.pipeline.config import PipelineConfig
from streamer.pipeline.meter_record import MeterRecord
from streamer.settings import Settings
from streamer.simulate.faults import FaultConfig
from streamer.simulate.fleet import FleetModel
from streamer.simulate.slots import iter_slot_chunks
from streamer.tables import STATE_TABLE
from streamer.timeutil import now_ms
from tests.support.faults import worker_caught_up
from tests.support.kafka import TestKafka
from tests.support.processes import WorkerProcess, free_port
from tests.support.topics import last_values, produce

pytestmark = pytest.mark.integration

METERS = 150
DAYS = 8


def changelog(app_id: str) -> str:
    return f"{app_id}-{STATE_TABLE}-changelog"


def caught_up(worker: WorkerProcess, settings: Settings, total: int) -> None:
    worker_caught_up(worker, settings, timeout_seconds=420, stall_seconds=90, total=total)


def test_sigkill_and_restart_rebuilds_the_same_windows(kafka: TestKafka, tmp_path: Path) -> None:
    crashy = kafka.settings(web_port=free_port(), consumer_session_timeout_seconds=6.0)
    steady = kafka.settings(
        web_port=free_port(),
        consumer_session_timeout_seconds=6.0,
        readings_topic=crashy.readings_topic,
    )
    asyncio.run(ensure_topics(crashy))
    asyncio.run(ensure_topics(steady))
    model = FleetModel(METERS, seed=11, resolution_seconds=crashy.resolution_seconds)
    res_ms = crashy.resolution_seconds * 1000
    end = now_ms() // res_ms * res_ms
    faults = FaultConfig(
        missing_rate=0.02, duplicate_rate=0.03, out_of_order_rate=0.05, malformed_rate=0.002
    )
    messages = [
        message
        for chunk in iter_slot_chunks(model, faults, end - DAYS * 86_400_000, end)
        for message in chunk.messages
    ]
    asyncio.run(produce(crashy.kafka_bootstrap, crashy.readings_topic, messages))
    total = len(messages)

    worker = WorkerProcess(crashy, tmp_path / "crashy-1.log")
    steady_worker = WorkerProcess(steady, tmp_path / "steady.log")
    try:
        worker.wait_ready()
        deadline = time.monotonic() + 120
        consumed = 0.0
        while time.monotonic() < deadline:
            consumed = worker.metrics().get("streamer_readings_consumed_total", 0.0)
            if consumed >= total * 0.3:
                break
            time.sleep(0.2)
        assert 0 < consumed < total, f"kill must land mid-stream (consumed {consumed} of {total})"
        worker.kill()
        started = time.monotonic()
        restarted = WorkerProcess(crashy, tmp_path / "crashy-2.log")
        try:
            caught_up(restarted, crashy, total)
            recovery_seconds = time.monotonic() - started
            caught_up(steady_worker, steady, total)
        finally:
            restarted.stop()
        steady_worker.stop()
    finally:
        worker.stop()
        steady_worker.stop()

    after_crash = asyncio.run(last_values(crashy.kafka_bootstrap, changelog(crashy.app_id)))
    never_crashed = asyncio.run(last_values(steady.kafka_bootstrap, changelog(steady.app_id)))
    print(
        f"\nrecovery: {total} messages, killed after {int(consumed)}, caught up "
        f"{recovery_seconds:.1f} s after the kill; {len(never_crashed)} meters compared"
    )
    assert len(never_crashed) == METERS
    assert after_crash.keys() == never_crashed.keys()
    # The window (the MeterState section of each record) must be byte-for-byte equal. The
    # forecast ledger beside it depends on where batches were cut, so it may differ.
    record = PipelineConfig.from_settings(crashy).record

    def window_bytes(value: bytes | None) -> bytes:
        assert value is not None
        return MeterRecord.from_bytes(value, record).state.to_bytes()

    differing = [
        key
        for key in never_crashed
        if window_bytes(after_crash[key]) != window_bytes(never_crashed[key])
    ]
    assert differing == []

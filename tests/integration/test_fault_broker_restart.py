"""Issue 8, broker restart: the broker stops mid-stream and comes back; nothing is lost.

While the broker is away the worker stays up (no crash, no restart loop), answers ``/health``,
and ``/ready`` reports not ready (``broker_reachable: false``). When the broker is back it
becomes ready again, finishes the backlog, and the readings sent afterwards are forecast: every
reading sent is in its meter's window and every live slot has a forecast for every meter.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from streamer.kafka_admin import ensure_topics
from tests.support.faults import (
    check_state,
    consumed,
    get_json,
    read_forecasts,
    readiness,
    report,
    tally_forecasts,
    wait_for_slot,
    wait_until,
)
from tests.support.fleet import Fleet
from tests.support.kafka import TestKafka
from tests.support.processes import WorkerProcess, free_port
from tests.support.topics import produce, wait_caught_up

pytestmark = pytest.mark.integration

METERS = 20
BACKLOG_DAYS = 4
LIVE_SLOTS = 2
AWAY_SECONDS = 12.0


def test_worker_waits_out_a_broker_restart(
    kafka: TestKafka, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # a slowed model keeps the worker busy with the backlog while the broker goes away
    settings = kafka.settings(
        web_port=free_port(), batch_max_events=250, debug_inference_delay_ms=300.0
    )
    asyncio.run(ensure_topics(settings))
    fleet = Fleet(settings, METERS, seed=31)
    res_ms = fleet.res_ms
    live_start = fleet.last_closed_slot() - LIVE_SLOTS * res_ms
    backlog = fleet.messages(live_start - BACKLOG_DAYS * 86_400_000, live_start)
    sent = list(backlog)

    worker = WorkerProcess(settings, tmp_path / "worker.log")
    try:
        worker.wait_ready()
        pid = worker.proc.pid
        asyncio.run(produce(settings.kafka_bootstrap, settings.readings_topic, backlog))
        wait_until(
            lambda: consumed(worker) >= 0.1 * len(backlog),
            timeout_seconds=120,
            what="a tenth of the backlog consumed",
            every=0.1,
        )
        stopped_at = time.monotonic()
        kafka.stop()
        consumed_at_stop = consumed(worker)
        assert consumed_at_stop < len(backlog), "the broker must go away mid-stream"

        wait_until(
            lambda: readiness(worker)[0] == 503,
            timeout_seconds=30,
            what="/ready says 503 while the broker is away",
        )
        not_ready_s = time.monotonic() - stopped_at  # includes the broker's own shutdown
        status, body = readiness(worker)
        assert status == 503 and body["broker_reachable"] is False, body
        health_checks = 0
        while time.monotonic() - stopped_at < AWAY_SECONDS:
            assert worker.alive, worker.log_tail()
            assert get_json(worker.base_url + "/health")[0] == 200
            assert readiness(worker)[0] == 503
            health_checks += 1
            time.sleep(1.0)
        away_s = time.monotonic() - stopped_at

        kafka.broker.start()
        restarted_at = time.monotonic()
        ready_again_s = wait_until(
            lambda: readiness(worker)[0] == 200,
            timeout_seconds=120,
            what="/ready says 200 once the broker is back",
        )
        asyncio.run(
            wait_caught_up(
                settings.kafka_bootstrap,
                settings.app_id,
                settings.readings_topic,
                timeout_seconds=180,
            )
        )
        caught_up_s = time.monotonic() - restarted_at
        for step in range(1, LIVE_SLOTS + 1):
            slot_end = live_start + step * res_ms
            messages = fleet.messages(slot_end - res_ms, slot_end)
            sent.extend(messages)
            asyncio.run(produce(settings.kafka_bootstrap, settings.readings_topic, messages))
            wait_for_slot(settings, fleet.meter_ids, slot_end)
        # the counters of a batch follow its outputs by a moment: wait for them
        wait_until(
            lambda: consumed(worker) >= len(sent),
            timeout_seconds=30,
            what="the worker counted every reading sent",
        )
        total_consumed = consumed(worker)
        assert worker.alive and worker.proc.pid == pid
        log = worker.log_path.read_text(errors="replace")
    finally:
        if not kafka.broker.status().running:
            kafka.broker.start()
        worker.stop()

    # the clients' reconnect noise is collapsed (streamer.kafka_log_noise): ~31,000 lines before
    error_lines = sum(1 for line in log.splitlines() if "[ERROR]" in line)
    tally = tally_forecasts(read_forecasts(settings, timeout_seconds=5))
    state = check_state(settings, sent)
    live_origins = [live_start + step * res_ms for step in range(1, LIVE_SLOTS + 1)]
    report(
        capsys,
        "broker restart (at_least_once, 1 worker)",
        {
            "readings sent": len(sent),
            "accounted": state.accounted,
            "lost": len(state.lost),
            "consumed when the broker was down": int(consumed_at_stop),
            "consumed": int(total_consumed),
            "forecasts": tally.records,
            "duplicate forecasts": tally.duplicates,
            "broker away s": round(away_s, 1),
            "not ready after (from stop) s": round(not_ready_s, 1),
            "ready again after restart s": round(ready_again_s, 1),
            "recovery (caught up) s": round(caught_up_s, 1),
            "ERROR lines in the worker's log": error_lines,
        },
    )
    assert "Crashed reason" not in log, "an agent or service crashed during the outage"
    assert error_lines < 200, "connection errors of the outage are not collapsed"
    assert "unreachable since" in log
    assert state.lost == []
    assert total_consumed >= len(sent)
    assert tally.missing(fleet.meter_ids, live_origins) == []
    assert health_checks >= 3

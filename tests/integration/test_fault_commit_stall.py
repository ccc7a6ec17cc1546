"""Issue 8: a partition whose messages faust's fetch loop lost is read again, nothing lost.

faust 0.15.3 can read past messages without handing them to a stream (around a rebalance); they
are never acknowledged, and faust can then never commit the partition past them. Here the
worker's fetch loop is made to lose a range of one partition's messages once
(``tests.support.dropping_worker``). The commit watchdog must find the stalled partition, read
it again from its committed offset, and the run end with the group caught up and every reading
in its meter's window.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from streamer.kafka_admin import ensure_topics
from tests.support.dropping_worker import DROP_MESSAGES_ENV
from tests.support.faults import (
    check_state,
    committed_offsets,
    outcomes,
    report,
    wait_until,
    worker_caught_up,
)
from tests.support.fleet import Fleet
from tests.support.kafka import TestKafka
from tests.support.processes import WorkerProcess, free_port
from tests.support.topics import produce

pytestmark = pytest.mark.integration


METERS = 12
BACKLOG_DAYS = 2
#: the lost messages: 60 (5 slots of every meter), 240 messages (20 slots) before the end, so
#: that reading them again ~15 s later still finds their slots within the allowed lateness
DROPPED = 60
BEFORE_END = 240


def test_lost_messages_are_read_again(
    kafka: TestKafka, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = kafka.settings(web_port=free_port(), topic_partitions=1, batch_max_events=200)
    asyncio.run(ensure_topics(settings))
    fleet = Fleet(settings, METERS, seed=5)
    end = fleet.last_closed_slot()
    sent = fleet.messages(end - BACKLOG_DAYS * 86_400_000, end)
    first = len(sent) - BEFORE_END - DROPPED
    spec = f"{settings.readings_topic}:0:{first}:{first + DROPPED}"

    worker = WorkerProcess(
        settings,
        tmp_path / "worker.log",
        module="tests.support.dropping_worker",
        extra_env={DROP_MESSAGES_ENV: spec},
    )
    try:
        worker.wait_ready()
        started = time.monotonic()
        asyncio.run(produce(settings.kafka_bootstrap, settings.readings_topic, sent))
        # faust commits up to the lost range and no further
        wait_until(
            lambda: committed_offsets(settings, [0])[0] == first,
            timeout_seconds=60,
            what=f"the group committed up to the lost messages ({first})",
        )
        worker_caught_up(worker, settings, timeout_seconds=120, stall_seconds=60)
        caught_up_s = time.monotonic() - started
        metrics = worker.metrics()
        worker_outcomes = outcomes(worker)
        log = worker.log_path.read_text(errors="replace")
    finally:
        worker.stop()

    state = check_state(settings, sent)
    report(
        capsys,
        "messages lost by faust's fetch loop, read again",
        {
            "readings sent": len(sent),
            "lost by the fetch loop": DROPPED,
            "accounted": state.accounted,
            "lost": len(state.lost),
            "register meters": int(fleet.model.is_register.sum()),
            "stalls repaired": int(metrics.get("streamer_commit_stalls_total", 0)),
            "consumed": int(metrics.get("streamer_readings_consumed_total", 0)),
            "outcomes": {k: int(v) for k, v in sorted(worker_outcomes.items())},
            "caught up s": round(caught_up_s, 1),
        },
    )
    assert f"dropping worker: dropped {spec}" in log, "the fault was not injected"
    assert "reading the partition again from there" in log
    assert metrics.get("streamer_commit_stalls_total", 0) >= 1
    # every reading in its window: a register meter's lost readings, read again after its next
    # one, split the spread that one made (CORRECTED), to the same energies as in order
    assert state.lost == []
    assert sum(worker_outcomes.values()) == metrics.get("streamer_readings_consumed_total")
    assert metrics.get("streamer_readings_consumed_total", 0) >= len(sent)

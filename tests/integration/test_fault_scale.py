"""Issue 8, scale out and in: a third worker joins two, then one of the three leaves.

After each rebalance the meters' state has followed their partitions (the next slot of every
meter is forecast by the full-history model, not the short-history fallback), forecasts
continue (every slot of every meter exactly once), and ``GET /meters/{id}/forecast`` through
any worker answers with the owner's newest forecast.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import orjson
import pytest

from streamer.kafka_admin import ensure_topics
from streamer.settings import Settings
from tests.support.faults import (
    check_state,
    get_json,
    origin_of,
    read_forecasts,
    readings_partitions,
    report,
    tally_forecasts,
    wait_assignment,
    wait_for_slot,
)
from tests.support.fleet import Fleet
from tests.support.kafka import TestKafka
from tests.support.processes import WorkerProcess, free_port
from tests.support.topics import Record, produce, wait_caught_up

pytestmark = pytest.mark.integration

METERS = 16
HISTORY_DAYS = 3
# faust's sticky assignor gives each worker at most ceil(partitions / workers): with 4
# partitions a third worker would get none (2 + 2 + 0), with 6 each of three gets 2.
PARTITIONS = 6


def forecasts_total(worker: WorkerProcess) -> float:
    return sum(
        value
        for key, value in worker.metrics().items()
        if key.startswith("streamer_forecasts_total{")
    )


def routed_answers(workers: list[WorkerProcess], meters: list[str], origin_ms: int) -> int:
    """Ask every worker for every meter's forecast; each answer is the meter's, at origin."""
    answered = 0
    for meter in meters:
        bodies = []
        for worker in workers:
            status, body = get_json(f"{worker.base_url}/meters/{meter}/forecast", 10)
            assert status == 200, (meter, worker.base_url, status, body)
            assert body["meter_id"] == meter
            assert origin_of(body) == origin_ms, (meter, body["origin_ts"])
            bodies.append(body)
            answered += 1
        assert all(b == bodies[0] for b in bodies)  # the same record through every worker
    return answered


def fallbacks_at(records: list[Record], origin_ms: int) -> list[str]:
    bodies = (orjson.loads(r.value or b"") for r in records)
    return [str(b["meter_id"]) for b in bodies if origin_of(b) == origin_ms and b["fallback"]]


def test_scale_out_to_three_workers_and_back_in_to_two(
    kafka: TestKafka, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base: Settings = kafka.settings(
        web_port=free_port(), consumer_session_timeout_seconds=6.0, topic_partitions=PARTITIONS
    )
    asyncio.run(ensure_topics(base))
    fleet = Fleet(base, METERS, seed=41)
    res_ms = fleet.res_ms
    slot_out = fleet.last_closed_slot() - res_ms  # sent after scaling out
    slot_in = slot_out + res_ms  # sent after scaling in
    history_end = slot_out - res_ms
    history = fleet.messages(history_end - HISTORY_DAYS * 86_400_000, history_end)
    sent = list(history)

    def start(name: str) -> WorkerProcess:
        settings = base.model_copy(update={"web_port": free_port()})
        return WorkerProcess(settings, tmp_path / f"{name}.log")

    def send_slot(slot_end: int) -> list[Record]:
        messages = fleet.messages(slot_end - res_ms, slot_end)
        sent.extend(messages)
        asyncio.run(produce(base.kafka_bootstrap, base.readings_topic, messages))
        return wait_for_slot(base, fleet.meter_ids, slot_end)

    # one after the other: two workers of a new app starting at once race to create its
    # changelog topics (docs/reliability.md)
    workers = [start("a")]
    routed = 0
    try:
        workers[0].wait_ready()
        workers.append(start("b"))
        workers[1].wait_ready()
        wait_assignment(workers, PARTITIONS, timeout=90)
        asyncio.run(produce(base.kafka_bootstrap, base.readings_topic, history))
        wait_for_slot(base, fleet.meter_ids, history_end)
        routed += routed_answers(workers, fleet.meter_ids, history_end)

        # scale out: a third worker takes partitions (and their state) from the two
        joined_at = time.monotonic()
        workers.append(start("c"))
        workers[2].wait_ready()
        wait_assignment(workers, PARTITIONS, timeout=120)
        scale_out_s = time.monotonic() - joined_at
        owned_after_out = [readings_partitions(w) for w in workers]
        records = send_slot(slot_out)
        assert fallbacks_at(records, slot_out) == []
        routed += routed_answers(workers, fleet.meter_ids, slot_out)
        assert forecasts_total(workers[2]) > 0  # the newcomer forecasts its meters

        # scale in: the first worker leaves (SIGTERM); the other two take its partitions back
        left_at = time.monotonic()
        leaver = workers.pop(0)
        assert leaver.stop() == 0, leaver.log_tail()
        wait_assignment(workers, PARTITIONS, timeout=120)
        scale_in_s = time.monotonic() - left_at
        owned_after_in = [readings_partitions(w) for w in workers]
        records = send_slot(slot_in)
        assert fallbacks_at(records, slot_in) == []
        routed += routed_answers(workers, fleet.meter_ids, slot_in)
        asyncio.run(
            wait_caught_up(
                base.kafka_bootstrap, base.app_id, base.readings_topic, timeout_seconds=60
            )
        )
        assert all(w.alive for w in workers)
    finally:
        for worker in workers:
            worker.stop()

    tally = tally_forecasts(read_forecasts(base, timeout_seconds=5))
    state = check_state(base, sent)
    report(
        capsys,
        "scale out 2 -> 3 and in 3 -> 2 workers (at_least_once)",
        {
            "readings sent": len(sent),
            "accounted": state.accounted,
            "lost": len(state.lost),
            "forecasts": tally.records,
            "duplicate forecasts": tally.duplicates,
            "partitions after scale out": owned_after_out,
            "after scale in": owned_after_in,
            "scale out (start to rebalanced) s": round(scale_out_s, 1),
            "scale in (stop to rebalanced) s": round(scale_in_s, 1),
            "HTTP answers routed correctly": routed,
        },
    )
    assert state.lost == []
    for origin in (slot_out, slot_in):
        assert all(tally.per_slot[(m, origin)] == 1 for m in fleet.meter_ids), origin
    assert all(owned for owned in owned_after_out) and len(owned_after_out) == 3

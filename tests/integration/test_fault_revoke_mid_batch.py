"""A readings partition revoked mid-batch: its old owner's state writes all land before the
new owner's.

One worker, slowed on purpose (``STREAMER_DEBUG_INFERENCE_DELAY_MS``), works through a backlog
of readings (many meters, many slots each, so every meter's state is written many times) in
small batches; a second worker joins the group while it is at it and takes half of the
partitions. faust's revoke is made to drop the readings the first worker has queued and to wait
until every batch it already took is delivered (``streamer.faust_glue.bulk_readings``), so no
state write of the old owner may land in the state changelog after the new owner's.

Checked on the changelog as a restarted or new owner would read it: partition by partition in
offset order, each meter's head slot and newest arrival time never go backwards (a stale write
of the old owner landing after the new owner's would take them back). And every reading is
accounted for (in its meter's window as the changelog restores it). The test also checks that
it proves something: a partition did move from the first worker to the second while the first
had consumed some of it and not all.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from streamer.kafka_admin import ensure_topics
from streamer.pipeline.config import PipelineConfig
from streamer.pipeline.meter_record import MeterRecord
from streamer.settings import Settings
from tests.support.faults import (
    changelog,
    check_state,
    committed_offsets,
    consumed,
    outcomes,
    readings_partitions,
    report,
    wait_until,
    worker_caught_up,
)
from tests.support.fleet import Fleet
from tests.support.kafka import TestKafka
from tests.support.processes import WorkerProcess, free_port
from tests.support.topics import Record, produce, read_topic

pytestmark = pytest.mark.integration

METERS = 32
BACKLOG_SLOTS = 144  # 3 days: 4,608 readings, each meter's state written many times
PARTITIONS = 4
BATCH_EVENTS = 100
DELAY_MS = 300.0  # per forecaster call of the first worker: its batches take a while


def read_partitions(settings: Settings, topic: str) -> dict[int, list[Record]]:
    """Every record of ``topic``, partition by partition in offset order, to its end offsets."""
    ends = asyncio.run(end_offsets(settings.kafka_bootstrap, topic, settings.topic_partitions))
    total = sum(ends.values())
    records = asyncio.run(
        read_topic(settings.kafka_bootstrap, topic, until=lambda rows: len(rows) >= total)
    )
    assert len(records) >= total, f"could not read {topic} to its end"
    out: dict[int, list[Record]] = {p: [] for p in ends}
    for record in records:
        out[record.partition].append(record)
    return out


async def end_offsets(bootstrap: str, topic: str, partitions: int) -> dict[int, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        ends = await consumer.end_offsets(tps)
        return {tp.partition: ends[tp] for tp in tps}
    finally:
        await consumer.stop()


@dataclass(frozen=True)
class Regression:
    """A meter's state record that took its head slot or newest arrival back."""

    meter: str
    partition: int
    offset: int
    before: tuple[int, int]  # (head slot, last arrival ms) of the meter's previous record
    after: tuple[int, int]


@dataclass(frozen=True)
class ChangelogOrder:
    records: int
    meters: int
    tombstones: int
    regressions: list[Regression]


def check_changelog_order(settings: Settings) -> ChangelogOrder:
    """Walk the state changelog in offset order: per meter, the head slot and the newest
    arrival time of its records never decrease (a tombstone starts the meter afresh)."""
    by_partition = read_partitions(settings, changelog(settings))
    record_config = PipelineConfig.from_settings(settings).record
    newest: dict[bytes, tuple[int, int]] = {}
    regressions: list[Regression] = []
    records = tombstones = 0
    meters: set[bytes] = set()
    for partition, rows in sorted(by_partition.items()):
        for row in rows:
            records += 1
            assert row.key is not None
            meters.add(row.key)
            if row.value is None:
                tombstones += 1
                newest.pop(row.key, None)
                continue
            state = MeterRecord.state_from_bytes(row.value, record_config)
            now = (-1 if state.head_slot is None else state.head_slot, state.last_arrival_ms)
            before = newest.get(row.key)
            if before is not None and (now[0] < before[0] or now[1] < before[1]):
                regressions.append(Regression(row.key.decode(), partition, row.offset, before, now))
            newest[row.key] = max(before or now, now)
    return ChangelogOrder(records, len(meters), tombstones, regressions)


def test_partition_revoked_mid_batch_leaves_no_stale_state_write(
    kafka: TestKafka, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    slow = kafka.settings(
        web_port=free_port(),
        consumer_session_timeout_seconds=6.0,
        topic_partitions=PARTITIONS,
        batch_max_events=BATCH_EVENTS,
        debug_inference_delay_ms=DELAY_MS,
    )
    # the newcomer runs at full speed: it overtakes what the old owner had in hand at once
    fast = slow.model_copy(update={"web_port": free_port(), "debug_inference_delay_ms": 0.0})
    asyncio.run(ensure_topics(slow))
    fleet = Fleet(slow, METERS, seed=61)
    last = fleet.last_closed_slot()
    backlog = fleet.messages(last - BACKLOG_SLOTS * fleet.res_ms, last)

    first = WorkerProcess(slow, tmp_path / "first.log")
    second: WorkerProcess | None = None
    try:
        first.wait_ready()
        wait_until(
            lambda: readings_partitions(first) == list(range(PARTITIONS)),
            timeout_seconds=60,
            what="the first worker owns every readings partition",
        )
        asyncio.run(produce(slow.kafka_bootstrap, slow.readings_topic, backlog))
        ends = asyncio.run(end_offsets(slow.kafka_bootstrap, slow.readings_topic, PARTITIONS))
        wait_until(
            lambda: consumed(first) > 0,
            timeout_seconds=30,
            what="the first worker consumes",
            every=0.1,
        )
        # under load: a second worker joins (one after the other, see docs/reliability.md)
        joined_at = time.monotonic()
        second = WorkerProcess(fast, tmp_path / "second.log")
        before_move: dict[int, int | None] = {}
        consumed_before_move = 0.0

        def moved() -> bool:
            nonlocal before_move, consumed_before_move
            owned = readings_partitions(second) if second is not None else []
            if not owned:  # everything committed so far is the first worker's
                before_move = committed_offsets(slow, range(PARTITIONS))
                consumed_before_move = consumed(first)
                return False
            flat = sorted([*owned, *readings_partitions(first)])
            return flat == list(range(PARTITIONS))

        wait_until(moved, timeout_seconds=60, what="the second worker takes partitions", every=0.2)
        rebalance_s = time.monotonic() - joined_at
        taken = readings_partitions(second)
        kept = readings_partitions(first)
        worker_caught_up(second, slow, timeout_seconds=90, stall_seconds=45, total=len(backlog))
        caught_up_s = time.monotonic() - joined_at
        first_outcomes, second_outcomes = outcomes(first), outcomes(second)
        consumed_first, consumed_second = consumed(first), consumed(second)
        assert first.alive, first.log_tail()
        assert second.alive, second.log_tail()
    finally:
        if second is not None:
            second.stop()
        first.stop()

    dropped_logs = first.log_path.read_text(errors="replace").count("queued readings dropped")
    order = check_changelog_order(slow)
    state = check_state(slow, backlog)
    outcome_total = sum(first_outcomes.values()) + sum(second_outcomes.values())
    duplicates = first_outcomes.get("duplicate", 0) + second_outcomes.get("duplicate", 0)
    # the partitions the second worker took, with the first worker's committed progress in them
    progress = {p: f"{before_move.get(p) or 0}/{ends[p]}" for p in taken}
    report(
        capsys,
        "revoke mid-batch",
        {
            "readings sent": len(backlog),
            "accounted": state.accounted,
            "lost": len(state.lost),
            "consumed (first, second)": (int(consumed_first), int(consumed_second)),
            "outcomes counted": int(outcome_total),
            "replayed as duplicates": int(duplicates),
            "consumed by the first before the move": int(consumed_before_move),
            "moved partitions (committed by the first / end)": progress,
            "kept": kept,
            "queued dropped at revoke (log lines)": dropped_logs,
            "changelog records": order.records,
            "meters": order.meters,
            "stale writes (state going backwards)": len(order.regressions),
            "rebalance s": round(rebalance_s, 1),
            "caught up s": round(caught_up_s, 1),
        },
    )
    # the test means something: a partition moved while the first worker was part-way through
    assert taken and kept, (taken, kept)
    assert any(0 < (before_move.get(p) or 0) < ends[p] for p in taken), (progress, ends)
    # (a) no state write of the old owner after the new owner's
    assert order.regressions == [], order.regressions[:10]
    assert order.meters == METERS
    # (b) every reading accounted for; every one consumed got an outcome
    assert state.lost == [], state.lost[:10]
    assert outcome_total == consumed_first + consumed_second
    assert consumed_first + consumed_second >= len(backlog)

"""Phase 5b: the memory phase's worker SIGKILLed over its state, restarted, and timed.

The memory phase leaves its worker running with every meter's state (100,000 meters in the
quick suite) in its ``meter-state`` table, every reading committed, and with
``STREAMER_GROUP_INSTANCE_ID`` set (static membership, KIP-345). This phase:

1. counts the records of the worker's changelogs (end minus first offset of each partition):
   the tables live in memory (``store="memory://"``), so a restarted worker replays them all;
2. SIGKILLs the worker: no shutdown, no leaving the consumer group, no last commit;
3. at once starts a worker with the same settings: app id (consumer group), group instance id
   and web host and port (a static member rejoining gets the assignment the group leader made
   for the killed one, whose faust metadata holds its web URL: faust's assignor asserts that
   URL is its own, so a restart on another port never gets past the join), and produces a few
   fresh readings, one new slot of ``fresh_readings`` of the meters, on every readings
   partition;
4. polls the new worker's ``/ready`` and ``/metrics`` and the group's committed offsets every
   ``poll_seconds``, timing from just before the process was started: web up (``/ready``
   answers, 503 or 200), partitions assigned, tables recovered, ``/ready`` 200, the fresh
   readings consumed (its ``streamer_readings_consumed_total``) and committed (the group's
   committed lag on the readings topic back to 0).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from pipelinebench.context import RunContext, log
from pipelinebench.kafka_io import produce
from pipelinebench.memory import LATEST_TABLE, STATE_TABLE
from pipelinebench.targets import RESTART_CONSUMED_S, RESTART_READY_S
from pipelinebench.worker import (
    WorkerProcess,
    proc_cpu_seconds,
    proc_runqueue_wait_seconds,
    vm_rss_bytes,
)
from pipelinebench.workload import slot_end_before, slot_major
from streamer.timeutil import now_ms

CONSUMED = "streamer_readings_consumed_total"
#: The memory phase's fleet (pipelinebench.memory): the fresh readings are of its meters.
MEMORY_SEED = 14
#: The longest the phase waits for the restarted worker (a stuck one fails the phase).
MAX_WAIT_SECONDS = 180.0
#: The moments the phase times, in the order they come.
MARKS = ("web_up", "partitions_assigned", "recovered", "ready", "consumed", "committed")


async def _changelog_records(ctx: RunContext, app_id: str) -> dict[str, int]:
    """Records in each table's changelog (end minus first offset, summed over partitions)."""
    out: dict[str, int] = {}
    for table in (STATE_TABLE, LATEST_TABLE):
        topic = f"{app_id}-{table}-changelog"
        try:
            ends = await ctx.watcher.end_offsets(topic)
            starts = await ctx.watcher.beginning_offsets(topic)
        except Exception as exc:  # a table's changelog may not exist yet
            log.info("restart: no offsets of %s: %s", topic, exc)
            continue
        out[table] = sum(end - starts.get(p, 0) for p, end in ends.items())
    return out


def timeline(marks: dict[str, float]) -> dict[str, float | None]:
    """Seconds of each moment after the process start, and the spans between them."""

    def span(a: str, b: str) -> float | None:
        if a in marks and b in marks:
            return round(marks[b] - marks[a], 2)
        return None

    return {
        **{f"{name}_seconds": round(marks[name], 2) if name in marks else None for name in MARKS},
        "boot_seconds": round(marks["web_up"], 2) if "web_up" in marks else None,
        "join_seconds": span("web_up", "partitions_assigned"),
        "recovery_seconds": span("partitions_assigned", "recovered"),
        "ready_to_consumed_seconds": span("ready", "consumed"),
    }


async def restart_phase(
    ctx: RunContext,
    *,
    worker: WorkerProcess,
    meters: int,
    fresh_readings: int,
) -> dict[str, Any]:
    """SIGKILL ``worker`` (the memory phase's, running over ``meters`` meters) and restart it."""
    old = worker.settings
    if old.group_instance_id is None:
        raise ValueError("restart: the worker has no STREAMER_GROUP_INSTANCE_ID (static member)")
    group, topic = old.app_id, old.readings_topic
    if not worker.alive:
        raise RuntimeError(
            f"restart: the memory phase's worker is not running:\n{worker.log_tail()}"
        )
    while await ctx.watcher.committed_lag(group, topic) > 0:  # noqa: ASYNC110
        await asyncio.sleep(ctx.poll_seconds)
    records = await _changelog_records(ctx, group)
    rss = vm_rss_bytes(worker.pid)
    ends_before = await ctx.watcher.end_offsets(topic)
    fresh = slot_major(
        min(fresh_readings, meters),
        1,
        slot_end_before(now_ms(), old.resolution_seconds, 0),  # newer than every state's slot
        seed=MEMORY_SEED,
        resolution_seconds=old.resolution_seconds,
    )
    worker.kill()
    log.info(
        "restart: worker SIGKILLed over %d meters (%s changelog records); restarting",
        meters,
        records,
    )
    settings = old  # the same web port too: see the module's docstring
    started = time.monotonic()
    new = WorkerProcess(
        settings, ctx.run_dir / "worker-restart.log", ctx.root, extra_env=ctx.worker_env
    )
    produced = asyncio.create_task(produce(ctx.bootstrap, topic, fresh))
    marks: dict[str, float] = {}
    ready_body: dict[str, object] = {}
    at_ready: dict[str, float] = {}
    wait_s = min(ctx.timeout_seconds, MAX_WAIT_SECONDS)
    deadline = started + wait_s
    try:
        while not {"ready", "consumed", "committed"} <= marks.keys():
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"restart: not done in {wait_s:.0f} s; so far {marks}:\n{new.log_tail(15)}"
                )
            if not new.alive:
                raise RuntimeError(f"restarted worker exited:\n{new.log_tail()}")
            if "ready" not in marks:
                body = await asyncio.to_thread(new.readiness)
                at = time.monotonic() - started
                if body is not None:
                    marks.setdefault("web_up", at)
                    if body.get("assigned_partitions"):
                        marks.setdefault("partitions_assigned", at)
                        if not body.get("recovering"):
                            marks.setdefault("recovered", at)
                    if body.get("ready"):
                        marks["ready"], ready_body = at, body
                        at_ready = {
                            "worker_cpu_seconds": round(proc_cpu_seconds(new.pid), 2),
                            "worker_waiting_for_cpu_seconds": round(
                                proc_runqueue_wait_seconds(new.pid), 2
                            ),
                        }
            if "web_up" in marks and "consumed" not in marks:
                metrics = await asyncio.to_thread(new.try_metrics)
                if metrics is not None and metrics.total(CONSUMED) >= len(fresh):
                    marks["consumed"] = time.monotonic() - started
            if produced.done() and "committed" not in marks:
                await produced  # raises if the produce failed
                if await ctx.watcher.committed_lag(group, topic) == 0:
                    marks["committed"] = time.monotonic() - started
            await asyncio.sleep(ctx.poll_seconds)
        group_state, members = await ctx.watcher.group_state(group)
        consumed = (await asyncio.to_thread(new.metrics)).total(CONSUMED)
    finally:
        if not produced.done():
            produced.cancel()
        new.stop()
    ends_after = await ctx.watcher.end_offsets(topic)
    replayed = records.get(STATE_TABLE, 0) + records.get(LATEST_TABLE, 0)
    times = timeline(marks)
    recovery_s = times["recovery_seconds"]
    result: dict[str, Any] = {
        "meters": meters,
        "app_id": group,
        "group_instance_id": settings.group_instance_id,
        "killed": {"signal": "SIGKILL", "rss_bytes": rss},
        "changelog_records": records,
        "changelog_records_replayed": replayed,
        "replayed_records_per_s": round(replayed / recovery_s, 1) if recovery_s else None,
        "fresh_readings": len(fresh),
        "fresh_readings_by_partition": {
            str(p): end - ends_before.get(p, 0) for p, end in sorted(ends_after.items())
        },
        "readings_consumed_after_restart": consumed,
        **times,
        "at_ready": at_ready,
        "readings_partitions": ready_body.get("readings_partitions"),
        "group_after": {"state": group_state, "members": members},
        "target_ready_seconds": RESTART_READY_S,
        "target_consumed_seconds": RESTART_CONSUMED_S,
        "method": "the memory phase's worker, all readings committed, is SIGKILLed; a worker "
        "with the same settings (app id, group instance id: static membership; web port) is "
        f"started at once and {len(fresh):,} fresh readings are produced; seconds from just "
        f"before the process start, polled every {ctx.poll_seconds} s: /ready 200, the fresh "
        "readings in the worker's consumed counter, the group's committed lag back to 0. "
        "Changelog records replayed = end minus first offset of each changelog partition at "
        "the kill (tables in memory: a restart replays them all; an upper bound once the log "
        "cleaner compacted)",
    }
    log.info(
        "restart: ready in %s s, fresh readings consumed in %s s, committed in %s s "
        "(%d changelog records replayed in %s s)",
        times["ready_seconds"],
        times["consumed_seconds"],
        times["committed_seconds"],
        replayed,
        recovery_s,
    )
    return result

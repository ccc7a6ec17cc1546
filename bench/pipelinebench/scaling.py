"""Phase 6: two workers on a 4-partition topic against one, on the same backlog.

For each worker count, fresh topics and a fresh consumer group: the workers start on the empty
readings topic and the bench waits until the group is stable with every readings partition
owned (each worker's ``/ready`` lists its partitions), so no rebalance falls in the measured
time. Then the backlog (the same readings each time, forecasting off) is produced, and the
rate is readings / (first reading consumed by any worker to committed lag 0).

On a machine with fewer cores than workers + broker + bench the wall-clock ratio measures the
CPU the workers could get as much as the workers; the report gives the CPU each used and the
time each spent runnable but waiting for a CPU, and issue 13's target is the CPU-bound figure:
readings per second of worker CPU, two workers against one.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Sequence
from typing import Any

from pipelinebench.context import RunContext, Sample, cpu_shares, delta, log
from pipelinebench.ingest import CONSUMED, NO_FORECASTS_EVERY_SLOTS
from pipelinebench.kafka_io import produce
from pipelinebench.targets import SCALING_CPU_EFFICIENCY, SPEEDUP
from pipelinebench.worker import WorkerProcess, phase_settings
from pipelinebench.workload import slot_end_before, slot_major
from streamer.kafka_admin import ensure_topics
from streamer.simulate.wire import Message
from streamer.timeutil import now_ms

#: Two workers' wall-clock speedup expected on machines with 3 or more free cores (reported).
TARGET_SPEEDUP = SPEEDUP


async def _wait_balanced(
    ctx: RunContext, workers: Sequence[WorkerProcess], group: str, partitions: int
) -> float:
    """Wait until the group is stable and its workers own every readings partition."""
    started = time.monotonic()
    deadline = started + ctx.timeout_seconds
    good = 0
    while good < 2:  # two checks in a row, a second apart
        if time.monotonic() > deadline:
            raise TimeoutError(f"group {group} did not settle with {len(workers)} workers")
        for worker in workers:
            if not worker.alive:
                raise RuntimeError(f"scaling worker exited:\n{worker.log_tail()}")
        await asyncio.sleep(1.0)
        bodies = [await asyncio.to_thread(w.readiness) for w in workers]
        owned: list[int] = []
        for body in bodies:
            if body is not None and body.get("ready"):
                parts = body.get("readings_partitions")
                if isinstance(parts, list) and parts:
                    owned.extend(int(p) for p in parts)
                    continue
            owned = []
            break
        state, members = await ctx.watcher.group_state(group)
        balanced = (
            state == "Stable"
            and members == len(workers)
            and sorted(owned) == list(range(partitions))
        )
        good = good + 1 if balanced else 0
    return time.monotonic() - started


async def _run(
    ctx: RunContext,
    workers_count: int,
    messages: Sequence[Message],
    worker_overrides: dict[str, object],
    tag: str,
) -> dict[str, Any]:
    name = ctx.phase_name(tag)
    settings = phase_settings(
        ctx.base_settings,
        name,
        forecast_every_slots=NO_FORECASTS_EVERY_SLOTS,
        **worker_overrides,
    )
    await ensure_topics(settings)
    total = len(messages)
    workers: list[WorkerProcess] = []
    try:
        for i in range(workers_count):
            # same group and topics; its own web port and data dir
            own = (
                settings
                if i == 0
                else phase_settings(
                    ctx.base_settings,
                    name,
                    forecast_every_slots=NO_FORECASTS_EVERY_SLOTS,
                    state_dir=settings.state_dir / f"worker-{i}",
                    **worker_overrides,
                )
            )
            workers.append(
                WorkerProcess(
                    own, ctx.run_dir / f"worker-{name}-{i}.log", ctx.root, extra_env=ctx.worker_env
                )
            )
        settle_s = await _wait_balanced(ctx, workers, settings.app_id, settings.topic_partitions)
        owned = [w.readiness() or {} for w in workers]
        befores = [Sample.take(ctx, w) for w in workers]
        produced = asyncio.create_task(produce(ctx.bootstrap, settings.readings_topic, messages))
        first_at: float | None = None
        prev_at = time.perf_counter()
        deadline = time.monotonic() + ctx.timeout_seconds
        done: list[Sample] | None = None
        # the last samples before any reading was consumed: the CPU figure's start, so the
        # workers' idle time while the backlog was being produced does not count
        idle = starts = befores
        while done is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"scaling with {workers_count} workers did not finish")
            await asyncio.sleep(ctx.poll_seconds)
            samples = [Sample.take(ctx, w) for w in workers]
            consumed = sum(s.metrics.total(CONSUMED) for s in samples)
            if first_at is None and consumed > 0:
                first_at = (prev_at + samples[0].at) / 2
                starts = idle
            if consumed >= total:
                done = samples
            prev_at = samples[0].at
            idle = samples
        produce_s = await produced
        while await ctx.watcher.committed_lag(settings.app_id, settings.readings_topic) > 0:  # noqa: ASYNC110
            await asyncio.sleep(ctx.poll_seconds)
        lag0_at = time.perf_counter()
    finally:
        for worker in workers:
            worker.stop()
    assert first_at is not None
    seconds = lag0_at - first_at
    per_worker: list[dict[str, Any]] = []
    batches = events = cpu_total = 0.0
    for worker_no, (before, after) in enumerate(zip(befores, done, strict=True)):
        per_worker.append(
            {
                "worker": worker_no,
                "readings_partitions": owned[worker_no].get("readings_partitions"),
                "readings": delta(after, before, CONSUMED),
                **cpu_shares(after, before, after.at - before.at),
            }
        )
        batches += delta(after, before, "streamer_batch_size_messages_count")
        events += delta(after, before, "streamer_batch_size_messages_sum")
    for start, after in zip(starts, done, strict=True):
        cpu_total += after.worker_cpu - start.worker_cpu
    return {
        "workers": workers_count,
        "readings": total,
        "settle_seconds": round(settle_s, 1),
        "produce_seconds": round(produce_s, 2),
        "first_consumed_to_lag0_seconds": round(seconds, 3),
        "readings_per_s": round(total / seconds, 1),
        # issue 13's figure: readings per second of worker CPU, every worker's together, from
        # the last poll before the first reading was consumed to all consumed
        "worker_cpu_seconds_total": round(cpu_total, 3),
        "readings_per_worker_cpu_second": round(total / cpu_total, 1) if cpu_total > 0 else None,
        "mean_batch_events": round(events / batches, 1) if batches else None,
        "per_worker": per_worker,
        "worker_cores_total": round(sum(w["worker_cores"] for w in per_worker), 3),
        "worker_waiting_for_cpu_cores_total": round(
            sum(w["worker_waiting_for_cpu_cores"] for w in per_worker), 3
        ),
        "broker_cores": per_worker[0]["broker_cores"],
        # share of the workers' runnable time spent waiting for a CPU: the machine's other load
        "waiting_share": _waiting_share(per_worker),
    }


def _waiting_share(per_worker: list[dict[str, Any]]) -> float | None:
    ran = sum(w["worker_cores"] for w in per_worker)
    waited = sum(w["worker_waiting_for_cpu_cores"] for w in per_worker)
    return round(waited / (ran + waited), 3) if ran + waited > 0 else None


async def scaling_phase(
    ctx: RunContext,
    *,
    meters: int,
    slots: int,
    worker_overrides: dict[str, object],
    partitions: int,
    resolution_seconds: int,
    repeats: int = 1,
) -> dict[str, Any]:
    """One worker, then two, ``repeats`` times interleaved; the best run of each counts."""
    res_s = resolution_seconds
    end_ms = slot_end_before(now_ms(), res_s, 2)
    messages = slot_major(meters, slots, end_ms, seed=15, resolution_seconds=res_s)
    runs: list[dict[str, Any]] = []
    for repeat in range(repeats):
        for count in (1, 2):
            row = await _run(ctx, count, messages, worker_overrides, f"scale{count}-r{repeat}")
            row["repeat"] = repeat
            log.info("scaling: %d worker(s): %.0f readings/s", count, row["readings_per_s"])
            runs.append(row)
    best = [
        max((r for r in runs if r["workers"] == count), key=lambda r: r["readings_per_s"])
        for count in (1, 2)
    ]
    speedup = best[1]["readings_per_s"] / best[0]["readings_per_s"]
    per_one, per_two = (run.get("readings_per_worker_cpu_second") for run in best)
    return {
        "meters": meters,
        "slots": slots,
        "partitions": partitions,
        "repeats": repeats,
        "forecasting": "off (cadence 10^9 slots), as in the ingest phase",
        "runs": best,
        "all_runs": runs,
        "speedup": round(speedup, 3),
        "target_speedup": TARGET_SPEEDUP,
        "cpu_efficiency": round(per_two / per_one, 4) if per_one and per_two else None,
        "target_cpu_efficiency": SCALING_CPU_EFFICIENCY,
        "cpu_cores_on_machine": os.cpu_count(),
        "method": "workers started on the empty topic and balanced (group Stable, every "
        "readings partition owned) before the backlog is produced; rate = readings / (first "
        f"consumed by any worker to committed lag 0); {repeats} run(s) of each, interleaved, "
        "the best of each counts",
    }

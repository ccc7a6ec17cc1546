"""Phase 5: memory per meter, resident (worker VmRSS) and serialized (the changelog value).

One worker starts on empty topics; its resident set is read from ``/proc/<pid>/status`` once
it is ready and idle (no meter). Then the readings of the first ``meter_steps[0]`` meters are
produced, and once the worker has taken them in (committed lag 0) and settled, VmRSS is read
again; then the next meters up to ``meter_steps[1]``, and so on. Resident bytes per meter are
(RSS - idle RSS) / meters, and the marginal figure between two steps leaves out what the first
batches allocate once.

The serialized size is read from the worker's ``meter-state`` changelog: the value of each
record sampled, split into the parts of ``streamer.pipeline.meter_record``.

With ``hand_over`` the worker is left running, with every meter's state, for the restart phase
(:mod:`pipelinebench.restart`), which kills it.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Sequence
from typing import Any

from pipelinebench.context import RunContext, log
from pipelinebench.ingest import NO_FORECASTS_EVERY_SLOTS
from pipelinebench.kafka_io import produce, sample_values
from pipelinebench.stats import RECORD_PARTS, record_sections
from pipelinebench.worker import WorkerProcess, phase_settings, vm_rss_bytes
from pipelinebench.workload import slot_end_before, slot_major
from streamer.kafka_admin import ensure_topics
from streamer.timeutil import now_ms

CONSUMED = "streamer_readings_consumed_total"
STATE_TABLE = "meter-state"
LATEST_TABLE = "meter-latest-forecast"
#: Issue 7's target of serialized state per meter.
TARGET_STATE_BYTES = 2048


async def _settled_rss(worker: WorkerProcess, settle_seconds: float) -> dict[str, Any]:
    """VmRSS after ``settle_seconds``: the median of five reads half a second apart."""
    await asyncio.sleep(settle_seconds)
    reads = []
    for _ in range(5):
        reads.append(vm_rss_bytes(worker.pid))
        await asyncio.sleep(0.5)
    return {"rss_bytes": int(statistics.median(reads)), "reads": reads}


async def _wait_consumed(
    ctx: RunContext, worker: WorkerProcess, total: int, group: str, topic: str
) -> float:
    started = time.perf_counter()
    deadline = time.monotonic() + ctx.timeout_seconds
    while True:
        if time.monotonic() > deadline:
            raise TimeoutError(f"memory: worker did not take in {total} readings")
        if not worker.alive:
            raise RuntimeError(f"memory worker exited:\n{worker.log_tail()}")
        metrics = await asyncio.to_thread(worker.try_metrics)
        if metrics is not None and metrics.total(CONSUMED) >= total:
            break
        await asyncio.sleep(0.25)
    while await ctx.watcher.committed_lag(group, topic) > 0:  # noqa: ASYNC110
        await asyncio.sleep(0.25)
    return time.perf_counter() - started


async def memory_phase(
    ctx: RunContext,
    *,
    meter_steps: Sequence[int],
    slots_per_meter: int,
    settle_seconds: float,
    worker_overrides: dict[str, object],
    hand_over: list[WorkerProcess] | None = None,
) -> dict[str, Any]:
    settings = phase_settings(
        ctx.base_settings,
        ctx.phase_name("memory"),
        forecast_every_slots=NO_FORECASTS_EVERY_SLOTS,
        **worker_overrides,
    )
    await ensure_topics(settings)
    topic = settings.readings_topic
    largest = max(meter_steps)
    end_ms = slot_end_before(now_ms(), settings.resolution_seconds, 2)
    messages = slot_major(
        largest, slots_per_meter, end_ms, seed=14, resolution_seconds=settings.resolution_seconds
    )
    order = {key: i for i, (key, _) in enumerate(messages[:largest])}  # first slot: every meter
    worker = WorkerProcess(
        settings, ctx.run_dir / "worker-memory.log", ctx.root, extra_env=ctx.worker_env
    )
    steps: list[dict[str, Any]] = []
    handed = False
    try:
        ready_s = await asyncio.to_thread(worker.wait_ready, ctx.timeout_seconds)
        idle = await _settled_rss(worker, settle_seconds)
        log.info("memory: idle worker RSS %.1f MB", idle["rss_bytes"] / 1e6)
        sent = 0
        low = 0
        for meters in sorted(meter_steps):
            batch = [m for m in messages if low <= order[m[0]] < meters]
            low = meters
            await produce(ctx.bootstrap, topic, batch)
            sent += len(batch)
            took = await _wait_consumed(ctx, worker, sent, settings.app_id, topic)
            rss = await _settled_rss(worker, settle_seconds)
            metrics = await asyncio.to_thread(worker.metrics)
            grown = rss["rss_bytes"] - idle["rss_bytes"]
            row: dict[str, Any] = {
                "meters": meters,
                "readings_total": sent,
                "ingest_seconds": round(took, 1),
                **rss,
                "rss_over_idle_bytes": grown,
                "resident_bytes_per_meter": round(grown / meters, 1),
                "state_writes": metrics.total("streamer_state_writes_total"),
            }
            if steps:
                prev = steps[-1]
                row["marginal_bytes_per_meter"] = round(
                    (rss["rss_bytes"] - prev["rss_bytes"]) / (meters - prev["meters"]), 1
                )
            steps.append(row)
            log.info(
                "memory: %d meters, RSS %.1f MB, %.0f B/meter over idle",
                meters,
                rss["rss_bytes"] / 1e6,
                row["resident_bytes_per_meter"],
            )
        if hand_over is not None:
            hand_over.append(worker)  # still running: the restart phase kills it
            handed = True
    finally:
        if not handed:
            worker.stop()
    state = await record_bytes(ctx, settings.app_id)
    return {
        "slots_per_meter": slots_per_meter,
        "forecasting": "off (cadence 10^9 slots): the meter-latest-forecast table stays empty",
        "state_cache_meters": int(
            ctx.worker_env.get("STREAMER_STATE_CACHE_METERS", settings.state_cache_meters)
        ),
        "lookback_slots": settings.lookback_slots,
        "worker_ready_seconds": round(ready_s, 1),
        "idle": idle,
        "steps": steps,
        "serialized_state": state,
        "target_state_bytes": TARGET_STATE_BYTES,
    }


async def record_bytes(ctx: RunContext, app_id: str, max_records: int = 5000) -> dict[str, Any]:
    """Sizes of the state table's changelog values (and of the newest-forecast table's)."""
    out: dict[str, Any] = {}
    state_topic = f"{app_id}-{STATE_TABLE}-changelog"
    values = [v for _, v in await sample_values(ctx.bootstrap, state_topic, max_records) if v]
    if values:
        sizes = [len(v) for v in values]
        parts = [record_sections(v) for v in values]
        out = {
            "records_sampled": len(values),
            "mean_bytes": round(statistics.fmean(sizes), 1),
            "min_bytes": min(sizes),
            "max_bytes": max(sizes),
            "mean_bytes_by_part": {
                name: round(statistics.fmean(p[name] for p in parts), 1)
                for name in ("framing", *RECORD_PARTS)
            },
        }
    latest_topic = f"{app_id}-{LATEST_TABLE}-changelog"
    try:
        latest = [v for _, v in await sample_values(ctx.bootstrap, latest_topic, 2000, 5.0) if v]
    except Exception as exc:  # the table's changelog may not exist when nothing was forecast
        log.info("no %s sample: %s", latest_topic, exc)
        latest = []
    if latest:
        out["latest_forecast_mean_bytes"] = round(statistics.fmean(len(v) for v in latest), 1)
    return out

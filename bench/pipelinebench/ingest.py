"""Phases 1 and 2: the consume ceilings (raw aiokafka, bare faust) and the worker's ingest.

All three consume the same backlog from the same broker, one after the other.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from pathlib import Path
from typing import Any

from pipelinebench.context import RunContext, Sample, cpu_shares, delta, log
from pipelinebench.faust_ceiling import WITHIN_SECONDS, faust_drain_run
from pipelinebench.kafka_io import produce, raw_consume
from pipelinebench.profiling import PySpy, py_spy_path, summarise
from pipelinebench.stats import ratio
from pipelinebench.targets import INGEST_TARGET, INGEST_VS_FAUST_TARGET
from pipelinebench.worker import WorkerProcess, phase_settings
from pipelinebench.workload import slot_major
from streamer.kafka_admin import ensure_topics

CONSUMED = "streamer_readings_consumed_total"
#: Cadence so long that no meter is ever due: the worker updates state and forecasts nothing.
NO_FORECASTS_EVERY_SLOTS = 10**9
#: once all is processed, the committed lag is read this often
LAG_POLL_SECONDS = 0.01
#: Passes of the raw consumer over the backlog until at least this much time was measured.
CEILING_MIN_SECONDS = 3.0


async def ingest_phase(
    ctx: RunContext,
    *,
    meters: int,
    slots: int,
    end_ms: int,
    ceiling_repeats: int,
    faust_ceiling: bool,
    worker_overrides: dict[str, object],
    profile_out: Path | None,
    faust_within_seconds: float = WITHIN_SECONDS,
) -> dict[str, Any]:
    settings = phase_settings(
        ctx.base_settings,
        ctx.phase_name("ingest"),
        forecast_every_slots=NO_FORECASTS_EVERY_SLOTS,
        **worker_overrides,
    )
    await ensure_topics(settings)
    topic = settings.readings_topic
    started = time.perf_counter()
    messages = slot_major(
        meters, slots, end_ms, seed=11, resolution_seconds=settings.resolution_seconds
    )
    encode_s = time.perf_counter() - started
    total = len(messages)
    log.info(
        "ingest: %d readings (%d meters x %d slots) encoded in %.1f s",
        total,
        meters,
        slots,
        encode_s,
    )
    produce_s = await produce(ctx.bootstrap, topic, messages)
    value_bytes = sum(len(v) for _, v in messages)
    del messages
    log.info("ingest: produced in %.1f s (%.0f/s)", produce_s, total / produce_s)

    # a pass over a small backlog takes a fraction of a second: repeat passes for a stable figure
    ceilings: list[dict[str, float]] = []
    spent = 0.0
    while len(ceilings) < ceiling_repeats or (spent < CEILING_MIN_SECONDS and len(ceilings) < 30):
        run = await raw_consume(ctx.bootstrap, topic, total, ctx.timeout_seconds)
        spent += run.seconds
        ceilings.append(
            {
                "messages": run.messages,
                "seconds": round(run.seconds, 3),
                "per_s": round(run.per_second, 1),
            }
        )
    rates = sorted(c["per_s"] for c in ceilings)
    median = statistics.median(rates)
    log.info("ceiling A: median %.0f messages/s over %d passes", median, len(rates))
    faust_runs = []
    if faust_ceiling:
        faust_runs.append(
            await faust_drain_run(
                ctx,
                topic=topic,
                total=total,
                worker_overrides=worker_overrides,
                profile_out=profile_out.with_name("faust.pyspy.txt") if profile_out else None,
                within_seconds=faust_within_seconds,
            )
        )

    # the lag reads at the end must not pay the watcher's first look at the topic's end
    # offsets (its metadata, about 100 ms): the bare faust app's run reads them, and without
    # that run, this
    await ctx.watcher.end_offsets(topic)
    worker = WorkerProcess(
        settings, ctx.run_dir / "worker-ingest.log", ctx.root, extra_env=ctx.worker_env
    )
    try:
        result = await _watch_ingest(ctx, worker, total, settings.app_id, topic, profile_out)
    finally:
        worker.stop()
    written = ctx.topic_bytes(settings.app_id + "-")
    result["broker_bytes_by_topic"] = written
    result["bytes_written_per_reading"] = round(
        sum(v for k, v in written.items() if k != "readings") / total, 1
    )
    rate = result["readings_per_s_to_lag0"]
    faust_rate: float | None = faust_runs[0]["per_s_drained"] if faust_runs else None
    return {
        "meters": meters,
        "slots": slots,
        "readings": total,
        "mean_value_bytes": round(value_bytes / total, 1),
        "order": "slot-major (every meter's reading of a slot, then the next slot)",
        "worker_settings": {
            "forecast_every_slots": NO_FORECASTS_EVERY_SLOTS,
            "batch_max_events": settings.batch_max_events,
            "topic_partitions": settings.topic_partitions,
        },
        "produce": {"seconds": round(produce_s, 2), "per_s": round(total / produce_s, 1)},
        "ceiling_raw_consume": {
            "passes": len(ceilings),
            "median_per_s": median,
            "best_per_s": rates[-1],
            "worst_per_s": rates[0],
            "runs": ceilings,
        },
        "ceiling_faust": faust_runs,
        "worker": result,
        "ratio_to_ceiling": round(rate / median, 4),
        "target_ratio": INGEST_TARGET,
        "target_ratio_to_faust_ceiling": INGEST_VS_FAUST_TARGET,
        # info: the same clock on both sides (first event to last event handled)
        "ratio_to_faust_ceiling": ratio(result["readings_per_s_processed"], faust_rate),
        "faust_ceiling_to_raw_ceiling": ratio(faust_rate, median),
    }


async def _watch_ingest(
    ctx: RunContext,
    worker: WorkerProcess,
    total: int,
    group: str,
    topic: str,
    profile_out: Path | None,
) -> dict[str, Any]:
    spy_exe = py_spy_path() if profile_out is not None else None
    spy: PySpy | None = None
    deadline = time.monotonic() + ctx.timeout_seconds
    prev_at = time.perf_counter()
    first: Sample | None = None
    first_at = done_at = lag0_at = 0.0
    done: Sample | None = None
    while True:
        if time.monotonic() > deadline:
            raise TimeoutError(f"ingest did not finish:\n{worker.log_tail()}")
        if not worker.alive:
            raise RuntimeError(f"ingest worker exited:\n{worker.log_tail()}")
        # the metrics are scraped every poll interval; once all is processed, the committed
        # lag is read every LAG_POLL_SECONDS from then on (a full interval's sleep first would
        # add half of it, on average, to a phase of well under a second)
        await asyncio.sleep(ctx.poll_seconds if done is None else LAG_POLL_SECONDS)
        if done is None:
            metrics = worker.try_metrics()
            if metrics is None:
                prev_at = time.perf_counter()
                continue
            now = Sample.take(ctx, worker, metrics)
            consumed = metrics.total(CONSUMED)
            if first is None and consumed > 0:
                first, first_at = now, (prev_at + now.at) / 2
                if spy_exe is not None and profile_out is not None:
                    spy = PySpy(spy_exe, worker.pid, profile_out)
            if consumed >= total:
                done, done_at = now, (prev_at + now.at) / 2
            prev_at = now.at
        else:
            lag = await ctx.watcher.committed_lag(group, topic)
            at = time.perf_counter()
            if lag == 0:
                lag0_at = (prev_at + at) / 2
                break
            prev_at = at
    if spy is not None:  # (stopped once the lag is read: stopping it takes a while)
        spy.stop()
    assert first is not None and done is not None
    seconds = done_at - first_at
    lag_seconds = lag0_at - first_at
    batches = delta(done, first, "streamer_batch_size_messages_count")
    events = delta(done, first, "streamer_batch_size_messages_sum")
    busy = delta(done, first, "streamer_batch_duration_seconds_sum")
    consumed_total = done.metrics.total(CONSUMED)
    profile: dict[str, Any] | None = None
    if profile_out is not None and spy is not None:
        profile = {"raw_file": ctx.relative(profile_out)}
        if await asyncio.to_thread(profile_out.exists):
            profile.update(summarise(profile_out, ctx.root))
    return {
        "profiled": spy is not None,
        "profile": profile,
        "readings_consumed": consumed_total,
        "first_consumed_to_all_processed_seconds": round(seconds, 3),
        "first_consumed_to_lag0_seconds": round(lag_seconds, 3),
        "readings_per_s_processed": round(total / seconds, 1),
        "readings_per_s_to_lag0": round(total / lag_seconds, 1),
        "outcomes": {
            outcome: done.metrics.total("streamer_reading_outcomes_total", outcome=outcome)
            for outcome in ("applied", "corrected", "duplicate", "dead_lettered")
        },
        "forecasts": done.metrics.total("streamer_forecasts_total"),
        "state_writes": done.metrics.total("streamer_state_writes_total"),
        "mean_batch_events": round(events / batches, 1) if batches else None,
        "batch_handler_busy_share": round(busy / seconds, 3) if seconds > 0 else None,
        "batch_handler_us_per_reading": round(busy / events * 1e6, 2) if events else None,
        **cpu_shares(done, first, done.at - first.at),
        "worker_cpu_us_per_reading": round(
            (done.worker_cpu - first.worker_cpu) / max(1.0, events) * 1e6, 1
        ),
        "note": "first consumed = first scrape with readings_consumed_total > 0 (poll midpoint); "
        "lag 0 = committed offsets of the worker's group equal the end offsets",
    }

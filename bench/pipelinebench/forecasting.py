"""Phase 3: the forecast-heavy regime at saturation, every reading due a forecast.

A worker preloaded with history gets a backlog of several slots of every meter, produced back
to back (slot-major): batches are full from the first to the last, so the worker never waits
for readings, and with at least ``batch_max_events`` meters no batch holds two readings of a
meter, so each reading is due a forecast (cadence 1). Forecasts/s are measured over the
worker's complete batch cycles, from the forecasts' own ``issued_at`` (the start of the batch
that made them), not from the bench's polling.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pipelinebench.context import RunContext, Sample, cpu_shares, delta, log
from pipelinebench.kafka_io import new_producer, produce, read_between, send_all
from pipelinebench.onnx_ceiling import onnx_rates
from pipelinebench.profiling import PySpy, py_spy_path, summarise
from pipelinebench.stats import batch_cycles, forecast_issued_ms
from pipelinebench.worker import WorkerProcess, phase_settings
from pipelinebench.workload import forecast_workload
from streamer.inference.providers import parse_providers
from streamer.kafka_admin import ensure_topics
from streamer.modelrepo.layout import resolve_version
from streamer.settings import Settings
from streamer.simulate.wire import Message

CONSUMED = "streamer_readings_consumed_total"
FORECASTS = "streamer_forecasts_total"
SKIPPED = "streamer_forecasts_skipped_total"
INFER_SUM = "streamer_inference_duration_seconds_sum"
INFER_COUNT = "streamer_inference_duration_seconds_count"


async def forecast_phase(
    ctx: RunContext,
    *,
    name: str = "forecast",
    meters: int,
    history_slots: int,
    rounds: int,
    profile_rounds: int,
    end_ms: int,
    worker_overrides: dict[str, object],
    profile_out: Path | None,
) -> dict[str, Any]:
    """``rounds`` slots of every meter as the measured backlog; ``profile_rounds`` more as a
    second backlog under py-spy."""
    settings = phase_settings(ctx.base_settings, ctx.phase_name(name), **worker_overrides)
    await ensure_topics(settings)
    if meters < settings.batch_max_events:
        log.warning(
            "forecast: %d meters < batch_max_events %d: a full batch holds two readings of some "
            "meters, and a meter is forecast once per batch",
            meters,
            settings.batch_max_events,
        )
    spy_exe = py_spy_path() if profile_out is not None else None
    if profile_out is not None and spy_exe is None:
        log.warning("py-spy not found (.venv/bin/pip install py-spy): no profile")
    extra_rounds = profile_rounds if spy_exe is not None else 0
    work = forecast_workload(
        meters,
        history_slots,
        rounds + extra_rounds,
        end_ms,
        seed=12,
        resolution_seconds=settings.resolution_seconds,
    )
    produce_s = await produce(ctx.bootstrap, settings.readings_topic, work.history)
    log.info("forecast: %d history readings produced in %.1f s", len(work.history), produce_s)

    worker = WorkerProcess(
        settings, ctx.run_dir / f"worker-{name}.log", ctx.root, extra_env=ctx.worker_env
    )
    try:
        preload = await wait_preloaded(ctx, worker, settings, work.history)
        log.info("forecast: preload done (%s readings/s)", preload["readings_per_s_processed"])
        producer = new_producer(ctx.bootstrap)
        await producer.start()
        try:
            measured = await _backlog(ctx, worker, settings, producer, work.rounds[:rounds])
            log.info(
                "forecast: %s forecasts/s over %s batches",
                measured["forecasts_per_s"],
                measured["batches"],
            )
            # the ceiling right away, under the same load from the rest of the machine (the
            # worker idles meanwhile), at the batch size the worker used in the measured span
            # (the batches whose cycles were timed) and at its largest
            used = measured["mean_batch_forecasts_in_span"] or measured["mean_lstm_batch"]
            batch = max(1, round(used or 1))
            measured["ceiling_batch_size"] = batch
            sizes = sorted({batch, settings.batch_max_events})
            log.info("raw ONNX Runtime at batch sizes %s", sizes)
            onnx = await asyncio.to_thread(
                onnx_rates,
                resolve_version(settings.models_dir, "lstm", None),  # the worker's: newest
                sizes,
                parse_providers(settings.onnx_providers),
            )
            profile: dict[str, Any] | None = None
            if spy_exe is not None and profile_out is not None:
                spy = PySpy(spy_exe, worker.pid, profile_out)
                await asyncio.sleep(1.0)  # py-spy attaches
                profiled = await _backlog(ctx, worker, settings, producer, work.rounds[rounds:])
                errors = spy.stop()
                profile = {"raw_file": ctx.relative(profile_out), "run": profiled}
                if await asyncio.to_thread(profile_out.exists):
                    profile.update(summarise(profile_out, ctx.root))
                else:
                    profile["error"] = errors
        finally:
            await producer.stop()
        final = await asyncio.to_thread(worker.metrics)
    finally:
        worker.stop()
    written = ctx.topic_bytes(settings.app_id + "-")
    forecasts_out = final.total("streamer_forecasts_total")
    state_writes = final.total("streamer_state_writes_total")
    readings = len(work.history) + sum(len(r) for r in work.rounds)
    return {
        "broker_bytes_by_topic": written,
        "bytes_written_per_reading": round(
            sum(v for k, v in written.items() if k != "readings") / readings, 1
        ),
        # a live reading with its forecast writes one state record, one forecast and one
        # latest-forecast changelog record: each at its mean size on the broker's disk
        "kafka_bytes_per_live_reading": live_reading_bytes(written, forecasts_out, state_writes),
        "meters": meters,
        "history_slots": history_slots,
        "backlog_slots": rounds,
        "worker_settings": {
            "forecaster": settings.forecaster,
            "forecast_every_slots": settings.forecast_every_slots,
            "batch_max_events": settings.batch_max_events,
            "horizon_slots": settings.horizon_slots,
            "topic_partitions": settings.topic_partitions,
        },
        "preload": preload,
        **measured,
        "profile": profile,
        "onnx": onnx,
    }


async def wait_preloaded(
    ctx: RunContext, worker: WorkerProcess, settings: Settings, history: Sequence[Message]
) -> dict[str, Any]:
    """Wait until the worker took in the ``history`` backlog and committed it."""
    total = len(history)
    deadline = time.monotonic() + ctx.timeout_seconds
    first: Sample | None = None
    done: Sample | None = None
    while done is None:
        if time.monotonic() > deadline:
            raise TimeoutError(f"preload did not finish:\n{worker.log_tail()}")
        if not worker.alive:
            raise RuntimeError(f"forecast worker exited:\n{worker.log_tail()}")
        await asyncio.sleep(ctx.poll_seconds)
        metrics = worker.try_metrics()
        if metrics is None:
            continue
        consumed = metrics.total(CONSUMED)
        if first is None and consumed > 0:
            first = Sample.take(ctx, worker, metrics)
        if consumed >= total:
            done = Sample.take(ctx, worker, metrics)
    assert first is not None
    lag = await ctx.watcher.committed_lag(settings.app_id, settings.readings_topic)
    while lag > 0:  # polling the broker: nothing here to wait on instead
        await asyncio.sleep(ctx.poll_seconds)
        lag = await ctx.watcher.committed_lag(settings.app_id, settings.readings_topic)
    await asyncio.sleep(1.0)  # let the last forecasts and changelog writes go out
    seconds = done.at - first.at
    return {
        "readings": total,
        "order": "meter-major (each meter's history in one run)",
        "seconds": round(seconds, 2),
        "readings_per_s_processed": round(total / seconds, 1) if seconds > 0 else None,
        "forecasts": done.metrics.total(FORECASTS),
    }


async def _backlog(
    ctx: RunContext,
    worker: WorkerProcess,
    settings: Settings,
    producer: Any,
    slots: Sequence[list[Message]],
) -> dict[str, Any]:
    """Send ``slots`` (each one slot of every meter) back to back as one backlog; once the
    worker took all of it in, read its forecasts back and time its batch cycles."""
    messages = [message for slot in slots for message in slot]
    readings = len(messages)
    topic = settings.forecasts_topic
    out_start = await ctx.watcher.end_offsets(topic)
    before = Sample.take(ctx, worker)
    started = time.perf_counter()
    await send_all(producer, settings.readings_topic, messages)
    sent_s = time.perf_counter() - started
    deadline = time.monotonic() + ctx.timeout_seconds
    done: Sample | None = None
    taken = 0.0
    while done is None:  # a batch counts its readings once its outputs are acknowledged
        if time.monotonic() > deadline:
            raise TimeoutError(f"backlog not processed:\n{worker.log_tail()}")
        if not worker.alive:
            raise RuntimeError(f"forecast worker exited:\n{worker.log_tail()}")
        await asyncio.sleep(
            backlog_poll_seconds(taken, readings, time.perf_counter() - before.at, ctx.poll_seconds)
        )
        metrics = worker.try_metrics()
        if metrics is None:
            continue
        taken = metrics.total(CONSUMED) - before.metrics.total(CONSUMED)
        if taken >= readings:
            done = Sample.take(ctx, worker, metrics)
    await asyncio.sleep(0.3)  # the scrape after the run sees its metrics complete
    after = Sample.take(ctx, worker)
    out_end = await ctx.watcher.end_offsets(topic)
    records = await read_between(ctx.bootstrap, topic, out_start, out_end)
    cycles = batch_cycles(
        [forecast_issued_ms(value) for _, value, _ in records if value is not None]
    )
    forecasts = int(delta(after, before, FORECASTS))
    lstm = int(delta(after, before, FORECASTS, model_name="lstm", fallback="false"))
    calls = int(delta(after, before, INFER_COUNT, model_name="lstm"))
    infer_s = delta(after, before, INFER_SUM, model_name="lstm")
    batches = int(delta(after, before, "streamer_batch_size_messages_count"))
    events = delta(after, before, "streamer_batch_size_messages_sum")
    busy = delta(after, before, "streamer_batch_duration_seconds_sum")
    worker_cpu = done.worker_cpu - before.worker_cpu
    broker_cpu = done.broker_cpu - before.broker_cpu
    # mean time per batch in the handler and in the forecaster call, against the mean cycle
    spanned = cycles["batches"] - cycles["ramp_up_batches"] - 1
    cycle = cycles["seconds"] / spanned if cycles["seconds"] else None
    return {
        "readings": readings,
        "order": "slot-major, produced back to back as one backlog",
        "send_seconds": round(sent_s, 3),
        "forecasts": forecasts,
        "forecasts_read_back": cycles["forecasts"],
        "fallback_forecasts": int(delta(after, before, FORECASTS, fallback="true")),
        "skipped_forecasts": int(delta(after, before, SKIPPED)),
        # forecasts/s over the worker's complete batch cycles (see stats.batch_cycles)
        "forecasts_per_s": cycles["forecasts_per_s"],
        "seconds": cycles["seconds"],
        "forecasts_in_span": cycles["forecasts_in_span"],
        "mean_batch_forecasts_in_span": cycles["mean_batch_forecasts_in_span"],
        "batches": cycles["batches"],
        "ramp_up_batches": cycles["ramp_up_batches"],
        "forecasts_per_batch": cycles["forecasts_per_batch"],
        "cycle_seconds": cycles["cycle_seconds"],
        "mean_batch_events": round(events / batches, 1) if batches else None,
        "lstm_forecasts": lstm,
        "lstm_calls": calls,
        "mean_lstm_batch": round(lstm / calls, 1) if calls else None,
        "lstm_inference_seconds": round(infer_s, 4),
        "in_worker_forecast_call_per_s": round(lstm / infer_s, 1) if infer_s else None,
        "batch_handler_seconds": round(busy, 4),
        "inference_share_of_cycle": round(infer_s / calls / cycle, 3) if calls and cycle else None,
        "batch_handler_share_of_cycle": round(busy / batches / cycle, 3)
        if batches and cycle
        else None,
        # CPU per forecast depends far less on what else runs on the machine than the rate
        "worker_cpu_ms_per_forecast": round(worker_cpu / forecasts * 1000, 3)
        if forecasts
        else None,
        "broker_cpu_ms_per_forecast": round(broker_cpu / forecasts * 1000, 3)
        if forecasts
        else None,
        **cpu_shares(done, before, done.at - before.at),
        "cpu_note": "CPU from just before the backlog was sent to the first scrape that saw "
        "all of it taken in (up to one poll interval of idling included)",
    }


#: How often the worker's metrics are scraped while most of a measured backlog is ahead of it.
#: A scrape costs the worker about 6 ms of its event loop and the bench about 4 ms of CPU on the
#: same cores; at ``poll_seconds`` (0.1 s) that was 2-3% of the event loop of the worker it
#: measures (py-spy), 150 times what Prometheus's 15 s scrapes cost a deployed worker.
BACKLOG_POLL_SECONDS = 0.5


def backlog_poll_seconds(taken: float, readings: int, elapsed: float, fine: float) -> float:
    """The wait before the next scrape of a backlog of ``readings``, ``taken`` of them in
    ``elapsed`` seconds: :data:`BACKLOG_POLL_SECONDS` while, at the rate so far, more than two
    of those are left; ``fine`` near the end (and before the first reading is taken), so that
    the end is seen within ``fine`` of it, as before (the CPU figures span it)."""
    if taken <= 0 or elapsed <= 0:
        return fine
    left_seconds = (readings - taken) / (taken / elapsed)
    return BACKLOG_POLL_SECONDS if left_seconds > 2 * BACKLOG_POLL_SECONDS else fine


def live_reading_bytes(
    written: dict[str, int], forecasts: float, state_writes: float
) -> dict[str, float] | None:
    """Bytes on the broker's disk per state write and per forecast (both its topics), and
    their sum: what one live reading that is due a forecast costs Kafka."""
    if not forecasts or not state_writes:
        return None
    state = written.get("meter-state-changelog", 0) / state_writes
    forecast = written.get("forecasts", 0) / forecasts
    latest = written.get("meter-latest-forecast-changelog", 0) / forecasts
    return {
        "state_record": round(state, 1),
        "forecast_record": round(forecast, 1),
        "latest_forecast_record": round(latest, 1),
        "total": round(state + forecast + latest, 1),
    }

"""Phase 3: the forecast-heavy regime, one new slot for every meter at a time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pipelinebench.context import RunContext, Sample, cpu_shares, delta, log
from pipelinebench.kafka_io import new_producer, produce, send_all
from pipelinebench.onnx_ceiling import onnx_rates
from pipelinebench.profiling import PySpy, py_spy_path, summarise
from pipelinebench.worker import WorkerProcess, phase_settings
from pipelinebench.workload import forecast_workload
from streamer.inference.providers import parse_providers
from streamer.kafka_admin import ensure_topics
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
    settings = phase_settings(ctx.base_settings, ctx.phase_name(name), **worker_overrides)
    await ensure_topics(settings)
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
            measured = [
                await _round(ctx, worker, settings, producer, messages)
                for messages in work.rounds[:rounds]
            ]
            # the ceiling right away, under the same load from the rest of the machine (the
            # worker idles meanwhile), at the batch size the worker used and at its largest
            summary = _aggregate(measured)
            batch = max(1, round(summary["mean_lstm_batch"] or 1))
            sizes = sorted({batch, settings.batch_max_events})
            log.info("raw ONNX Runtime at batch sizes %s", sizes)
            onnx = await asyncio.to_thread(
                onnx_rates,
                settings.models_dir / "lstm" / "1",
                sizes,
                parse_providers(settings.onnx_providers),
            )
            profile: dict[str, Any] | None = None
            if spy_exe is not None and profile_out is not None:
                spy = PySpy(spy_exe, worker.pid, profile_out)
                await asyncio.sleep(1.0)  # py-spy attaches
                profiled = [
                    await _round(ctx, worker, settings, producer, messages)
                    for messages in work.rounds[rounds:]
                ]
                errors = spy.stop()
                profile = {"raw_file": ctx.relative(profile_out), "rounds": _aggregate(profiled)}
                if await asyncio.to_thread(profile_out.exists):
                    profile.update(summarise(profile_out, ctx.root))
                else:
                    profile["error"] = errors
        finally:
            await producer.stop()
    finally:
        worker.stop()
    written = ctx.topic_bytes(settings.app_id + "-")
    readings = len(work.history) + sum(len(r) for r in work.rounds)
    return {
        "broker_bytes_by_topic": written,
        "bytes_written_per_reading": round(
            sum(v for k, v in written.items() if k != "readings") / readings, 1
        ),
        "meters": meters,
        "history_slots": history_slots,
        "rounds": rounds,
        "worker_settings": {
            "forecaster": settings.forecaster,
            "forecast_every_slots": settings.forecast_every_slots,
            "batch_max_events": settings.batch_max_events,
            "batch_within_seconds": settings.batch_within_seconds,
            "horizon_slots": settings.horizon_slots,
            "topic_partitions": settings.topic_partitions,
        },
        "preload": preload,
        "per_round": measured,
        **summary,
        "profile": profile,
        "onnx": onnx,
    }


def _aggregate(rows: list[dict[str, Any]]) -> dict[str, Any]:
    forecasts = sum(r["forecasts"] for r in rows)
    seconds = sum(r["seconds"] for r in rows)
    lstm = sum(r["lstm_forecasts"] for r in rows)
    calls = sum(r["lstm_calls"] for r in rows)
    infer_s = sum(r["lstm_inference_seconds"] for r in rows)
    busy = sum(r["batch_handler_seconds"] for r in rows)
    rates = sorted(r["forecasts_per_s"] for r in rows)
    worker_cpu = sum(r["worker_cpu_seconds"] for r in rows)
    broker_cpu = sum(r["broker_cpu_seconds"] for r in rows)
    return {
        "forecasts": forecasts,
        "seconds": round(seconds, 3),
        "forecasts_per_s": round(forecasts / seconds, 1) if seconds else None,
        "median_round_forecasts_per_s": rates[len(rates) // 2] if rates else None,
        "lstm_forecasts": lstm,
        "lstm_calls": calls,
        "mean_lstm_batch": round(lstm / calls, 1) if calls else None,
        "in_worker_forecast_call_per_s": round(lstm / infer_s, 1) if infer_s else None,
        "inference_share_of_round": round(infer_s / seconds, 3) if seconds else None,
        "batch_handler_share_of_round": round(busy / seconds, 3) if seconds else None,
        # CPU per forecast depends far less on what else runs on the machine than the rate
        "worker_cpu_ms_per_forecast": round(worker_cpu / forecasts * 1000, 3)
        if forecasts
        else None,
        "broker_cpu_ms_per_forecast": round(broker_cpu / forecasts * 1000, 3)
        if forecasts
        else None,
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


async def _round(
    ctx: RunContext,
    worker: WorkerProcess,
    settings: Settings,
    producer: Any,
    messages: list[Message],
) -> dict[str, Any]:
    """Send one slot of every meter; time until all their forecasts are in the topic."""
    meters = len(messages)
    before = Sample.take(ctx, worker)
    out_before = await ctx.watcher.end_total(settings.forecasts_topic)
    started = time.perf_counter()
    await send_all(producer, settings.readings_topic, messages)
    sent_s = time.perf_counter() - started
    deadline = time.monotonic() + ctx.timeout_seconds
    expected: int | None = None
    poll = 0
    while True:
        if time.monotonic() > deadline:
            raise TimeoutError(f"round did not finish:\n{worker.log_tail()}")
        out = await ctx.watcher.end_total(settings.forecasts_topic) - out_before
        if out >= (expected if expected is not None else meters):
            finished = time.perf_counter()
            break
        poll += 1
        if expected is None and poll % 10 == 0:
            metrics = worker.metrics()
            consumed = metrics.total(CONSUMED) - before.metrics.total(CONSUMED)
            made = metrics.total(FORECASTS) - before.metrics.total(FORECASTS)
            skipped = metrics.total(SKIPPED) - before.metrics.total(SKIPPED)
            if consumed >= meters and made + skipped >= meters:
                expected = int(made)
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.3)  # the scrape after the round sees its metrics complete
    after = Sample.take(ctx, worker)
    seconds = finished - started
    forecasts = int(delta(after, before, FORECASTS))
    return {
        "readings": meters,
        "forecasts": forecasts,
        "fallback_forecasts": int(delta(after, before, FORECASTS, fallback="true")),
        "skipped": int(delta(after, before, SKIPPED)),
        "send_seconds": round(sent_s, 3),
        "seconds": round(seconds, 3),
        "forecasts_per_s": round(forecasts / seconds, 1),
        "lstm_forecasts": int(delta(after, before, FORECASTS, model_name="lstm", fallback="false")),
        "lstm_calls": int(delta(after, before, INFER_COUNT, model_name="lstm")),
        "lstm_inference_seconds": round(delta(after, before, INFER_SUM, model_name="lstm"), 4),
        "batches": int(delta(after, before, "streamer_batch_size_messages_count")),
        "batch_handler_seconds": round(
            delta(after, before, "streamer_batch_duration_seconds_sum"), 4
        ),
        **cpu_shares(after, before, after.at - before.at),
    }

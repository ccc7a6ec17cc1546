"""Phase 4: end-to-end latency, reading produced to forecast consumed, at fixed offered loads.

A worker is preloaded with ``history_slots`` of every meter's history (enough for the LSTM),
then the bench offers readings at a fixed rate, live-like: slot after slot, one new slot per
meter, so every reading closes its meter's slot and is due a forecast (with at least as many
meters as a batch holds, no batch has two readings of one meter). The latency of a reading is
the time from handing it to the producer to receiving, in a plain consumer of the forecasts
topic, the forecast whose (meter, ``origin_ts``) is that reading's slot.

The loads are tried in increasing order, each for ``step_seconds``; after each step the bench
waits (at most ``drain_seconds``) for the step's forecasts. A step whose backlog (produced
minus consumed by the worker) ends above two seconds of load and two batches and kept growing
is saturated (:func:`pipelinebench.stats.saturation`): the higher loads are not tried.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.partitioner import DefaultPartitioner

from pipelinebench.context import RunContext, Sample, cpu_shares, delta, log
from pipelinebench.forecasting import wait_preloaded
from pipelinebench.kafka_io import new_producer, produce
from pipelinebench.stats import LagSample, forecast_origin, latency_summary, saturation
from pipelinebench.worker import WorkerProcess, phase_settings
from pipelinebench.workload import forecast_workload, slot_end_before
from streamer.kafka_admin import ensure_topics
from streamer.timeutil import now_ms

CONSUMED = "streamer_readings_consumed_total"
FORECASTS = "streamer_forecasts_total"
E2E = "streamer_end_to_end_latency_seconds"
BATCH_SIZE = "streamer_batch_size_messages"
BATCH_SECONDS = "streamer_batch_duration_seconds"

#: (meter key, slot end ms): (step index, epoch seconds when handed to the producer)
Sent = dict[tuple[bytes, int], tuple[int, float]]
LiveReading = tuple[bytes, bytes, int]  # key, value, slot end ms
#: the offering producer's linger: librdkafka's default, as a meter head-end's producer would
#: have (the latency includes it)
PRODUCER_LINGER_MS = 5


class ForecastCollector:
    """Consumes the forecasts topic from its end and matches each forecast to its reading."""

    def __init__(self, bootstrap: str, topic: str, sent: Sent) -> None:
        self.sent = sent
        self.latencies: dict[int, list[float]] = {}
        self.unmatched = 0
        self._consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="latest",
            client_id="streamer-bench-latency",
        )
        self._task: asyncio.Task[None] | None = None
        self._stop = False

    async def start(self) -> None:
        await self._consumer.start()
        while not self._consumer.assignment():  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        await self._consumer.seek_to_end()
        for tp in self._consumer.assignment():
            await self._consumer.position(tp)  # resolve "end" now, before anything is sent
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while not self._stop:
            batches = await self._consumer.getmany(timeout_ms=100)
            received = time.time()
            for records in batches.values():
                for record in records:
                    hit = self.sent.pop(
                        (record.key, forecast_origin(record.key, record.value)), None
                    )
                    if hit is None:
                        self.unmatched += 1
                        continue
                    self.latencies.setdefault(hit[0], []).append(received - hit[1])

    def matched(self, step: int) -> int:
        return len(self.latencies.get(step, ()))

    async def stop(self) -> None:
        self._stop = True
        if self._task is not None:
            await self._task
        await self._consumer.stop()


async def _offer(
    ctx: RunContext,
    worker: WorkerProcess,
    producer: Any,
    topic: str,
    readings: Sequence[LiveReading],
    rate: float,
    sent: Sent,
    step: int,
) -> tuple[list[LagSample], float]:
    """Hand ``readings`` to the producer at ``rate`` per second; sample the worker's backlog.

    Returns the backlog samples and the seconds the offering took.
    """
    partitions = sorted(await producer.partitions_for(topic))
    partitioner = DefaultPartitioner()
    consumed0 = (await asyncio.to_thread(worker.metrics)).total(CONSUMED)
    samples: list[LagSample] = []
    futures: list[asyncio.Future[Any]] = []
    scrape: asyncio.Task[Any] | None = None
    scrape_at = scrape_count = 0.0
    next_sample = 1.0
    started = time.perf_counter()
    done = 0
    while done < len(readings):
        elapsed = time.perf_counter() - started
        due = min(len(readings), int(elapsed * rate) + 1)
        if due > done:
            stamp = time.time()
            groups: dict[int, list[tuple[bytes, bytes]]] = {}
            for key, value, slot_end in readings[done:due]:
                part = partitioner(key, partitions, partitions)
                groups.setdefault(part, []).append((key, value))
                sent[(key, slot_end)] = (step, stamp)
            for part, items in groups.items():
                futures.extend(await _send_batch(producer, topic, part, items))
            done = due
        if scrape is not None and scrape.done():
            consumed = scrape.result().total(CONSUMED) - consumed0
            samples.append(LagSample(scrape_at, int(scrape_count - consumed)))
            scrape = None
        if scrape is None and elapsed >= next_sample:
            scrape_at, scrape_count = elapsed, float(done)
            scrape = asyncio.create_task(asyncio.to_thread(worker.metrics))
            next_sample += 1.0
        await asyncio.sleep(0.005)
    seconds = time.perf_counter() - started
    if scrape is not None:
        consumed = (await scrape).total(CONSUMED) - consumed0
        samples.append(LagSample(scrape_at, int(scrape_count - consumed)))
    await asyncio.gather(*futures)
    return samples, seconds


async def _send_batch(
    producer: Any, topic: str, partition: int, items: list[tuple[bytes, bytes]]
) -> list[asyncio.Future[Any]]:
    futures: list[asyncio.Future[Any]] = []
    batch = producer.create_batch()
    for key, value in items:
        if batch.append(key=key, value=value, timestamp=None) is None:
            futures.append(await producer.send_batch(batch, topic, partition=partition))
            batch = producer.create_batch()
            batch.append(key=key, value=value, timestamp=None)
    futures.append(await producer.send_batch(batch, topic, partition=partition))
    return futures


async def latency_phase(
    ctx: RunContext,
    *,
    meters: int,
    history_slots: int,
    rates: Sequence[int],
    step_seconds: float,
    drain_seconds: float,
    worker_overrides: dict[str, object],
) -> dict[str, Any]:
    settings = phase_settings(ctx.base_settings, ctx.phase_name("latency"), **worker_overrides)
    await ensure_topics(settings)
    res_s = settings.resolution_seconds
    res_ms = res_s * 1000
    rounds = -(-int(sum(r * step_seconds for r in rates)) // meters) + 1
    end_ms = slot_end_before(now_ms(), res_s, rounds + 2)  # no live slot in the future
    work = forecast_workload(
        meters, history_slots, rounds, end_ms, seed=13, resolution_seconds=res_s
    )
    live: list[LiveReading] = [
        (key, value, end_ms + (i + 1) * res_ms)
        for i, messages in enumerate(work.rounds)
        for key, value in messages
    ]
    produce_s = await produce(ctx.bootstrap, settings.readings_topic, work.history)
    log.info("latency: %d history readings produced in %.1f s", len(work.history), produce_s)
    worker = WorkerProcess(
        settings, ctx.run_dir / "worker-latency.log", ctx.root, extra_env=ctx.worker_env
    )
    sent: Sent = {}
    steps: list[dict[str, Any]] = []
    collector = ForecastCollector(ctx.bootstrap, settings.forecasts_topic, sent)
    try:
        preload = await wait_preloaded(ctx, worker, settings, work.history)
        log.info("latency: preload done (%s readings/s)", preload["readings_per_s_processed"])
        await collector.start()
        producer = new_producer(ctx.bootstrap, linger_ms=PRODUCER_LINGER_MS)
        await producer.start()
        try:
            offset = 0
            for step, rate in enumerate(rates):
                count = int(rate * step_seconds)
                readings = live[offset : offset + count]
                offset += count
                row = await _step(
                    ctx,
                    worker,
                    producer,
                    settings.readings_topic,
                    collector,
                    readings,
                    rate,
                    step,
                    drain_seconds,
                )
                steps.append(row)
                log.info(
                    "latency at %d/s: %s; %s",
                    rate,
                    {k: row["latency"].get(k) for k in ("count", "p50_ms", "p99_ms", "p999_ms")},
                    row["saturation"]["reason"],
                )
                if row["saturation"]["saturated"]:
                    break
        finally:
            await producer.stop()
    finally:
        await collector.stop()
        worker.stop()
    untried = [r for r in rates if r not in {s["offered_per_s"] for s in steps}]
    saturated_at = next((s["offered_per_s"] for s in steps if s["saturation"]["saturated"]), None)
    return {
        "meters": meters,
        "history_slots": history_slots,
        "step_seconds": step_seconds,
        "drain_seconds": drain_seconds,
        "worker_settings": {
            "forecaster": settings.forecaster,
            "forecast_every_slots": settings.forecast_every_slots,
            "batch_max_events": settings.batch_max_events,
            "topic_partitions": settings.topic_partitions,
        },
        "preload": preload,
        "steps": steps,
        "saturated_at_per_s": saturated_at,
        "not_tried_per_s": untried,
        "unmatched_forecasts": collector.unmatched,
        "method": "latency = forecast received by a plain aiokafka consumer (group-less, from "
        "the topic's end) minus the moment its reading was handed to the bench's producer "
        "(record batches per partition every 5 ms, a 5 ms linger as librdkafka's default; "
        "murmur2 keys, acks=1); matched by (meter key, "
        "origin_ts = the reading's slot end); percentiles by nearest rank",
    }


async def _step(
    ctx: RunContext,
    worker: WorkerProcess,
    producer: Any,
    topic: str,
    collector: ForecastCollector,
    readings: Sequence[LiveReading],
    rate: int,
    step: int,
    drain_seconds: float,
) -> dict[str, Any]:
    before = Sample.take(ctx, worker)
    bench_cpu = time.process_time()  # this process: the offering producer and the collector
    samples, offered_s = await _offer(
        ctx, worker, producer, topic, readings, rate, collector.sent, step
    )
    at_end = Sample.take(ctx, worker)
    sat = saturation(samples, rate, worker.settings.batch_max_events)
    # the step's forecasts: wait until all came, or none came for 3 s, or drain_seconds passed
    deadline = time.monotonic() + drain_seconds
    last_count, last_change = collector.matched(step), time.monotonic()
    while collector.matched(step) < len(readings) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        if collector.matched(step) != last_count:
            last_count, last_change = collector.matched(step), time.monotonic()
        elif time.monotonic() - last_change > 3.0:
            break
    drained_s = time.monotonic() - (deadline - drain_seconds)
    after = Sample.take(ctx, worker)
    bench_cpu = time.process_time() - bench_cpu
    consumed = delta(at_end, before, CONSUMED)
    latencies = collector.latencies.get(step, [])
    e2e_count = delta(after, before, E2E + "_count")
    worker_mean_ms = (
        round(delta(after, before, E2E + "_sum") / e2e_count * 1000, 1) if e2e_count else None
    )
    batches = delta(at_end, before, BATCH_SIZE + "_count")
    return {
        "offered_per_s": rate,
        "readings": len(readings),
        "offered_seconds": round(offered_s, 2),
        "achieved_offer_per_s": round(len(readings) / offered_s, 1) if offered_s else None,
        "worker_consumed_per_s_during_step": round(consumed / offered_s, 1) if offered_s else None,
        "forecasts_during_step_per_s": round(delta(at_end, before, FORECASTS) / offered_s, 1)
        if offered_s
        else None,
        "batches_during_step": int(batches),
        "mean_batch_messages": round(delta(at_end, before, BATCH_SIZE + "_sum") / batches, 1)
        if batches
        else None,
        "mean_batch_ms": round(delta(at_end, before, BATCH_SECONDS + "_sum") / batches * 1000, 2)
        if batches
        else None,
        "backlog_samples": [[round(s.at, 1), s.backlog] for s in samples],
        "saturation": sat,
        "drain_seconds_waited": round(drained_s, 2),
        "forecasts_matched": len(latencies),
        "forecasts_missing": len(readings) - len(latencies),
        "latency": latency_summary(latencies),
        # cross-check: the worker's own histogram, reading's Kafka timestamp to forecast sent
        "worker_reported_mean_ms": worker_mean_ms,
        "latency_covers": "every reading of the step"
        if len(latencies) == len(readings)
        else f"the {len(latencies):,} of {len(readings):,} readings whose forecast came within "
        f"{drained_s:.0f} s after the step (the rest were still queued: their latency is "
        "higher, so the percentiles are lower bounds)",
        **cpu_shares(after, before, after.at - before.at),
        # the bench's own producer and collector share the machine with the worker
        "bench_cores": round(bench_cpu / (after.at - before.at), 3)
        if after.at > before.at
        else None,
    }

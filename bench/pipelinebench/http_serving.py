"""Phase 8 (issue 18): ``POST /v1/forecast`` at fixed concurrency against raw ONNX Runtime.

One worker starts on empty topics (the stream idles) with an API key of the run; once it is
ready the bench posts prebuilt bodies (``series_per_request`` simulator series of
``lookback_slots`` half-hours each, encoded once up front) from ``concurrency`` clients on one
``aiohttp.ClientSession``, each sending its next request as soon as its answer is read. After
``warmup_seconds`` the requests answered within the next ``seconds`` count: series answered per
second, latency per request (sent to answer read) and every answer other than 200.

The ceiling is measured in this process once the worker is stopped (never while it serves):
the worker's model loaded as the worker loads it (same providers, same ONNX Runtime threads),
``model.run`` on the features of the same windows at the server's largest batch
(``STREAMER_SERVING_MAX_BATCH_SERIES``), at the request size and at the mean batch the server
ran. The server's own parts (parse a body, the batch's model call with imputation and fallback,
encode an answer) are timed there too, so that a miss says where the time went.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import statistics
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import numpy.typing as npt
import orjson

from pipelinebench.context import RunContext, log
from pipelinebench.onnx_ceiling import _median_seconds
from pipelinebench.stats import latency_summary, ratio
from pipelinebench.worker import (
    Metrics,
    WorkerProcess,
    phase_settings,
    proc_cpu_seconds,
    proc_runqueue_wait_seconds,
)
from streamer.forecast.registry import make_forecaster
from streamer.inference import OnnxForecaster, OnnxModel, build_inputs, parse_providers
from streamer.kafka_admin import ensure_topics
from streamer.modelrepo.layout import resolve_version
from streamer.serving.request import RequestLimits, parse_request
from streamer.serving.response import encode_response, forecast_records
from streamer.serving.series_forecast import WindowConfig, forecast_windows
from streamer.settings import Settings
from streamer.simulate.fleet import FleetModel

ROUTE = "/v1/forecast"
#: Distinct bodies the clients take turns with (the server sees different series each time).
BODIES = 8
#: The windows' newest slot ends here (2026-01-05T00:00:00Z, a Monday): on every grid.
END_MS = 1_767_571_200_000
BATCH = "streamer_serving_batch_series"
DURATION = "streamer_http_request_duration_ms"


@dataclass(frozen=True, slots=True)
class Answer:
    """One request as the client saw it: sent, answer read (perf_counter s), status (0: no
    answer, the connection failed), sizes."""

    sent: float
    done: float
    status: int
    series: int
    answer_bytes: int


@dataclass(frozen=True, slots=True)
class Bodies:
    """The request bodies, and the windows they hold as the server will read them."""

    bodies: list[bytes]
    windows_kwh: npt.NDArray[np.float64]  # (BODIES * series, lookback), body after body
    end_ms: int
    series_per_request: int


def build_bodies(
    series_per_request: int, lookback_slots: int, resolution_seconds: int, count: int = BODIES
) -> Bodies:
    """``count`` bodies of ``series_per_request`` simulator series (households and businesses,
    some with PV or an EV), ``lookback_slots`` values each ending at :data:`END_MS`."""
    res_ms = resolution_seconds * 1000
    meters = count * series_per_request
    ends = END_MS - res_ms * np.arange(lookback_slots - 1, -1, -1, dtype=np.int64)
    kwh = FleetModel(meters, seed=18, resolution_seconds=resolution_seconds).load_kwh(ends)
    # the start of the first value's slot, RFC 3339 as clients send it
    start_ts = datetime.fromtimestamp((int(ends[0]) - res_ms) / 1000, UTC)
    start = start_ts.strftime("%Y-%m-%dT%H:%M:%SZ")
    bodies = []
    for b in range(count):
        rows = range(b * series_per_request, (b + 1) * series_per_request)
        document = {
            "series": [
                {"id": f"bench-{i}", "values_kwh": kwh[i].tolist(), "start_ts": start} for i in rows
            ]
        }
        bodies.append(orjson.dumps(document))
    return Bodies(bodies, kwh, END_MS, series_per_request)


def summarise_answers(
    answers: Sequence[Answer], window_start: float, window_end: float
) -> dict[str, Any]:
    """The requests answered within ``[window_start, window_end)``: series/s, latency, status."""
    seconds = window_end - window_start
    counted = [a for a in answers if window_start <= a.done < window_end]
    ok = [a for a in counted if a.status == 200]
    statuses = Counter(a.status for a in counted)
    series = sum(a.series for a in ok)
    return {
        "seconds": round(seconds, 3),
        "requests": len(counted),
        "requests_ok": len(ok),
        "non_200": len(counted) - len(ok),
        "statuses": {str(code): n for code, n in sorted(statuses.items())},
        "series_answered": series,
        "series_per_s": round(series / seconds, 1) if seconds > 0 else None,
        "requests_per_s": round(len(ok) / seconds, 2) if seconds > 0 else None,
        "latency": latency_summary([a.done - a.sent for a in ok]),
        "mean_answer_bytes": round(statistics.fmean(a.answer_bytes for a in ok)) if ok else None,
    }


def histogram_mean(
    after: Metrics, before: Metrics | None, name: str, **labels: str
) -> float | None:
    """Mean of a Prometheus histogram between two scrapes (since the start without ``before``)."""

    def moved(suffix: str) -> float:
        now = after.total(f"{name}_{suffix}", **labels)
        return now - (before.total(f"{name}_{suffix}", **labels) if before else 0.0)

    total, count = moved("sum"), moved("count")
    return round(total / count, 1) if count else None


def thread_cpu_seconds(pid: int, tid: int) -> float:
    """User + system CPU seconds of one thread of a process (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass(slots=True)
class _Cpu:
    at: float
    worker: float
    worker_main: float  # the main thread: the event loop (HTTP, parsing, encoding, faust)
    worker_wait: float
    client: float
    broker: float

    @classmethod
    def take(cls, ctx: RunContext, worker_pid: int) -> _Cpu:
        return cls(
            time.perf_counter(),
            proc_cpu_seconds(worker_pid),
            thread_cpu_seconds(worker_pid, worker_pid),
            proc_runqueue_wait_seconds(worker_pid),
            proc_cpu_seconds(os.getpid()),
            ctx.broker_cpu(),
        )


def _cores(after: _Cpu, before: _Cpu) -> dict[str, float]:
    seconds = after.at - before.at
    waited = after.worker_wait - before.worker_wait
    main = after.worker_main - before.worker_main
    return {
        "worker_cores": round((after.worker - before.worker) / seconds, 3),
        # the event loop's thread; the rest is mostly the model batches (asyncio.to_thread)
        "worker_event_loop_cores": round(main / seconds, 3),
        "worker_other_threads_cores": round((after.worker - before.worker - main) / seconds, 3),
        "worker_waiting_for_cpu_cores": round(waited / seconds, 3),
        # the bench process: the clients (its other tasks idle meanwhile)
        "client_cores": round((after.client - before.client) / seconds, 3),
        "broker_cores": round((after.broker - before.broker) / seconds, 3),
    }


async def drive(
    url: str,
    bodies: Sequence[bytes],
    *,
    series_per_request: int,
    concurrency: int,
    until: float,
    headers: dict[str, str],
) -> tuple[list[Answer], list[str]]:
    """``concurrency`` clients posting ``bodies`` in turn, each as soon as its last answer is
    read, until ``until`` (perf_counter); the answers and the first few refusals' bodies."""
    answers: list[Answer] = []
    refusals: list[str] = []
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(
        connector=connector, timeout=timeout, headers=headers
    ) as session:

        async def client(index: int) -> None:
            turn = index
            while time.perf_counter() < until:
                body = bodies[turn % len(bodies)]
                turn += 1
                sent = time.perf_counter()
                try:
                    async with session.post(url, data=body) as response:
                        payload = await response.read()
                        status = response.status
                except (aiohttp.ClientError, TimeoutError) as exc:  # counted, not raised
                    status, payload = 0, f"{type(exc).__name__}: {exc}".encode()
                done = time.perf_counter()
                answers.append(Answer(sent, done, status, series_per_request, len(payload)))
                if status != 200 and len(refusals) < 5:
                    refusals.append(f"{status}: {payload[:300].decode(errors='replace')}")

        await asyncio.gather(*(client(i) for i in range(concurrency)))
    return answers, refusals


async def _probe(url: str, body: bytes, headers: dict[str, str], series: int) -> dict[str, Any]:
    """One request before the run: a 200 with one forecast per series, from the live model."""
    async with (
        aiohttp.ClientSession(headers=headers) as session,
        session.post(url, data=body) as response,
    ):
        payload = await response.read()
    if response.status != 200:
        raise RuntimeError(f"POST {ROUTE} answered {response.status}: {payload[:500]!r}")
    forecasts = orjson.loads(payload)["forecasts"]
    if len(forecasts) != series:
        raise RuntimeError(f"POST {ROUTE}: {len(forecasts)} forecasts for {series} series")
    models = Counter(f"{f['model_name']}:{f['model_version']}" for f in forecasts)
    return {
        "answer_bytes": len(payload),
        "models": dict(models),
        "fallback_answers": sum(1 for f in forecasts if f.get("fallback_reason") is not None),
        "horizon_slots": len(forecasts[0].get("point_kwh") or []),
    }


def serving_ceiling(
    settings: Settings, windows: Bodies, batch_sizes: Sequence[int], min_seconds: float = 1.5
) -> dict[str, Any]:
    """Raw ONNX Runtime on the bodies' windows, loaded as the worker loads its live model, and
    the server's own parts per request (in this process, with the worker stopped)."""
    name, _, version = settings.forecaster.partition(":")
    version_dir = resolve_version(settings.models_dir, name, version or None)
    model = OnnxModel(
        version_dir,
        providers=parse_providers(settings.onnx_providers),
        intra_op_threads=settings.onnx_intra_op_threads,
    )
    forecaster = OnnxForecaster(model, settings.horizon_slots)
    fallback = make_forecaster(
        settings.fallback_forecaster,
        horizon_slots=settings.horizon_slots,
        resolution_seconds=settings.resolution_seconds,
    )
    config = WindowConfig(
        resolution_seconds=settings.resolution_seconds,
        slots_per_day=settings.slots_per_day,
        interpolate_max_gap_slots=settings.interpolate_max_gap_slots,
    )
    # the windows exactly as the server reads them (float32, NaN where missing)
    limits = RequestLimits(
        resolution_seconds=settings.resolution_seconds,
        lookback_slots=settings.lookback_slots,
        min_observed_fraction=settings.min_observed_fraction,
        max_series=max(settings.serving_max_series_per_request, windows.series_per_request),
    )
    parsed = [parse_request(body, limits) for body in windows.bodies]
    all_series = [series for request in parsed for series in request.series]
    stacked = np.stack([series.window_kwh for series in all_series])
    ends = np.array([series.end_ms for series in all_series], dtype=np.int64)
    rows: list[dict[str, Any]] = []
    for size in sorted(set(batch_sizes)):
        if size > stacked.shape[0]:
            continue
        history = stacked[:size].astype(np.float64)
        inputs = build_inputs(history, ends[:size], model.feature_spec).values
        session_s = _median_seconds(partial(model.run, inputs), 2, min_seconds, 200)
        batch_s = _median_seconds(
            partial(forecast_windows, stacked[:size], ends[:size], forecaster, fallback, config),
            2,
            min_seconds,
            200,
        )
        rows.append(
            {
                "batch_size": size,
                "session_ms": round(session_s * 1000, 3),
                "session_series_per_s": round(size / session_s, 1),
                # the server's batch call: imputation, features, session, fallback rows
                "batch_call_ms": round(batch_s * 1000, 3),
                "batch_call_series_per_s": round(size / batch_s, 1),
            }
        )
    # the server's event-loop work per request: parse the body, encode the answer
    body, request = windows.bodies[0], parsed[0]
    count = len(request.series)
    parse_s = _median_seconds(partial(parse_request, body, limits), 2, min_seconds / 3, 200)
    answer = forecast_windows(stacked[:count], ends[:count], forecaster, fallback, config)

    def encode() -> bytes:
        records = forecast_records(request.series, answer, END_MS, settings.resolution_seconds)
        return encode_response(records, answer)

    encode_s = _median_seconds(encode, 2, min_seconds / 3, 200)
    return {
        "model": f"{model.card.name}:{model.card.version}",
        "providers_in_use": list(model.providers_in_use),
        "intra_op_threads": settings.onnx_intra_op_threads,
        "max_batch_size": model.max_batch_size,
        "results": rows,
        "per_request": {
            "series": count,
            "body_bytes": len(body),
            "answer_bytes": len(encode()),
            "parse_ms": round(parse_s * 1000, 3),
            "encode_ms": round(encode_s * 1000, 3),
        },
    }


def _row(ceiling: dict[str, Any], size: int | None) -> dict[str, Any] | None:
    return next((r for r in ceiling["results"] if r["batch_size"] == size), None)


async def http_phase(
    ctx: RunContext,
    *,
    concurrency: int,
    series_per_request: int,
    warmup_seconds: float,
    seconds: float,
    worker_overrides: dict[str, object],
) -> dict[str, Any]:
    key = secrets.token_urlsafe(24)  # the realistic path: a key is checked on every request
    settings = phase_settings(
        ctx.base_settings,
        ctx.phase_name("http"),
        api_keys=f"bench:{key}",
        **worker_overrides,
    )
    if series_per_request > settings.serving_max_series_per_request:
        raise ValueError(
            f"{series_per_request} series per request is over the worker's "
            f"STREAMER_SERVING_MAX_SERIES_PER_REQUEST={settings.serving_max_series_per_request}"
        )
    await ensure_topics(settings)
    made = time.perf_counter()
    bodies = await asyncio.to_thread(
        build_bodies, series_per_request, settings.lookback_slots, settings.resolution_seconds
    )
    log.info(
        "http: %d bodies of %d series (%.0f kB each) built in %.1f s",
        len(bodies.bodies),
        series_per_request,
        statistics.fmean(len(b) for b in bodies.bodies) / 1000,
        time.perf_counter() - made,
    )
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    worker = WorkerProcess(
        settings, ctx.run_dir / "worker-http.log", ctx.root, extra_env=ctx.worker_env
    )
    try:
        ready_s = await asyncio.to_thread(worker.wait_ready, ctx.timeout_seconds)
        url = worker.base_url + ROUTE
        probe = await _probe(url, bodies.bodies[0], headers, series_per_request)
        log.info("http: worker ready in %.1f s; probe answered by %s", ready_s, probe["models"])
        before_run = await asyncio.to_thread(worker.metrics)
        started = time.perf_counter()
        window_start = started + warmup_seconds
        window_end = window_start + seconds
        marks: dict[str, Any] = {}

        async def sample() -> None:  # CPU and the worker's metrics at the window's edges
            await asyncio.sleep(max(0.0, window_start - time.perf_counter()))
            marks["cpu_start"] = _Cpu.take(ctx, worker.pid)
            marks["metrics_start"] = await asyncio.to_thread(worker.metrics)
            await asyncio.sleep(max(0.0, window_end - time.perf_counter()))
            marks["cpu_end"] = _Cpu.take(ctx, worker.pid)
            marks["metrics_end"] = await asyncio.to_thread(worker.metrics)

        sampler = asyncio.create_task(sample())
        try:
            answers, refusals = await drive(
                url,
                bodies.bodies,
                series_per_request=series_per_request,
                concurrency=concurrency,
                until=window_end,
                headers=headers,
            )
        except BaseException:
            sampler.cancel()
            raise
        await sampler
        after_run = await asyncio.to_thread(worker.metrics)
        if not worker.alive:
            raise RuntimeError(f"http worker exited:\n{worker.log_tail()}")
    finally:
        worker.stop()
    measured = summarise_answers(answers, window_start, window_end)
    warmup = summarise_answers(answers, started, window_start)
    log.info(
        "http: %s series/s, p50 %s ms, p99 %s ms, %d non-200",
        measured["series_per_s"],
        measured["latency"].get("p50_ms"),
        measured["latency"].get("p99_ms"),
        measured["non_200"],
    )
    m_start, m_end = marks["metrics_start"], marks["metrics_end"]
    mean_batch = histogram_mean(m_end, m_start, BATCH)
    batches = m_end.total(f"{BATCH}_count") - m_start.total(f"{BATCH}_count")
    server = {
        # the server's figures over the measured window (two scrapes)
        "mean_batch_series": mean_batch,
        "batches": int(batches),
        "batches_per_s": round(batches / seconds, 2),
        "mean_request_ms": histogram_mean(m_end, m_start, DURATION, route=ROUTE),
        # and over the whole run, warm-up included (the scrape after the run)
        "mean_batch_series_whole_run": histogram_mean(after_run, before_run, BATCH),
        "batches_whole_run": int(
            after_run.total(f"{BATCH}_count") - before_run.total(f"{BATCH}_count")
        ),
        "rejections": {
            labels[0][1]: int(value)
            for (name, labels), value in after_run.samples.items()
            if name == "streamer_http_rejections_total" and value
        },
    }
    log.info("http: server mean batch %s series; raw ONNX Runtime next", mean_batch)
    sizes = {settings.serving_max_batch_series, series_per_request}
    if mean_batch:
        sizes.add(max(1, round(mean_batch)))
    ceiling = await asyncio.to_thread(serving_ceiling, settings, bodies, sorted(sizes))
    at_max = _row(ceiling, settings.serving_max_batch_series)
    at_request = _row(ceiling, series_per_request)
    at_mean = _row(ceiling, max(1, round(mean_batch)) if mean_batch else None)
    rate = measured["series_per_s"]

    def share(row: dict[str, Any] | None) -> float | None:
        if row is None or not rate:
            return None
        return ratio(rate, row["session_series_per_s"])

    return {
        "route": f"POST {ROUTE}",
        "concurrency": concurrency,
        "series_per_request": series_per_request,
        "lookback_slots": settings.lookback_slots,
        "body_bytes": round(statistics.fmean(len(b) for b in bodies.bodies)),
        "distinct_bodies": len(bodies.bodies),
        "warmup_seconds": warmup_seconds,
        "auth": "Authorization: Bearer (one key in STREAMER_API_KEYS)",
        "client": f"aiohttp {aiohttp.__version__} ClientSession in the bench process, "
        f"{concurrency} clients, one connection each (keep-alive), bodies prebuilt",
        "worker_settings": {
            "serving_max_batch_series": settings.serving_max_batch_series,
            "serving_queue_delay_ms": settings.serving_queue_delay_ms,
            "serving_max_pending_series": settings.serving_max_pending_series,
            "onnx_intra_op_threads": settings.onnx_intra_op_threads,
            "forecaster": settings.forecaster,
        },
        "worker_ready_seconds": round(ready_s, 1),
        "probe": probe,
        "warmup": {k: warmup[k] for k in ("requests", "non_200", "series_per_s")},
        **measured,
        "refusals": refusals,
        "server": server,
        **_cores(marks["cpu_end"], marks["cpu_start"]),
        "ceiling": ceiling,
        "ceiling_batch_size": settings.serving_max_batch_series,
        "session_series_per_s": at_max["session_series_per_s"] if at_max else None,
        "ratio_to_session": share(at_max),
        "session_series_per_s_at_request_size": (
            at_request["session_series_per_s"] if at_request else None
        ),
        "ratio_to_session_at_request_size": share(at_request),
        "ratio_to_session_at_mean_batch": share(at_mean),
    }

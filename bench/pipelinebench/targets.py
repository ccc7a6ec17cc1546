"""Issue 13's, 14's and 18's targets against a report: the ratios, met or missed, by how much,
and why.

The reasons are read off the measurements of the same run (CPU used and waited for, busy
shares, the faust ceiling, the py-spy profile, the bytes of each part of a record), never
written by hand, so they change when the figures do.
"""

from __future__ import annotations

from typing import Any, TypeGuard

from pipelinebench.stats import ratio

#: Issue 13: worker ingest against raw aiokafka ``getmany`` of the same run.
INGEST_TARGET = 0.08
#: Issue 13: worker ingest against the bare per-message faust drain (ceiling B), times.
INGEST_VS_FAUST_TARGET = 5.0
#: Issue 13: latency at 1,000 readings/s offered, forecasting on.
LATENCY_1K_RATE = 1000
LATENCY_1K_P99_MS = 150.0
LATENCY_1K_P50_MS = 75.0
#: Issue 13: a restart over this many meters' state ...
RESTART_METERS = 100_000
#: ... answers /ready 200 within this many seconds of its process start ...
RESTART_READY_S = 20.0
#: ... and, SIGKILLed and restarted, consumes its partitions again within this many.
RESTART_CONSUMED_S = 15.0
#: Issue 13: readings per worker-CPU-second of two workers against one worker's.
SCALING_CPU_EFFICIENCY = 0.9
#: Two workers' wall-clock speedup expected on machines with 3 or more free cores (reported,
#: not a target: on fewer cores it measures the CPUs the workers could get).
SPEEDUP = 1.7
#: Issue 14: worker forecasts/s against the raw ONNX session at the same batch size.
FORECAST_TARGET = 0.40
#: Issue 14: worker ingest against raw aiokafka ``getmany``, once state work is vectorised.
INGEST_14_TARGET = 0.12
#: Issue 14: p99 at a quarter of the raw ONNX ceiling (5,000/s where the session does 20k/s):
#: the rate offered when the run has no ceiling of its own (no forecast phase before it).
LATENCY_RATE = 5000
LATENCY_P99_MS = 250.0
#: Issue 14: serialized state per meter, resident memory per meter at 100k meters, and Kafka
#: bytes written per live reading with its forecast (changelogs included).
STATE_BYTES = 2048
RESIDENT_BYTES = 3072
RESIDENT_AT_METERS = 100_000
KAFKA_BYTES = 2048
#: Issue 18: ``POST /v1/forecast`` series/s against the raw ONNX session at the server's batch
#: size, with this many requests in flight of this many series each.
HTTP_TARGET = 0.50
HTTP_CONCURRENCY = 64
HTTP_SERIES_PER_REQUEST = 100
#: Issue 17: group forecasts keep up with this many meters in this many feeder groups.
GROUP_METERS = 100_000
GROUP_COUNT = 1_000


def _ok(section: Any) -> TypeGuard[dict[str, Any]]:
    return isinstance(section, dict) and "error" not in section and "skipped" not in section


def ratios(report: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    ingest = report.get("ingest")
    if _ok(ingest):
        out["ingest"] = ingest["ratio_to_ceiling"]
        out["ingest_vs_faust_ceiling"] = ingest.get("ratio_to_faust_ceiling")
        out["faust_ceiling_vs_raw"] = ingest.get("faust_ceiling_to_raw_ceiling")
    forecast, onnx = report.get("forecast"), report.get("onnx")
    if _ok(forecast) and onnx is not None:
        # the batch size of the measured cycles (older reports: the mean LSTM batch)
        used = forecast.get("ceiling_batch_size") or forecast.get("mean_lstm_batch") or 0
        batch = max(1, round(used))
        row = next((r for r in onnx["results"] if r["batch_size"] == batch), None)
        if used and row is not None:
            out["forecast_batch_size"] = batch
            out["onnx_session_per_s"] = row["session_forecasts_per_s"]
            out["onnx_forecast_per_s"] = row["forecast_forecasts_per_s"]
            out["forecast"] = ratio(forecast["forecasts_per_s"], row["session_forecasts_per_s"])
            out["forecast_vs_forecast_call"] = ratio(
                forecast["forecasts_per_s"], row["forecast_forecasts_per_s"]
            )
    http = report.get("http")
    if _ok(http) and http.get("ratio_to_session") is not None:
        out["http"] = http["ratio_to_session"]
        out["http_batch_size"] = http["ceiling_batch_size"]
        out["http_vs_session_at_request_size"] = http.get("ratio_to_session_at_request_size")
    return out


def _profile_parts(profile: dict[str, Any] | None, floor: float = 0.05) -> str:
    """The profile's groups with at least ``floor`` of the samples, largest first."""
    if not profile or not profile.get("groups"):
        return ""
    groups = sorted(
        ((share, label.strip()) for label, share in profile["groups"].items() if share >= floor),
        reverse=True,
    )
    return "; ".join(f"{label} {share * 100:.0f}%" for share, label in groups[:8])


def _top_functions(
    profile: dict[str, Any] | None,
    paths: tuple[str, ...] = ("streamer/", "onnxruntime/"),
    n: int = 6,
    key: str = "self",
) -> str:
    """The profile's top functions (own time, or inclusive) whose file is under ``paths``."""
    if not profile or not profile.get(key):
        return ""
    rows = [row for row in profile[key] if any(f"({p}" in row["function"] for p in paths)]
    return "; ".join(f"`{row['function']}` {row['share'] * 100:.1f}%" for row in rows[:n])


def _cpu_sentence(section: dict[str, Any], who: str = "the worker") -> str:
    cores = section.get("worker_cores")
    waited = section.get("worker_waiting_for_cpu_cores")
    broker = section.get("broker_cores")
    if cores is None:
        return ""
    text = f"{who} used {cores:.2f} cores"
    if waited is not None:
        text += f" and was runnable but waiting for a CPU {waited:.2f} cores' worth of the time"
    if broker is not None:
        text += f"; the broker used {broker:.2f} cores"
    return text


def _miss(ratio_value: float | None, target: float) -> str | None:
    if ratio_value is None or ratio_value >= target:
        return None
    factor = target / ratio_value if ratio_value > 0 else float("inf")
    return (
        f"missed by {(target - ratio_value) * 100:.1f} points "
        f"({ratio_value * 100:.1f}% of the ceiling; {factor:.1f}x the throughput is needed)"
    )


def ingest_target(report: dict[str, Any], target: float = INGEST_TARGET) -> dict[str, Any]:
    ingest = report.get("ingest")
    row: dict[str, Any] = {
        "target": f"worker ingest >= {target * 100:.0f}% of raw aiokafka `getmany` (same run)",
        "measure": "worker ingest readings/s (first consumed to committed lag 0) vs raw aiokafka "
        "getmany readings/s",
    }
    if not _ok(ingest):
        return {**row, "met": None, "miss": _absent(ingest), "why": []}
    worker = ingest["worker"]
    value = worker["readings_per_s_to_lag0"]
    raw = ingest["ceiling_raw_consume"]["median_per_s"]
    r = ingest["ratio_to_ceiling"]
    why: list[str] = []
    faust = (ingest.get("ceiling_faust") or [None])[0]
    if faust is not None:
        why.append(
            f"faust itself: a bare faust app with the worker's settings that only drains and "
            f"acks ({faust['mode']}) takes {faust['per_s_drained']:,.0f} readings/s, "
            f"{(faust['per_s_drained'] / raw) * 100:.1f}% of the raw ceiling (it used "
            f"{faust['app_cores']} cores); the worker reaches "
            f"x{ingest.get('ratio_to_faust_ceiling') or 0:.2f} that (first to last "
            "reading on both sides), so "
            + (
                "faust's consumer path alone already misses the target"
                if faust["per_s_drained"] < target * raw
                else "faust leaves room for the target and the gap is streamer's own work"
            )
        )
    cpu = _cpu_sentence(worker)
    if cpu:
        why.append(
            f"{cpu}; its batch handler was busy {_pct(worker.get('batch_handler_busy_share'))} "
            f"of the time at {worker.get('batch_handler_us_per_reading')} us per reading, "
            f"{worker.get('worker_cpu_us_per_reading')} us of worker CPU per reading; mean batch "
            f"{worker.get('mean_batch_events')} events"
        )
    why.append(
        f"Kafka bytes written per reading consumed: {worker.get('bytes_written_per_reading')} "
        "(the meter's whole record goes to the changelog once per batch it appears in)"
    )
    parts = _profile_parts(worker.get("profile"))
    if parts:
        why.append(f"profile of the measured run (share of samples): {parts}")
    top = _top_functions(worker.get("profile"))
    if top:
        why.append(f"streamer functions by own time: {top}")
    faust_parts = _profile_parts((faust or {}).get("profile"))
    if faust_parts:
        why.append(f"profile of the bare faust app (share of samples): {faust_parts}")
    return {
        **row,
        "value": value,
        "ceiling": raw,
        "ratio": r,
        "met": r >= target,
        "miss": _miss(r, target),
        "why": why if r < target else [],
    }


def ingest_vs_faust_target(report: dict[str, Any]) -> dict[str, Any]:
    """The worker's ingest against the bare faust app's per-message drain, same backlog."""
    ingest = report.get("ingest")
    row: dict[str, Any] = {
        "target": f"worker ingest >= {INGEST_VS_FAUST_TARGET:g}x the bare per-message faust "
        "drain (same run)",
        "measure": "worker readings/s first to last processed vs the bare faust app's readings/s "
        "first to last drained (ceiling B), same backlog",
    }
    if not _ok(ingest):
        return {**row, "met": None, "miss": _absent(ingest), "why": []}
    faust = (ingest.get("ceiling_faust") or [None])[0]
    if not faust or not faust.get("per_s_drained"):
        return {**row, "met": None, "miss": "no faust drain in this run", "why": []}
    worker = ingest["worker"]
    value = worker["readings_per_s_processed"]
    base = faust["per_s_drained"]
    r = ratio(value, base) or 0.0
    met = r >= INGEST_VS_FAUST_TARGET
    why: list[str] = []
    if not met:
        cores = faust.get("app_cores")
        per_reading = f", {cores / base * 1e6:.1f} us of CPU per reading" if cores else ""
        why.append(
            f"the bare faust app drained {base:,.0f} readings/s through faust's per-message path "
            f"(`{faust['mode']}`"
            + (f", window {faust['within_seconds']} s" if faust.get("within_seconds") else "")
            + f") on {cores} cores{per_reading}; the worker processed {value:,.0f} readings/s on "
            f"{worker.get('worker_cores')} cores, {worker.get('worker_cpu_us_per_reading')} us "
            f"of CPU per reading, batch handler {worker.get('batch_handler_us_per_reading')} us "
            f"per reading (mean batch {worker.get('mean_batch_events')} events)"
        )
        cpu = _cpu_sentence(worker)
        if cpu:
            why.append(cpu)
        parts = _profile_parts(worker.get("profile"))
        if parts:
            why.append(f"profile of the worker's measured run (share of samples): {parts}")
        top = _top_functions(worker.get("profile"))
        if top:
            why.append(f"streamer functions by own time: {top}")
    return {
        **row,
        "value": value,
        "ceiling": base,
        "ratio": r,
        "met": met,
        "miss": None
        if met
        else f"x{r:.2f} the bare faust drain; {INGEST_VS_FAUST_TARGET / max(r, 1e-9):.1f}x "
        "the worker's throughput is needed",
        "why": why,
    }


def _saturation_sentence(forecast: dict[str, Any]) -> str:
    """Whether the backlog kept the worker's batches full and every reading due a forecast."""
    settings = forecast.get("worker_settings", {})
    most = settings.get("batch_max_events")
    mean_events = forecast.get("mean_batch_events")
    per_batch = forecast.get("forecasts_per_batch") or {}
    meters = forecast["meters"]
    text = (
        f"the backlog of {forecast['readings']:,} readings ({forecast['backlog_slots']} slots of "
        f"{meters:,} meters, produced back to back) took {forecast['batches']} batches of a mean "
        f"{mean_events} readings (at most {most}) and a median {per_batch.get('median')} "
        f"forecasts per batch; the rate is timed over the batch cycles after "
        f"{forecast.get('ramp_up_batches', 0)} ramp-up batches (taken while the backlog arrived)"
    )
    # a batch holds at least as many readings as forecasts: the median forecasts bound it
    typical = max(mean_events or 0, per_batch.get("median") or 0)
    if most and typical < 0.9 * most:
        text += (
            "; the batches were not full: batching is continuous (a batch takes what has "
            "arrived, up to STREAMER_BATCH_MAX_EVENTS, lingering at most "
            "STREAMER_BATCH_LINGER_MS for more), so some batches took what the consumer had "
            "fetched, fewer than batch_max_events"
        )
    else:
        text += (
            "; so batches were full, at batch_max_events (batching is continuous: a batch takes "
            "what has arrived, up to STREAMER_BATCH_MAX_EVENTS): no waiting for readings counts"
        )
    if most and meters < most:
        text += (
            f"; with fewer meters than batch_max_events ({meters:,} < {most:,}) a batch holds "
            "two readings of some meters, and a meter is forecast once per batch"
        )
    elif mean_events and per_batch.get("median") and per_batch["median"] < 0.95 * mean_events:
        text += (
            "; some batches held two readings of a meter (the partitions are fetched "
            "unevenly), which it forecasts once"
        )
    return text


def forecast_target(report: dict[str, Any]) -> dict[str, Any]:
    forecast = report.get("forecast")
    row: dict[str, Any] = {
        "target": f"forecasting >= {FORECAST_TARGET * 100:.0f}% of raw ONNX Runtime throughput at "
        "the same batch size",
        "measure": "worker forecasts/s vs ONNX Runtime session forecasts/s",
    }
    rat = report.get("ratios", {})
    if not _ok(forecast) or rat.get("forecast") is None:
        return {**row, "met": None, "miss": _absent(forecast), "why": []}
    r = rat["forecast"]
    session_ms = 1000.0 / rat["onnx_session_per_s"]
    cycle = (forecast.get("cycle_seconds") or {}).get("median")
    why = [
        f"per forecast the worker spent {forecast['worker_cpu_ms_per_forecast']} ms of CPU "
        f"(and the broker {forecast['broker_cpu_ms_per_forecast']} ms) where the ONNX session "
        f"alone needs {session_ms:.3f} ms at batch {rat['forecast_batch_size']}; in a batch "
        f"cycle (median {cycle} s) the forecaster call took "
        f"{_pct(forecast.get('inference_share_of_cycle'))} and the batch handler "
        f"{_pct(forecast.get('batch_handler_share_of_cycle'))}"
    ]
    cpu = _cpu_sentence(forecast)
    if cpu:
        why.append(f"during the backlog {cpu}")
    why.append(_saturation_sentence(forecast))
    parts = _profile_parts(forecast.get("profile") or {})
    if parts:
        why.append(f"profile of a second backlog (share of samples): {parts}")
    top = _top_functions(forecast.get("profile"))
    if top:
        why.append(f"streamer and ONNX Runtime functions by own time: {top}")
    return {
        **row,
        "value": forecast["forecasts_per_s"],
        "ceiling": rat["onnx_session_per_s"],
        "ratio": r,
        "met": r >= FORECAST_TARGET,
        "miss": _miss(r, FORECAST_TARGET),
        "why": why if r < FORECAST_TARGET else [],
    }


def _latency_row(
    report: dict[str, Any], rate: int, p99_limit: float, p50_limit: float | None = None
) -> dict[str, Any]:
    """The latency step at ``rate`` offered against its p99 (and p50) limit."""
    latency = report.get("latency")
    limits = f"p99 <= {p99_limit:.0f} ms" + (
        f" and p50 <= {p50_limit:.0f} ms" if p50_limit is not None else ""
    )
    row: dict[str, Any] = {
        "target": f"{limits} end to end at {rate:,} readings/s offered, forecasting on",
        "measure": "reading produced to forecast consumed, "
        + ("p99 and p50" if p50_limit is not None else "p99"),
    }
    if not _ok(latency):
        return {**row, "met": None, "miss": _absent(latency), "why": []}
    steps = {s["offered_per_s"]: s for s in latency["steps"]}
    step = steps.get(rate)
    saturated = [s for s in latency["steps"] if s["saturation"]["saturated"]]
    why: list[str] = []
    if saturated and saturated[0]["offered_per_s"] <= rate:
        s = saturated[0]
        forecast = report.get("forecast")
        line = (
            f"saturated at {s['offered_per_s']:,} readings/s offered: {s['saturation']['reason']}; "
            f"the worker took in {s['worker_consumed_per_s_during_step']:,.0f} readings/s and "
            f"issued {s['forecasts_during_step_per_s']:,.0f} forecasts/s during the step"
        )
        if _ok(forecast):
            line += (
                f" (phase 3 measured {forecast['forecasts_per_s']:,.0f} forecasts/s when every "
                "reading is due a forecast)"
            )
        why.append(line)
        cpu = _cpu_sentence(s)
        if cpu:
            why.append(cpu)
    miss: str | None
    if step is None:
        below = saturated and saturated[0]["offered_per_s"] < rate
        miss = (
            f"not measurable: the worker saturated at {saturated[0]['offered_per_s']:,}/s, "
            f"below {rate:,}/s"
            if below
            else f"{rate:,}/s was not among the offered loads"
        )
        return {**row, "value": None, "met": False if below else None, "miss": miss, "why": why}
    lat = step["latency"]
    p99, p50 = lat.get("p99_ms"), lat.get("p50_ms")
    over: list[str] = []
    if p99 is None:
        over.append("no forecast came back")
    else:
        if p99 > p99_limit:
            over.append(f"p99 {p99:,.0f} ms, {p99 / p99_limit:.1f}x the limit")
        if p50_limit is not None and p50 is not None and p50 > p50_limit:
            over.append(f"p50 {p50:,.0f} ms, {p50 / p50_limit:.1f}x the limit")
    step_saturated = step["saturation"]["saturated"]
    met = not over and not step_saturated
    share: float | None = None
    if p99 is not None:
        share = p99 / p99_limit
        if p50_limit is not None and p50 is not None:
            share = max(share, p50 / p50_limit)
    miss = None
    if not met:
        miss = "; ".join(over) if over else "within the limits"
        if step_saturated:
            miss += f" (saturated; {step['latency_covers']})"
    if not met and not step_saturated:
        most = latency.get("worker_settings", {}).get("batch_max_events")
        own = step.get("worker_reported_mean_ms")
        line = (
            f"not saturated at {rate:,}/s (the backlog stayed bounded): p50 {lat.get('p50_ms')} "
            f"ms, p99 {p99} ms, p99.9 {lat.get('p999_ms')} ms, max {lat.get('max_ms')} ms"
            + (
                f"; the worker's own mean (Kafka timestamp to forecast sent) {own} ms"
                if own is not None
                else ""
            )
            + "; batching is continuous (a batch takes what has arrived, up to "
            f"STREAMER_BATCH_MAX_EVENTS = {most}, lingering at most STREAMER_BATCH_LINGER_MS "
            "for more while fewer are queued)"
        )
        why.append(line)
        cpu = _cpu_sentence(step)
        if cpu:
            why.append(f"during the step {cpu}")
        capacity = _capacity_sentence(latency, rate)
        if capacity:
            why.append(capacity)
    out = {
        **row,
        "value": p99,
        "ceiling": p99_limit,
        "ratio": None if share is None else round(share, 4),
        "met": met,
        "miss": miss,
        "why": why if not met else [],
    }
    if p50_limit is not None:
        out.update({"p50": p50, "p50_limit": p50_limit})
    return out


def _capacity_sentence(latency: dict[str, Any], rate: int) -> str | None:
    """How near ``rate`` is to the worker's capacity in the same run: its intake during the
    first saturated step (a batch cycle grows as 1 / (1 - load / capacity))."""
    saturated = [s for s in latency.get("steps", []) if s["saturation"]["saturated"]]
    if not saturated:
        return None
    step = saturated[0]
    intake = step.get("worker_consumed_per_s_during_step")
    if not intake:
        return None
    return (
        f"the worker's capacity in this run, its intake while saturated at "
        f"{step['offered_per_s']:,}/s, was {intake:,.0f} readings/s: {rate:,}/s is "
        f"{rate / intake:.0%} of it, and a batch cycle grows as 1 / (1 - that share)"
    )


def latency_1k_target(report: dict[str, Any]) -> dict[str, Any]:
    """Issue 13: p99 <= 150 ms and p50 <= 75 ms at 1,000 readings/s offered."""
    return _latency_row(report, LATENCY_1K_RATE, LATENCY_1K_P99_MS, LATENCY_1K_P50_MS)


def quarter_rate(session_per_s: float | None) -> int:
    """The offered rate of issue 14's latency target: a quarter of the ONNX session's forecasts
    per second measured in the same run, to the hundred (:data:`LATENCY_RATE` without one)."""
    if not session_per_s:
        return LATENCY_RATE
    return max(100, round(session_per_s / 4 / 100) * 100)


def latency_target(report: dict[str, Any]) -> dict[str, Any]:
    """Issue 14: p99 <= 250 ms at a quarter of this run's ONNX ceiling offered (5,000
    readings/s where the session does 20k/s), the rate the latency phase offered."""
    latency = report.get("latency")
    rate = (latency or {}).get("quarter_rate") or LATENCY_RATE
    row = _latency_row(report, rate, LATENCY_P99_MS)
    session = report.get("ratios", {}).get("onnx_session_per_s")
    if session:
        row["note"] = (
            f"{rate:,} readings/s is a quarter of this run's ONNX ceiling (the session does "
            f"{session:,.0f} forecasts/s at the forecast phase's batch size)"
        )
    else:
        row["note"] = f"no ONNX ceiling in this run: {rate:,} readings/s, a quarter of 20k/s"
    return row


def memory_target(report: dict[str, Any]) -> dict[str, Any]:
    """Issue 14: resident memory per meter at 100k meters."""
    row: dict[str, Any] = {
        "target": f"<= {RESIDENT_BYTES:,} bytes resident per meter at {RESIDENT_AT_METERS:,} "
        "meters",
        "measure": "worker VmRSS over its idle RSS, per meter held (memory phase)",
    }
    memory = report.get("memory")
    if not _ok(memory) or not memory.get("steps"):
        return {**row, "met": None, "miss": _absent(memory), "why": []}
    step = max(memory["steps"], key=lambda s: s["meters"])
    value = step["resident_bytes_per_meter"]
    met = value <= RESIDENT_BYTES
    why: list[str] = []
    if step["meters"] < RESIDENT_AT_METERS:
        why.append(
            f"measured at {step['meters']:,} meters, the largest step of this run (not "
            f"{RESIDENT_AT_METERS:,}): fixed costs weigh more per meter there"
        )
    state = (memory.get("serialized_state") or {}).get("mean_bytes")
    if not met and state:
        why.append(
            f"the serialized record is {state:,.0f} B: the rest is the decoded copy the "
            "processor caches and the table's own keys and bytes objects"
        )
    return {
        **row,
        "value": value,
        "ceiling": RESIDENT_BYTES,
        "met": met if step["meters"] >= RESIDENT_AT_METERS else (met or None),
        "miss": None if met else f"{value:,.0f} B per meter ({value / RESIDENT_BYTES:.2f}x)",
        "why": why,
    }


def kafka_bytes_target(report: dict[str, Any]) -> dict[str, Any]:
    """Issue 14: Kafka bytes written per live reading with its forecast, changelogs included."""
    row: dict[str, Any] = {
        "target": f"<= {KAFKA_BYTES:,} bytes written to Kafka per live reading with its forecast",
        "measure": "bytes on the broker's disk per state write plus per forecast (the forecasts "
        "topic and the latest-forecast changelog's pointer to it), forecast phase",
    }
    forecast = report.get("forecast")
    parts = forecast.get("kafka_bytes_per_live_reading") if _ok(forecast) else None
    if not parts:
        return {
            **row,
            "met": None,
            "miss": _absent(forecast) if not _ok(forecast) else "no figure",
            "why": [],
        }
    value = parts["total"]
    met = value <= KAFKA_BYTES
    why = (
        []
        if met
        else [
            f"a state record {parts['state_record']:,.0f} B, a forecast "
            f"{parts['forecast_record']:,.0f} B and its latest-forecast changelog record "
            f"{parts['latest_forecast_record']:,.0f} B (as stored, compressed)"
        ]
    )
    return {
        **row,
        "value": value,
        "ceiling": KAFKA_BYTES,
        "met": met,
        "miss": None if met else f"{value:,.0f} B per reading ({value / KAFKA_BYTES:.2f}x)",
        "why": why,
    }


def restart_target(report: dict[str, Any]) -> dict[str, Any]:
    """Issue 13: a restart over 100k meters' state ready in 20 s, a SIGKILLed worker's
    partitions consumed again within 15 s of its restart."""
    restart = report.get("restart")
    row: dict[str, Any] = {
        "target": f"a worker restarted over {RESTART_METERS:,} meters' state: `/ready` 200 "
        f"within {RESTART_READY_S:.0f} s; SIGKILLed, its partitions consumed again within "
        f"{RESTART_CONSUMED_S:.0f} s of its restart",
        "measure": "seconds from the restarted process's start to /ready 200, and to the fresh "
        "readings consumed (static membership)",
    }
    if not _ok(restart):
        return {**row, "met": None, "miss": _absent(restart), "why": []}
    ready = restart.get("ready_seconds")
    consumed = restart.get("consumed_seconds")
    if ready is None or consumed is None:
        return {**row, "met": None, "miss": "no figure", "why": []}
    share = round(max(ready / RESTART_READY_S, consumed / RESTART_CONSUMED_S), 4)
    met: bool | None = ready <= RESTART_READY_S and consumed <= RESTART_CONSUMED_S
    over: list[str] = []
    if ready > RESTART_READY_S:
        over.append(f"ready in {ready:.1f} s, {ready / RESTART_READY_S:.1f}x the limit")
    if consumed > RESTART_CONSUMED_S:
        over.append(
            f"consumed again in {consumed:.1f} s, {consumed / RESTART_CONSUMED_S:.1f}x the limit"
        )
    miss = None if met else "; ".join(over)
    meters = restart.get("meters", 0)
    if meters < RESTART_METERS:
        met = None
        miss = (
            f"not comparable: state of {meters:,} meters, the target is over {RESTART_METERS:,}"
            + (f" ({miss})" if miss else " (within the limits on that state)")
        )
    why: list[str] = []
    if met is False:
        why.append(
            f"from the process start: web up (imports, ONNX session, faust start) after "
            f"{restart.get('boot_seconds')} s, partitions assigned {restart.get('join_seconds')} "
            f"s later, {restart.get('changelog_records_replayed', 0):,} changelog records "
            f"replayed in {restart.get('recovery_seconds')} s "
            f"({restart.get('replayed_records_per_s')} records/s; the tables live in memory, so "
            f"a restart replays them all), /ready 200 at {ready} s, the fresh readings consumed "
            f"{restart.get('ready_to_consumed_seconds')} s after that"
        )
        at_ready = restart.get("at_ready") or {}
        if at_ready:
            why.append(
                f"to /ready the worker used {at_ready.get('worker_cpu_seconds')} CPU seconds and "
                f"waited for a CPU {at_ready.get('worker_waiting_for_cpu_seconds')} s; load "
                f"average after the phase {restart.get('load_average_after')}"
            )
        group = restart.get("group_after") or {}
        why.append(
            f"group after the restart: {group.get('state')} with {group.get('members')} "
            f"member(s), group instance id {restart.get('group_instance_id')}"
        )
    return {
        **row,
        "value": ready,
        "ceiling": RESTART_READY_S,
        "consumed": consumed,
        "consumed_limit": RESTART_CONSUMED_S,
        "ratio": share,
        "met": met,
        "miss": miss,
        "why": why,
    }


def state_target(report: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {
        "target": f"serialized state <= {STATE_BYTES:,} bytes per meter",
        "measure": "mean value size of the meter-state changelog records",
    }
    memory = report.get("memory")
    state = None
    source = ""
    if _ok(memory) and (memory.get("serialized_state") or {}).get("mean_bytes"):
        state, source = memory["serialized_state"], "memory phase"
    forecast = report.get("forecast")
    if state is None and _ok(forecast) and (forecast.get("state_bytes") or {}).get("mean_bytes"):
        state, source = forecast["state_bytes"], "forecast phase"
    if not state:
        return {**row, "met": None, "miss": _absent(memory), "why": []}
    value = state["mean_bytes"]
    met = value <= STATE_BYTES
    parts = state.get("mean_bytes_by_part", {})
    why = []
    if not met:
        why.append(
            "a record is "
            + ", ".join(f"{name} {size:,.0f} B" for name, size in parts.items())
            + f" ({source}, {state.get('records_sampled', 0):,} records sampled); the window alone "
            f"is {parts.get('window', 0):,.0f} B, so the target leaves "
            f"{STATE_BYTES - parts.get('window', 0) - parts.get('framing', 0):,.0f} B for the "
            "forecast ledger, drift detector and accuracy together"
        )
    return {
        **row,
        "value": value,
        "ceiling": STATE_BYTES,
        "met": met,
        "miss": None
        if met
        else f"missed by {value - STATE_BYTES:,.0f} bytes ({value / STATE_BYTES:.2f}x the target)",
        "why": why,
    }


def http_target(report: dict[str, Any]) -> dict[str, Any]:
    """Issue 18: ``POST /v1/forecast`` series/s >= 50% of the raw ONNX session's at the server's
    batch size, 64 requests of 100 series in flight, every answer a 200."""
    http = report.get("http")
    row: dict[str, Any] = {
        "target": f"`POST /v1/forecast` >= {HTTP_TARGET * 100:.0f}% of raw ONNX Runtime "
        f"throughput at {HTTP_CONCURRENCY} requests in flight of {HTTP_SERIES_PER_REQUEST} "
        "series, every answer 200",
        "measure": "series answered/s over HTTP vs the ONNX session's series/s on the same "
        "windows at the server's batch size (STREAMER_SERVING_MAX_BATCH_SERIES)",
    }
    if not _ok(http) or http.get("ratio_to_session") is None:
        return {**row, "met": None, "miss": _absent(http), "why": []}
    r = http["ratio_to_session"]
    errors = http.get("non_200", 0)
    over: list[str] = []
    if r < HTTP_TARGET:
        over.append(_miss(r, HTTP_TARGET) or "")
    if errors:
        codes = ", ".join(
            f"{code}: {n:,}" for code, n in (http.get("statuses") or {}).items() if code != "200"
        )
        over.append(f"{errors:,} answers other than 200 ({codes or 'status unknown'})")
    met: bool | None = not over
    miss = "; ".join(over) or None
    shape = (http.get("concurrency"), http.get("series_per_request"))
    if shape != (HTTP_CONCURRENCY, HTTP_SERIES_PER_REQUEST):
        met = None
        miss = (
            f"not comparable: {shape[0]} requests in flight of {shape[1]} series, the target is "
            f"at {HTTP_CONCURRENCY} of {HTTP_SERIES_PER_REQUEST}"
            + (f" ({miss})" if miss else f" ({r * 100:.1f}% of the ceiling)")
        )
    why = _http_reasons(http) if over else []
    return {
        **row,
        "value": http["series_per_s"],
        "ceiling": http["session_series_per_s"],
        "batch_size": http["ceiling_batch_size"],
        "ratio": r,
        "met": met,
        "miss": miss,
        "why": why,
        "note": f"p50 {http['latency'].get('p50_ms')} ms, p99 {http['latency'].get('p99_ms')} "
        f"ms per request; against the session at the request size ({shape[1]}): "
        f"{_pct(http.get('ratio_to_session_at_request_size'))}",
    }


def _http_reasons(http: dict[str, Any]) -> list[str]:
    """Where the server's time went, from the phase's CPU figures and its parts timed alone."""
    why: list[str] = []
    server = http.get("server") or {}
    per_s = http.get("requests_per_s")
    cores = http.get("worker_cores")
    loop = http.get("worker_event_loop_cores")
    if cores is not None:
        text = (
            f"the worker used {cores:.2f} cores: its event loop's thread "
            f"{loop if loop is not None else 'n/a'} (HTTP, parsing bodies, encoding answers, "
            f"faust), its other threads {http.get('worker_other_threads_cores')} (the model "
            f"batches run there); it was runnable but waiting for a CPU "
            f"{http.get('worker_waiting_for_cpu_cores')} cores' worth; the clients used "
            f"{http.get('client_cores')} cores and the broker {http.get('broker_cores')}"
        )
        if loop is not None and loop >= 0.85:
            text += "; the event loop's thread was (nearly) one busy core: it bounds the rate"
        why.append(text)
    ceiling = http.get("ceiling") or {}
    parts = ceiling.get("per_request") or {}
    mean_batch = server.get("mean_batch_series")
    at_mean = next(
        (
            r
            for r in ceiling.get("results", [])
            if mean_batch and r["batch_size"] == max(1, round(mean_batch))
        ),
        None,
    )
    if parts and per_s and cores:
        series = parts["series"]
        cpu_ms = cores / per_s * 1000
        model_ms = at_mean["batch_call_ms"] * series / at_mean["batch_size"] if at_mean else None
        known = parts["parse_ms"] + parts["encode_ms"] + (model_ms or 0.0)
        why.append(
            f"per request of {series} series the worker spent {cpu_ms:.1f} ms of CPU; timed "
            f"alone in the bench: parsing the {parts['body_bytes'] / 1000:.0f} kB body "
            f"{parts['parse_ms']} ms and encoding the {parts['answer_bytes'] / 1000:.0f} kB "
            f"answer {parts['encode_ms']} ms (event loop), "
            + (
                f"its share of a batch call at the mean batch ({at_mean['batch_size']} series: "
                f"imputation, features, session) {model_ms:.1f} ms (a thread)"
                if model_ms is not None and at_mean is not None
                else "no batch call timed at the mean batch"
            )
            + f"; the other {max(0.0, cpu_ms - known):.1f} ms are HTTP (aiohttp, faust web), "
            "batching, metrics and the rest of the worker"
        )
    if mean_batch:
        most = (http.get("worker_settings") or {}).get("serving_max_batch_series")
        text = (
            f"the server ran {server.get('batches_per_s')} batches/s of a mean {mean_batch} "
            f"series (at most {most})"
        )
        series = http.get("series_per_request")
        if most and series and mean_batch < 0.9 * most and series <= most:
            text += (
                f": a batch takes whole requests, so requests of {series} series fill batches "
                f"of {most // series * series}"
            )
        if at_mean:
            text += (
                f"; the session alone does {at_mean['session_series_per_s']:,.0f} series/s at "
                f"that batch, {http['session_series_per_s']:,.0f} at {http['ceiling_batch_size']}"
            )
        why.append(text)
    latency = http.get("latency") or {}
    if per_s and latency.get("p50_ms") is not None:
        in_flight = http["concurrency"] * http["series_per_request"]
        why.append(
            f"latency is queueing: {in_flight:,} series in flight at "
            f"{http['series_per_s']:,.0f} series/s wait about "
            f"{in_flight / http['series_per_s'] * 1000:,.0f} ms (p50 {latency['p50_ms']} ms, "
            f"p99 {latency['p99_ms']} ms)"
        )
    return why


def readings_per_cpu_second(run: dict[str, Any]) -> float | None:
    """A scaling run's readings per second of worker CPU (all its workers together)."""
    if run.get("readings_per_worker_cpu_second"):
        return float(run["readings_per_worker_cpu_second"])
    cpu = sum(w.get("worker_cpu_seconds") or 0.0 for w in run.get("per_worker", []))
    if cpu > 0 and run.get("readings"):
        return float(run["readings"]) / cpu
    cores = run.get("worker_cores_total")  # older reports: the same over the run's wall clock
    if cores and run.get("readings_per_s"):
        return float(run["readings_per_s"]) / float(cores)
    return None


def scaling_target(report: dict[str, Any]) -> dict[str, Any]:
    scaling = report.get("scaling")
    row: dict[str, Any] = {
        "target": f"readings per worker-CPU-second with two workers >= "
        f"{SCALING_CPU_EFFICIENCY * 100:.0f}% of one worker's (4 partitions)",
        "measure": "readings / worker CPU seconds (all workers), two workers vs one, same backlog",
    }
    if not _ok(scaling):
        return {**row, "met": None, "miss": _absent(scaling), "why": []}
    one, two = scaling["runs"]
    per_one, per_two = readings_per_cpu_second(one), readings_per_cpu_second(two)
    speedup = scaling["speedup"]
    note = (
        f"wall clock: two workers x{speedup:.2f} one (x{SPEEDUP} expected for machines with 3 "
        f"or more free cores; this one has {scaling.get('cpu_cores_on_machine')} for the "
        "workers, the broker and the bench)"
    )
    uneven = _uneven_load(one, two)
    if uneven:
        note += f"; {uneven}"
    if per_one is None or per_two is None:
        return {**row, "met": None, "miss": "no CPU figures", "why": [], "note": note}
    r = ratio(per_two, per_one) or 0.0
    met = r >= SCALING_CPU_EFFICIENCY
    why = []
    if not met:
        why.append(
            f"worker CPU per reading: one worker {1e6 / per_one:.1f} us, two workers "
            f"{1e6 / per_two:.1f} us; one worker used {one['worker_cores_total']:.2f} cores "
            f"(waiting for a CPU {one['worker_waiting_for_cpu_cores_total']:.2f}), two used "
            f"{two['worker_cores_total']:.2f} together (waiting "
            f"{two['worker_waiting_for_cpu_cores_total']:.2f}); the broker used "
            f"{one['broker_cores']:.2f} and {two['broker_cores']:.2f} cores; load average at "
            f"the end of the phase {scaling.get('load_average_after')}"
        )
        batches = [
            run.get("mean_batch_events")
            for run in (one, two)
            if run.get("mean_batch_events") is not None
        ]
        if len(batches) == 2:
            why.append(
                f"mean batch: one worker {batches[0]} readings, two workers {batches[1]}"
                + (
                    " (a smaller batch spreads each batch's fixed cost over fewer readings)"
                    if batches[1] < batches[0]
                    else ""
                )
            )
    return {
        **row,
        "value": round(per_two, 1),
        "ceiling": round(per_one, 1),
        "ratio": r,
        "met": met,
        "miss": None
        if met
        else f"missed by {(SCALING_CPU_EFFICIENCY - r) * 100:.1f} points ({r * 100:.1f}% of "
        "one worker's readings per CPU second)",
        "why": why,
        "note": note,
        "speedup": speedup,
    }


#: A lone worker that waited for a CPU this much more (share of its runnable time) than a pair
#: did: not the workers' own contention (two contend more than one on a small machine, never
#: less), so the machine's other load changed between the runs and they are not comparable.
UNEVEN_WAIT = 0.15


def _uneven_load(one: dict[str, Any], two: dict[str, Any]) -> str | None:
    a, b = one.get("waiting_share"), two.get("waiting_share")
    if a is None or b is None or a - b <= UNEVEN_WAIT:
        return None
    return (
        f"the workers waited for a CPU {a * 100:.0f}% of their runnable time with one worker and "
        f"{b * 100:.0f}% with two: the machine's other load changed between the runs, so the "
        "ratio measures that as much as scaling"
    )


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.1f}%"


def _absent(section: Any) -> str:
    if section is None:
        return "phase not run"
    if isinstance(section, dict) and "error" in section:
        return "phase failed: " + " ".join(section["error"].split())[:200]
    if isinstance(section, dict) and "skipped" in section:
        return f"skipped: {section['skipped']}"
    return "no figure"


def targets(report: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per target: issue 13's in its order, then issue 14's, then issue 18's. One row
    per key: issue 14's ingest target (12%) is a note on issue 13's row (8%)."""
    ingest = ingest_target(report)
    later = ingest_target(report, INGEST_14_TARGET)
    if later.get("ratio") is not None:
        ingest["note"] = (
            f"issue 14 asks {INGEST_14_TARGET * 100:.0f}% once state work is vectorised: "
            + ("met" if later["met"] else str(later["miss"]))
        )
    return [
        {"key": "ingest", "issue": 13, **ingest},
        {"key": "ingest_vs_faust", "issue": 13, **ingest_vs_faust_target(report)},
        {"key": "latency_1k", "issue": 13, **latency_1k_target(report)},
        {"key": "restart", "issue": 13, **restart_target(report)},
        {"key": "scaling", "issue": 13, **scaling_target(report)},
        {"key": "forecast", "issue": 14, **forecast_target(report)},
        {"key": "latency_5k", "issue": 14, **latency_target(report)},
        {"key": "memory_resident", "issue": 14, **memory_target(report)},
        {"key": "state_bytes", "issue": 14, **state_target(report)},
        {"key": "kafka_bytes", "issue": 14, **kafka_bytes_target(report)},
        {"key": "http", "issue": 18, **http_target(report)},
        {"key": "groups", "issue": 17, **groups_target(report)},
    ]


def groups_target(report: dict[str, Any]) -> dict[str, Any]:
    """Issue 17: group forecasts keep up with 100k meters in 1,000 groups (one slot's grouping,
    meter side and group side, on one core within the slot), and the cost per meter."""
    groups = report.get("groups")
    row: dict[str, Any] = {
        "target": f"group forecasts keep up with {GROUP_METERS:,} meters in {GROUP_COUNT:,} "
        "groups: one slot's grouping done within the slot",
        "measure": "grouping time per meter and slot (contributions, group state, issue, "
        "calibration) vs the ONNX session's time per forecast at batch 256",
    }
    if not _ok(groups):
        return {**row, "met": None, "miss": _absent(groups), "why": []}
    comparable = (groups["meters"], groups["feeders"]) == (GROUP_METERS, GROUP_COUNT)
    met: bool | None = bool(groups["keeps_up"]) if comparable else None
    miss = None
    if not comparable:
        miss = f"not comparable: {groups['meters']:,} meters in {groups['feeders']:,} feeders"
    elif not met:
        miss = f"{groups['seconds_per_slot']:.0f} s per {groups['slot_seconds']} s slot"
    return {
        **row,
        "value": groups["us_per_meter"],
        "ceiling": groups["session_us_per_forecast"],
        "ratio": groups["ratio_to_session"],
        "met": met,
        "miss": miss,
        "why": [],
        "note": f"{groups['seconds_per_slot']:.1f} s of one core per slot of "
        f"{groups['meters']:,} meters ({groups['headroom']:,.0f}x headroom in a "
        f"{groups['slot_seconds']} s slot); state {groups['state_bytes_per_group']:,.0f} B per "
        f"group, {groups['contribution_bytes_per_meter']:,.0f} B of contributions per meter",
    }

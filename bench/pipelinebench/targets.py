"""Issue 7's targets against a report: the ratios, met or missed, by how much, and why.

The reasons are read off the measurements of the same run (CPU used and waited for, busy
shares, the faust ceiling, the py-spy profile, the bytes of each part of a record), never
written by hand, so they change when the figures do.
"""

from __future__ import annotations

from typing import Any, TypeGuard

from pipelinebench.stats import ratio

INGEST_TARGET = 0.5
FORECAST_TARGET = 0.75
LATENCY_RATE = 5000
LATENCY_P99_MS = 250.0
STATE_BYTES = 2048
SPEEDUP = 1.7


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


def ingest_target(report: dict[str, Any]) -> dict[str, Any]:
    ingest = report.get("ingest")
    row: dict[str, Any] = {
        "target": "ingest >= 50% of the raw aiokafka consume rate",
        "measure": "worker ingest readings/s vs raw aiokafka getmany readings/s",
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
            f"{(ingest.get('ratio_to_faust_ceiling') or 0) * 100:.1f}% of that (first to last "
            "reading on both sides), so "
            + (
                "faust's consumer path alone already misses the target"
                if faust["per_s_drained"] < INGEST_TARGET * raw
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
        "met": r >= INGEST_TARGET,
        "miss": _miss(r, INGEST_TARGET),
        "why": why if r < INGEST_TARGET else [],
    }


def _saturation_sentence(forecast: dict[str, Any]) -> str:
    """Whether the backlog kept the worker's batches full and every reading due a forecast."""
    settings = forecast.get("worker_settings", {})
    most = settings.get("batch_max_events")
    window = settings.get("batch_within_seconds")
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
            f"; the batches were not full, so some closed on the {window} s window "
            "(STREAMER_BATCH_WITHIN_SECONDS) or on what the consumer had fetched, not on "
            "batch_max_events"
        )
    else:
        text += (
            "; so batches closed full, on batch_max_events, not on the "
            f"{window} s window (STREAMER_BATCH_WITHIN_SECONDS): no waiting for readings counts"
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
        "target": "forecasting >= 75% of raw ONNX Runtime throughput at the same batch size",
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


def latency_target(report: dict[str, Any]) -> dict[str, Any]:
    latency = report.get("latency")
    row: dict[str, Any] = {
        "target": f"p99 end-to-end latency <= {LATENCY_P99_MS:.0f} ms at {LATENCY_RATE:,} "
        "readings/s",
        "measure": "reading produced to forecast consumed, p99",
    }
    if not _ok(latency):
        return {**row, "met": None, "miss": _absent(latency), "why": []}
    steps = {s["offered_per_s"]: s for s in latency["steps"]}
    step = steps.get(LATENCY_RATE)
    saturated = [s for s in latency["steps"] if s["saturation"]["saturated"]]
    why: list[str] = []
    if saturated:
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
        value = None
        miss = (
            f"not measurable: the worker saturated at {saturated[0]['offered_per_s']:,}/s, "
            f"below {LATENCY_RATE:,}/s"
            if saturated
            else f"{LATENCY_RATE:,}/s was not among the offered loads"
        )
        return {
            **row,
            "value": value,
            "met": False if saturated else None,
            "miss": miss,
            "why": why,
        }
    p99 = step["latency"].get("p99_ms")
    met = p99 is not None and p99 <= LATENCY_P99_MS and not step["saturation"]["saturated"]
    miss = None
    if not met:
        miss = (
            f"p99 {p99:,.0f} ms, {p99 / LATENCY_P99_MS:.1f}x the target"
            if p99 is not None
            else "no forecast came back"
        )
        if step["saturation"]["saturated"]:
            miss += f" (saturated; {step['latency_covers']})"
    if not met and not saturated:
        window = latency.get("worker_settings", {}).get("batch_within_seconds")
        why.append(
            f"not saturated at {LATENCY_RATE:,}/s (the backlog stayed bounded): p50 "
            f"{step['latency'].get('p50_ms')} ms, p99.9 {step['latency'].get('p999_ms')} ms, "
            f"with a batch window of {window} s (STREAMER_BATCH_WITHIN_SECONDS)"
        )
    return {
        **row,
        "value": p99,
        "ceiling": LATENCY_P99_MS,
        "met": met,
        "miss": miss,
        "why": why if not met else [],
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


def scaling_target(report: dict[str, Any]) -> dict[str, Any]:
    scaling = report.get("scaling")
    row: dict[str, Any] = {
        "target": f"two workers >= {SPEEDUP}x one (4 partitions)",
        "measure": "readings/s of two workers / readings/s of one, same backlog",
    }
    if not _ok(scaling):
        return {**row, "met": None, "miss": _absent(scaling), "why": []}
    one, two = scaling["runs"]
    speedup = scaling["speedup"]
    met: bool | None = speedup >= SPEEDUP
    why = []
    uneven = _uneven_load(one, two)
    if uneven:
        return {
            **row,
            "value": speedup,
            "ceiling": SPEEDUP,
            "met": None,
            "miss": f"inconclusive: x{speedup:.2f} measured, but {uneven}",
            "why": [],
        }
    if not met:
        why.append(
            f"the machine has {scaling['cpu_cores_on_machine']} cores for the workers, the "
            f"broker and the bench: one worker used {one['worker_cores_total']:.2f} cores "
            f"(waiting for a CPU {one['worker_waiting_for_cpu_cores_total']:.2f}), two used "
            f"{two['worker_cores_total']:.2f} together (waiting "
            f"{two['worker_waiting_for_cpu_cores_total']:.2f}); the broker used "
            f"{one['broker_cores']:.2f} and {two['broker_cores']:.2f} cores; load average at "
            f"the end of the phase {scaling.get('load_average_after')}"
        )
        per_core_one = one["readings_per_s"] / max(one["worker_cores_total"], 1e-9)
        per_core_two = two["readings_per_s"] / max(two["worker_cores_total"], 1e-9)
        why.append(
            f"per core of worker CPU: one worker {per_core_one:,.0f} readings/s, two workers "
            f"{per_core_two:,.0f} readings/s"
        )
    return {
        **row,
        "value": speedup,
        "ceiling": SPEEDUP,
        "met": met,
        "miss": None if met else f"missed by {SPEEDUP - speedup:.2f} (x{speedup:.2f})",
        "why": why,
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
    """One row per target of issue 7, in its order."""
    return [
        {"key": "ingest", **ingest_target(report)},
        {"key": "forecast", **forecast_target(report)},
        {"key": "latency", **latency_target(report)},
        {"key": "state_bytes", **state_target(report)},
        {"key": "scaling", **scaling_target(report)},
    ]

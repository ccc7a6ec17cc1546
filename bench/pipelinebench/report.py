"""The Markdown rendering of a pipeline benchmark report."""

from __future__ import annotations

from typing import Any


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.1f}%"


def _met(ratio: float | None, target: float) -> str:
    if ratio is None:
        return "n/a"
    if ratio >= target:
        return "met"
    return f"missed by {(target - ratio) * 100:.1f} points"


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f}"


def markdown(report: dict[str, Any]) -> str:
    env = report["environment"]
    machine = env["machine"]
    versions = env["versions"]
    ingest = report.get("ingest")
    forecast = report.get("forecast")
    onnx = report.get("onnx")
    ratios = report["ratios"]
    lines = [
        "## Pipeline benchmark",
        "",
        f"Command: `{env['command']}`",
        "",
        f"Machine: {machine['nproc']} CPUs ({machine['processor']}), load average "
        f"{machine['load_average_at_start']} at start, {report['load_average_at_end']} at end. "
        f"Python {versions['python']}, faust-streaming {versions.get('faust-streaming')}, "
        f"aiokafka {versions.get('aiokafka')}, onnxruntime "
        f"{versions.get('onnxruntime-gpu') or versions.get('onnxruntime')}, "
        f"numpy {versions.get('numpy')}, orjson {versions.get('orjson')}, "
        f"Kafka {versions['kafka']} (local single-node KRaft, {report['partitions']} partitions). "
        f"Code {env['code']['commit'][:10]} with {env['code']['uncommitted_paths']} "
        "uncommitted paths.",
        "",
        "| measure | worker | ceiling | ratio | target | |",
        "|---|---|---|---|---|---|",
    ]
    if ingest is not None:
        lines.append(
            f"| ingest, readings/s (state updates, no forecasts) | "
            f"{_num(ingest['worker']['readings_per_s_to_lag0'])} | "
            f"{_num(ingest['ceiling_raw_consume']['median_per_s'])} (raw aiokafka, median) | "
            f"{_pct(ratios.get('ingest'))} | >= 50% | {_met(ratios.get('ingest'), 0.5)} |"
        )
    if forecast is not None and onnx is not None:
        batch = ratios.get("forecast_batch_size")
        lines.append(
            f"| forecasts/s (one new slot per meter per batch) | "
            f"{_num(forecast['forecasts_per_s'])} | "
            f"{_num(ratios.get('onnx_session_per_s'))} (ONNX Runtime session, batch {batch}) | "
            f"{_pct(ratios.get('forecast'))} | >= 75% | {_met(ratios.get('forecast'), 0.75)} |"
        )
        lines.append(
            f"| forecasts/s vs whole `forecast()` (features + session) | "
            f"{_num(forecast['forecasts_per_s'])} | "
            f"{_num(ratios.get('onnx_forecast_per_s'))} (batch {batch}) | "
            f"{_pct(ratios.get('forecast_vs_forecast_call'))} | (info) | |"
        )
    lines.append("")
    if ingest is not None:
        w = ingest["worker"]
        lines += [
            f"Ingest: {ingest['readings']:,} readings ({ingest['meters']:,} meters x "
            f"{ingest['slots']} slots, slot-major, {ingest['mean_value_bytes']} B each); "
            f"first consumed to lag 0 in {w['first_consumed_to_lag0_seconds']} s "
            f"({_num(w['readings_per_s_processed'])}/s to the last reading processed); mean batch "
            f"{w['mean_batch_events']} events, {w['state_writes']:,.0f} state writes, batch "
            f"handler busy {_pct(w['batch_handler_busy_share'])} of the time "
            f"({w['batch_handler_us_per_reading']} us/reading); CPU: worker "
            f"{w['worker_cores']} cores ({w['worker_cpu_us_per_reading']} us/reading), broker "
            f"{w['broker_cores']} cores. Ceiling: "
            f"{ingest['ceiling_raw_consume']['passes']} passes, "
            f"{_num(ingest['ceiling_raw_consume']['worst_per_s'])} to "
            f"{_num(ingest['ceiling_raw_consume']['best_per_s'])}/s. {_bytes(w)}.",
            "",
        ]
    if forecast is not None:
        lines += [
            f"Forecasting: {forecast['meters']:,} meters with {forecast['history_slots']} slots "
            f"of history, {forecast['rounds']} rounds of one new slot per meter; "
            f"{forecast['forecasts']:,} forecasts in {forecast['seconds']} s (median round "
            f"{_num(forecast['median_round_forecasts_per_s'])}/s); mean LSTM batch "
            f"{forecast['mean_lstm_batch']}; in the worker the forecaster call ran at "
            f"{_num(forecast['in_worker_forecast_call_per_s'])}/s and took "
            f"{_pct(forecast['inference_share_of_round'])} of the round time (batch handler "
            f"{_pct(forecast['batch_handler_share_of_round'])}); CPU per forecast: worker "
            f"{forecast['worker_cpu_ms_per_forecast']} ms, broker "
            f"{forecast['broker_cpu_ms_per_forecast']} ms. Preload: "
            f"{forecast['preload']['readings']:,} readings (meter-major) at "
            f"{_num(forecast['preload']['readings_per_s_processed'])}/s. {_bytes(forecast)}.",
            "",
            "| round | forecasts | seconds | forecasts/s | LSTM calls | inference s | "
            "worker cores | broker cores |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for i, row in enumerate(forecast["per_round"], 1):
            lines.append(
                f"| {i} | {row['forecasts']} | {row['seconds']} | {_num(row['forecasts_per_s'])} | "
                f"{row['lstm_calls']} | {row['lstm_inference_seconds']} | {row['worker_cores']} | "
                f"{row['broker_cores']} |"
            )
        lines.append("")
    if onnx is not None:
        lines += [
            f"Raw ONNX Runtime ({onnx['model']}, {', '.join(onnx['providers_in_use'])}, "
            f"max_batch_size {onnx['max_batch_size']}), median of repeats:",
            "",
            "| batch | session forecasts/s | forecast() forecasts/s |",
            "|---|---|---|",
        ]
        for row in onnx["results"]:
            lines.append(
                f"| {row['batch_size']} | {_num(row['session_forecasts_per_s'])} | "
                f"{_num(row['forecast_forecasts_per_s'])} |"
            )
        lines.append("")
    if ingest is not None and ingest["worker"].get("profile"):
        lines += _profile_table("ingest worker, the measured run", ingest["worker"]["profile"])
    profile = (forecast or {}).get("profile")
    if profile:
        what = f"forecasting worker, {profile['rounds']['forecasts']:,} forecasts in extra rounds"
        lines += _profile_table(what, profile)
    return "\n".join(lines)


def _profile_table(what: str, profile: dict[str, Any]) -> list[str]:
    if not profile.get("self"):
        return []
    lines = [
        f"Profile of the {what} (py-spy, {profile['samples']} samples of the worker's Python "
        "threads; groups overlap as nested calls do):",
        "",
        "| part of the worker | share of samples |",
        "|---|---|",
    ]
    for label, share in profile.get("groups", {}).items():
        indent = len(label) - len(label.lstrip(" "))
        lines.append(f"| {'&nbsp;' * indent}{label.strip()} | {_pct(share)} |")
    lines += ["", "| function (top by own time) | own | inclusive |", "|---|---|---|"]
    for row in profile["self"][:15]:
        lines.append(
            f"| `{row['function']}` | {_pct(row['share'])} | {_pct(row['inclusive_share'])} |"
        )
    lines.append("")
    return lines


def _bytes(section: dict[str, Any]) -> str:
    by_topic = section.get("broker_bytes_by_topic") or {}
    parts = ", ".join(f"{name} {size / 1e6:.1f} MB" for name, size in by_topic.items() if size)
    return f"Kafka bytes written per reading {section.get('bytes_written_per_reading')} ({parts})"

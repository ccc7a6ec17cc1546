"""The suite's report: targets met or missed, by how much and why, and BENCHMARKS.md."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest

Bench = Callable[[str], ModuleType]


def _profile(groups: dict[str, float]) -> dict[str, Any]:
    return {
        "samples": 100,
        "groups": groups,
        "self": [
            {
                "function": "BatchProcessor._apply_meter (streamer/pipeline/batch_processor.py)",
                "share": 0.2,
                "inclusive_share": 0.3,
            },
            {"function": "select (selectors.py)", "share": 0.1, "inclusive_share": 0.1},
        ],
        "inclusive": [
            {"function": "Consumer._drain_messages (faust/transport/consumer.py)", "share": 0.4}
        ],
    }


def _report() -> dict[str, Any]:
    cpu = {"worker_cores": 0.9, "worker_waiting_for_cpu_cores": 0.2, "broker_cores": 0.1}
    rnd = {
        "forecasts": 4000,
        "seconds": 3.0,
        "forecasts_per_s": 1000.0,
        "forecasts_per_batch": {"min": 1000, "median": 1000, "max": 1000},
        "cycle_seconds": {"min": 0.9, "median": 1.0, "max": 1.1},
        **cpu,
    }
    return {
        "environment": {
            "machine": {
                "nproc": 2,
                "processor": "x86_64",
                "platform": "Linux",
                "memory_gb": 23.4,
                "load_average_at_start": [2.0, 2.0, 2.0],
            },
            "date_utc": "2026-11-23 21:00",
            "versions": {"python": "3.11.7", "kafka": "4.4.0", "faust-streaming": "0.15.3"},
            "code": {"commit": "abcdef1234567", "uncommitted_paths": 3},
            "command": ".venv/bin/python bench/pipeline_bench.py --quick",
        },
        "mode": "quick",
        "suite_seconds": 300.0,
        "run_dir": ".streamer/bench/runs/x",
        "partitions": 4,
        "worker_env": [],
        "load_average_at_end": [3.0, 2.5, 2.0],
        "ingest": {
            "readings": 24000,
            "meters": 1000,
            "slots": 24,
            "mean_value_bytes": 105.0,
            "ceiling_raw_consume": {
                "median_per_s": 300000.0,
                "best_per_s": 400000.0,
                "worst_per_s": 200000.0,
                "passes": 30,
            },
            "ceiling_faust": [
                {
                    "mode": "take_events",
                    "per_s_drained": 6000.0,
                    "per_s_to_lag0": 5000.0,
                    "app_cores": 0.95,
                    "mean_batch_events": 1500.0,
                    "profile": _profile({"faust consumer: fetch, drain, decode, events": 0.4}),
                }
            ],
            "worker": {
                "readings_per_s_to_lag0": 3000.0,
                "readings_per_s_processed": 3600.0,
                "mean_batch_events": 1363.5,
                "state_writes": 16000,
                "batch_handler_busy_share": 0.3,
                "batch_handler_us_per_reading": 88.0,
                "worker_cpu_us_per_reading": 227.0,
                "bytes_written_per_reading": 1775.5,
                "broker_bytes_by_topic": {"meter-state-changelog": 42_600_000},
                "profile": _profile({"batch handler (readings_agent.handle_batch)": 0.3}),
                **cpu,
            },
            "ratio_to_ceiling": 0.01,
            "ratio_to_faust_ceiling": 0.6,
            "faust_ceiling_to_raw_ceiling": 0.02,
            "phase_seconds": 35.0,
            "load_average_after": [2.1, 2.0, 2.0],
        },
        "forecast": {
            "meters": 1000,
            "history_slots": 96,
            "backlog_slots": 6,
            "readings": 6000,
            "forecasts": 6000,
            "forecasts_in_span": 5000,
            "seconds": 5.0,
            "forecasts_per_s": 1000.0,
            "batches": 6,
            "ramp_up_batches": 0,
            "mean_batch_forecasts_in_span": 1000.0,
            "ceiling_batch_size": 1000,
            "mean_batch_events": 1000.0,
            "forecasts_per_batch": {"min": 1000, "median": 1000, "max": 1000},
            "cycle_seconds": {"min": 0.9, "median": 1.0, "max": 1.1},
            "mean_lstm_batch": 1000.0,
            "in_worker_forecast_call_per_s": 8000.0,
            "inference_share_of_cycle": 0.13,
            "batch_handler_share_of_cycle": 0.68,
            "worker_cpu_ms_per_forecast": 0.865,
            "broker_cpu_ms_per_forecast": 0.133,
            "worker_settings": {"forecast_every_slots": 1, "batch_max_events": 2000},
            "preload": {"readings": 96000, "readings_per_s_processed": 4000.0},
            **cpu,
            "profile": {
                **_profile({"forecast records (BatchProcessor._issue_forecasts)": 0.2}),
                "run": {**rnd, "readings": 4000, "batches": 4, "mean_batch_events": 1000.0},
            },
            "state_bytes": {"mean_bytes": 2581.0, "latest_forecast_mean_bytes": 2400.0},
        },
        "onnx": {
            "model": "lstm:1",
            "providers_in_use": ["CPUExecutionProvider"],
            "max_batch_size": 1024,
            "results": [
                {
                    "batch_size": 1000,
                    "session_forecasts_per_s": 15000.0,
                    "forecast_forecasts_per_s": 14000.0,
                }
            ],
        },
        "latency": {
            "meters": 2000,
            "history_slots": 90,
            "step_seconds": 10.0,
            "drain_seconds": 15.0,
            "method": "matched by meter and origin",
            "worker_settings": {"batch_max_events": 2000},
            "steps": [
                _step(1000, False, 2900.0),
                _step(5000, True, 18000.0),
            ],
            "saturated_at_per_s": 5000,
            "not_tried_per_s": [20000],
        },
        "memory": {
            "forecasting": "off",
            "slots_per_meter": 1,
            "state_cache_meters": 200000,
            "idle": {"rss_bytes": 116_700_000},
            "steps": [
                {
                    "meters": 10000,
                    "rss_bytes": 188_900_000,
                    "rss_over_idle_bytes": 72_200_000,
                    "resident_bytes_per_meter": 7220.0,
                    "state_writes": 10000,
                }
            ],
            "serialized_state": {
                "records_sampled": 5000,
                "mean_bytes": 2581.0,
                "min_bytes": 2581,
                "max_bytes": 2581,
                "mean_bytes_by_part": {
                    "framing": 21.0,
                    "window": 1724.0,
                    "forecast_ledger": 732.0,
                    "drift_detector": 60.0,
                    "rolling_accuracy": 44.0,
                },
            },
            "target_state_bytes": 2048,
        },
        "restart": _restart(),
        "scaling": {
            "meters": 1000,
            "slots": 24,
            "partitions": 4,
            "forecasting": "off",
            "method": "balanced first",
            "cpu_cores_on_machine": 2,
            "speedup": 1.38,
            "runs": [
                _scale_run(1, 4000.0, [[0, 1, 2, 3]]),
                _scale_run(2, 5500.0, [[0, 1], [2, 3]]),
            ],
        },
        "gpu": {"skipped": "no GPU on this machine (no NVIDIA driver loaded)"},
        "http": _http(),
    }


def _http(series_per_s: float = 7560.0) -> dict[str, Any]:
    """The http phase's section (figures of a quick run on a 2-core machine)."""
    session = {100: 19034.0, 200: 19456.0, 256: 19116.0}
    return {
        "route": "POST /v1/forecast",
        "concurrency": 64,
        "series_per_request": 100,
        "lookback_slots": 336,
        "body_bytes": 206005,
        "distinct_bodies": 8,
        "warmup_seconds": 3.0,
        "auth": "Authorization: Bearer (one key in STREAMER_API_KEYS)",
        "client": "aiohttp ClientSession in the bench process, 64 clients",
        "worker_settings": {"serving_max_batch_series": 256, "onnx_intra_op_threads": 1},
        "seconds": 10.0,
        "requests": 756,
        "requests_ok": 756,
        "non_200": 0,
        "statuses": {"200": 756},
        "series_answered": 75600,
        "series_per_s": series_per_s,
        "requests_per_s": series_per_s / 100,
        "latency": {"count": 756, "p50_ms": 836.5, "p99_ms": 957.1, "p999_ms": 963.5},
        "server": {
            "mean_batch_series": 200.0,
            "batches_per_s": 37.8,
            "mean_request_ms": 838.9,
            "mean_batch_series_whole_run": 200.0,
        },
        "worker_cores": 1.224,
        "worker_event_loop_cores": 0.597,
        "worker_other_threads_cores": 0.627,
        "worker_waiting_for_cpu_cores": 0.201,
        "client_cores": 0.058,
        "broker_cores": 0.079,
        "ceiling": {
            "model": "lstm:1",
            "providers_in_use": ["CPUExecutionProvider"],
            "intra_op_threads": 1,
            "results": [
                {
                    "batch_size": size,
                    "session_series_per_s": rate,
                    "batch_call_ms": round(size / (rate * 0.9) * 1000, 3),
                    "batch_call_series_per_s": rate * 0.9,
                }
                for size, rate in session.items()
            ],
            "per_request": {
                "series": 100,
                "body_bytes": 206056,
                "answer_bytes": 316361,
                "parse_ms": 3.178,
                "encode_ms": 1.226,
            },
        },
        "ceiling_batch_size": 256,
        "session_series_per_s": session[256],
        "ratio_to_session": round(series_per_s / session[256], 4),
        "session_series_per_s_at_request_size": session[100],
        "ratio_to_session_at_request_size": round(series_per_s / session[100], 4),
        "phase_seconds": 27.2,
        "load_average_after": [0.7, 0.5, 0.28],
    }


def _restart(ready: float = 25.0, consumed: float = 26.0, meters: int = 100_000) -> dict[str, Any]:
    return {
        "meters": meters,
        "group_instance_id": "bench-x-memory-worker",
        "changelog_records": {"meter-state": 100_000, "meter-latest-forecast": 0},
        "changelog_records_replayed": 100_000,
        "replayed_records_per_s": 12_500.0,
        "fresh_readings": 400,
        "fresh_readings_by_partition": {"0": 98, "1": 103, "2": 97, "3": 102},
        "web_up_seconds": 6.0,
        "partitions_assigned_seconds": 9.0,
        "recovered_seconds": 17.0,
        "ready_seconds": ready,
        "consumed_seconds": consumed,
        "committed_seconds": consumed + 1.0,
        "boot_seconds": 6.0,
        "join_seconds": 3.0,
        "recovery_seconds": 8.0,
        "ready_to_consumed_seconds": round(consumed - ready, 2),
        "at_ready": {"worker_cpu_seconds": 14.2, "worker_waiting_for_cpu_seconds": 3.1},
        "readings_partitions": [0, 1, 2, 3],
        "group_after": {"state": "Stable", "members": 1},
        "method": "SIGKILL, then restart",
        "load_average_after": [2.5, 2.2, 2.0],
    }


def _step(rate: int, saturated: bool, p99: float) -> dict[str, Any]:
    return {
        "offered_per_s": rate,
        "readings": rate * 10,
        "achieved_offer_per_s": float(rate),
        "worker_consumed_per_s_during_step": 1100.0,
        "forecasts_during_step_per_s": 1085.0,
        "forecasts_matched": rate * 10 if not saturated else rate * 5,
        "latency": {"count": 10, "p50_ms": p99 / 2, "p99_ms": p99, "p999_ms": p99, "max_ms": p99},
        "latency_covers": "every reading of the step" if not saturated else "some",
        "saturation": {"saturated": saturated, "reason": "backlog reason"},
        "worker_cores": 1.0,
        "worker_waiting_for_cpu_cores": 0.05,
        "broker_cores": 0.1,
    }


def _scale_run(workers: int, rate: float, parts: list[list[int]]) -> dict[str, Any]:
    return {
        "workers": workers,
        "readings_per_s": rate,
        "worker_cores_total": 0.86 if workers == 1 else 1.33,
        "worker_waiting_for_cpu_cores_total": 0.1 if workers == 1 else 0.47,
        "broker_cores": 0.08,
        "per_worker": [
            {"readings_partitions": p, "worker_cores": 0.7, "worker_waiting_for_cpu_cores": 0.2}
            for p in parts
        ],
    }


def test_targets_say_by_how_much_and_why_each_is_missed(bench: Bench) -> None:
    targets = bench("targets")
    report = _report()
    report["ratios"] = targets.ratios(report)
    assert report["ratios"]["forecast"] == pytest.approx(1000 / 15000, abs=1e-4)
    rows = {row["key"]: row for row in targets.targets(report)}
    assert list(rows) == [
        "ingest",
        "ingest_vs_faust",
        "latency_1k",
        "restart",
        "scaling",
        "forecast",
        "latency_5k",
        "memory_resident",
        "state_bytes",
        "kafka_bytes",
        "http",
        "groups",
    ]
    assert [row["issue"] for row in rows.values()] == [
        13,
        13,
        13,
        13,
        13,
        14,
        14,
        14,
        14,
        14,
        18,
        17,
    ]
    absent = ("memory_resident", "kafka_bytes", "groups")  # not in this report
    measured = [row for key, row in rows.items() if key not in absent]
    assert all(row["met"] is False for row in measured)
    assert all(row["why"] for row in measured)
    assert (
        "issue 14 asks 12% once state work is vectorised: missed by 11.0 points"
        in (rows["ingest"]["note"])
    )
    # not in this report: said so, not judged
    assert rows["memory_resident"]["met"] is None and rows["kafka_bytes"]["met"] is None
    assert rows["ingest"]["miss"].startswith("missed by 7.0 points")
    assert "8.0x the throughput" in rows["ingest"]["miss"]
    assert rows["ingest_vs_faust"]["ratio"] == 0.6
    assert rows["ingest_vs_faust"]["miss"] == (
        "x0.60 the bare faust drain; 8.3x the worker's throughput is needed"
    )
    assert rows["latency_1k"]["value"] == 2900.0 and rows["latency_1k"]["p50"] == 1450.0
    assert (
        rows["latency_1k"]["miss"] == "p99 2,900 ms, 19.3x the limit; p50 1,450 ms, 19.3x the limit"
    )
    assert any("batching is continuous" in w for w in rows["latency_1k"]["why"])
    assert rows["restart"]["ratio"] == pytest.approx(26.0 / 15.0, abs=1e-4)
    assert rows["restart"]["miss"] == (
        "ready in 25.0 s, 1.2x the limit; consumed again in 26.0 s, 1.7x the limit"
    )
    assert any("100,000 changelog records replayed in 8.0 s" in w for w in rows["restart"]["why"])
    assert any("faust's consumer path alone already misses" in w for w in rows["ingest"]["why"])
    assert any(
        "faust consumer: fetch, drain, decode, events 40%" in w for w in rows["ingest"]["why"]
    )
    forecast_why = rows["forecast"]["why"]
    assert any("fewer meters than batch_max_events (1,000 < 2,000)" in w for w in forecast_why)
    assert any("batching is continuous" in w for w in forecast_why)
    assert any("fewer than batch_max_events" in w for w in forecast_why)
    assert any("in a batch cycle (median 1.0 s)" in w for w in forecast_why)
    assert rows["latency_5k"]["value"] == 18000.0
    assert "saturated" in rows["latency_5k"]["miss"]
    assert "missed by 533 bytes" in rows["state_bytes"]["miss"]
    assert any("window 1,724 B" in w for w in rows["state_bytes"]["why"])
    # older scaling runs without CPU seconds: readings/s over the cores used
    assert rows["scaling"]["ratio"] == pytest.approx((5500 / 1.33) / (4000 / 0.86), abs=1e-4)
    assert rows["scaling"]["miss"] == (
        "missed by 1.1 points (88.9% of one worker's readings per CPU second)"
    )
    assert (
        "x1.38 one (x1.7 expected for machines with 3 or more free cores"
        in (rows["scaling"]["note"])
    )


def test_targets_met_carry_no_reasons(bench: Bench) -> None:
    targets = bench("targets")
    report = _report()
    report["ingest"]["ratio_to_ceiling"] = 0.6
    report["ingest"]["worker"]["readings_per_s_processed"] = 31000.0  # > 5 x 6,000
    report["scaling"]["speedup"] = 1.2  # wall clock: not the target
    one, two = report["scaling"]["runs"]
    one["readings_per_worker_cpu_second"], two["readings_per_worker_cpu_second"] = 5000.0, 4600.0
    report["latency"]["steps"] = [_step(1000, False, 140.0), _step(5000, False, 200.0)]
    report["restart"] = _restart(ready=12.0, consumed=13.5)
    report["http"] = _http(series_per_s=9600.0)
    rows = {row["key"]: row for row in targets.targets(report)}
    assert rows["scaling"]["ratio"] == 0.92
    keys = ("ingest", "ingest_vs_faust", "latency_1k", "latency_5k", "restart", "scaling", "http")
    for key in keys:
        assert rows[key]["met"] is True, key
        assert rows[key]["why"] == [], key


def test_latency_target_when_the_worker_saturates_below_the_target_load(bench: Bench) -> None:
    targets = bench("targets")
    report = _report()
    report["latency"]["steps"] = [_step(1000, True, 9000.0)]
    row = targets.latency_target(report)
    assert row["met"] is False
    assert row["miss"] == "not measurable: the worker saturated at 1,000/s, below 5,000/s"


def test_failed_and_skipped_phases_are_reported_not_raised(bench: Bench) -> None:
    targets = bench("targets")
    report_module = bench("report")
    report = _report()
    report["scaling"] = {"error": "TimeoutError: group did not settle\nsecond line"}
    del report["memory"]
    rows = {row["key"]: row for row in targets.targets(report)}
    assert rows["scaling"]["met"] is None
    assert rows["scaling"]["miss"] == "phase failed: TimeoutError: group did not settle second line"
    report["targets"] = list(rows.values())
    report["ratios"] = targets.ratios(report)
    text = report_module.markdown(report, json_path="bench/reports/pipeline-bench.json")
    assert "**Phase failed**" in text
    assert "Skipped: no GPU on this machine" in text


def _markdown(bench: Bench) -> str:
    """The Markdown report of :func:`_report`, with its ratios and targets worked out."""
    targets = bench("targets")
    report = _report()
    report["ratios"] = targets.ratios(report)
    report["targets"] = targets.targets(report)
    text: str = bench("report").markdown(report, json_path="bench/reports/pipeline-bench.json")
    return text


def test_markdown_has_machine_command_figures_and_reasons(bench: Bench) -> None:
    text = _markdown(bench)
    assert text.startswith("# Benchmarks\n")
    assert ".venv/bin/python bench/pipeline_bench.py --quick" in text
    assert "2 CPUs (x86_64)" in text and "[2.0, 2.0, 2.0] at start" in text
    assert "## Targets (issues 13, 14, 17 and 18)" in text
    assert (
        "| worker ingest >= 8% of raw aiokafka `getmany` (same run) (issue 13) | 3,000/s | "
        "300,000/s | 1.0% |" in text
    )
    assert "| 3,600/s (worker) | 6,000/s (bare faust); 5x it | x0.60 |" in text
    assert (
        "| p99 2,900.0 ms, p50 1,450.0 ms | p99 150 ms, p50 75 ms | 1933.3% of the limit |" in text
    )
    assert "| ready 25.0 s, consumed again 26.0 s | ready 20 s, consumed again 15 s |" in text
    assert "ONNX Runtime throughput at the same batch size (issue 14) |" in text
    assert "- scaling: wall clock: two workers x1.38 one" in text
    assert "## 5b. Restart after a SIGKILL, over the memory phase's state" in text
    assert "| **`/ready` 200** | **25.0** |" in text
    assert (
        "Changelog records replayed: 100,000 (meter-state 100,000, meter-latest-forecast 0)" in text
    )
    assert (
        "Readings per second of worker CPU: one worker 4,651, two workers 4,135: **88.9%**" in text
    )
    assert "Why, from this run's measurements:" in text
    assert "| B. bare faust app, worker's settings, drain + ack (`take_events`) | 6,000 |" in text
    assert "| 5,000 | 5,000 | 1,100 | 1,085 |" in text
    assert "| 10,000 | 188.9 | 72.2 | 7,220 |" in text
    assert "**2,581 B**" in text
    assert "Two workers / one, wall clock: **x1.38** (x1.7 expected for machines with 3" in text
    assert "](bench/reports/pipeline-bench.json)" in text
    for line in text.splitlines():
        if line.startswith("|"):
            assert line.endswith("|"), line  # no cell broke the table


def test_scaling_target_is_cpu_per_reading_and_the_wall_clock_a_note(bench: Bench) -> None:
    targets = bench("targets")
    report = _report()
    one, two = report["scaling"]["runs"]
    # CPU seconds of each worker: the readings / CPU seconds of the run
    one["readings"], two["readings"] = 24000, 24000
    one["per_worker"][0]["worker_cpu_seconds"] = 6.0  # 4,000 readings per CPU second
    two["per_worker"][0]["worker_cpu_seconds"] = 3.2
    two["per_worker"][1]["worker_cpu_seconds"] = 3.2  # 3,750
    row = targets.scaling_target(report)
    assert (row["value"], row["ceiling"], row["ratio"]) == (3750.0, 4000.0, 0.9375)
    assert row["met"] is True and row["why"] == [] and row["miss"] is None
    # the phase's own figure wins over the per-worker CPU seconds
    two["readings_per_worker_cpu_second"] = 3000.0
    row = targets.scaling_target(report)
    assert row["ratio"] == 0.75 and row["met"] is False
    assert row["miss"] == "missed by 15.0 points (75.0% of one worker's readings per CPU second)"
    assert any("one worker 250.0 us, two workers 333.3 us" in w for w in row["why"])
    # the machine's load changed between the runs: said of the wall-clock figure, in the note
    report["scaling"]["speedup"] = 3.2
    one["waiting_share"], two["waiting_share"] = 0.48, 0.19
    row = targets.scaling_target(report)
    assert row["met"] is False
    assert "x3.20 one" in row["note"] and "the machine's other load changed" in row["note"]


def test_forecast_reasons_follow_how_full_the_batches_were(bench: Bench) -> None:
    targets = bench("targets")
    report = _report()
    forecast = report["forecast"]
    forecast["meters"], forecast["mean_batch_events"] = 2000, 1990.0
    forecast["forecasts_per_batch"] = {"min": 1500, "median": 1800, "max": 2000}
    report["ratios"] = targets.ratios(report)
    why = " ".join(targets.forecast_target(report)["why"])
    assert "batches were full, at batch_max_events (batching is continuous" in why
    assert "window" not in why
    assert "some batches held two readings of a meter" in why
    assert "fewer meters than batch_max_events" not in why
    forecast["forecasts_per_batch"]["median"] = 1990
    why = " ".join(targets.forecast_target(report)["why"])
    assert "two readings" not in why


def test_markdown_shows_the_measured_and_the_profiled_backlog(bench: Bench) -> None:
    text = _markdown(bench)
    assert "| measured | 6,000 | 6 | 1000.0 | 1000, 1000, 1000 | 0.9, 1.0, 1.1 | 1,000 |" in text
    assert "| profiled (py-spy) | 4,000 | 4 | 1000.0 |" in text
    assert "5,000 forecasts in 5.0 s" in text
    assert "0.25 s window" not in text.split("## 3. Forecasting")[1]


def test_latency_1k_target_needs_both_p99_and_p50_within_limits(bench: Bench) -> None:
    targets = bench("targets")
    report = _report()
    step = _step(1000, False, 140.0)
    step["latency"]["p50_ms"] = 80.0  # p99 within 150 ms, p50 over 75 ms
    report["latency"]["steps"] = [step]
    row = targets.latency_1k_target(report)
    assert row["met"] is False
    assert row["miss"] == "p50 80 ms, 1.1x the limit"
    assert row["ratio"] == pytest.approx(80 / 75, abs=1e-4)
    step["latency"]["p50_ms"] = 60.0
    row = targets.latency_1k_target(report)
    assert row["met"] is True and row["why"] == [] and row["miss"] is None
    assert row["ratio"] == pytest.approx(140 / 150, abs=1e-4)
    assert (row["value"], row["p50"], row["ceiling"], row["p50_limit"]) == (140.0, 60.0, 150, 75)
    # within the limits, but the worker fell behind: the figures cover only some readings
    step["saturation"]["saturated"], step["latency_covers"] = True, "some"
    row = targets.latency_1k_target(report)
    assert row["met"] is False
    assert row["miss"] == "within the limits (saturated; some)"
    report["latency"]["steps"] = [_step(5000, False, 100.0)]
    row = targets.latency_1k_target(report)
    assert row["met"] is None and row["miss"] == "1,000/s was not among the offered loads"


def test_ingest_vs_faust_target(bench: Bench) -> None:
    targets = bench("targets")
    report = _report()
    report["ingest"]["worker"]["readings_per_s_processed"] = 30000.0  # exactly 5 x 6,000
    row = targets.ingest_vs_faust_target(report)
    assert (row["value"], row["ceiling"], row["ratio"], row["met"]) == (30000.0, 6000.0, 5.0, True)
    assert row["why"] == [] and row["miss"] is None
    report["ingest"]["worker"]["readings_per_s_processed"] = 12000.0
    row = targets.ingest_vs_faust_target(report)
    assert row["met"] is False and row["ratio"] == 2.0
    assert row["miss"] == "x2.00 the bare faust drain; 2.5x the worker's throughput is needed"
    assert any("158.3 us of CPU per reading" in w for w in row["why"])  # 0.95 cores / 6,000/s
    report["ingest"]["ceiling_faust"] = []  # --no-faust-ceiling
    row = targets.ingest_vs_faust_target(report)
    assert row["met"] is None and row["miss"] == "no faust drain in this run"


def test_ingest_target_is_8_percent_of_raw_getmany(bench: Bench) -> None:
    targets = bench("targets")
    report = _report()
    report["ingest"]["ratio_to_ceiling"] = 0.08
    row = targets.ingest_target(report)
    assert row["met"] is True and row["why"] == []
    report["ingest"]["ratio_to_ceiling"] = 0.04
    row = targets.ingest_target(report)
    assert row["met"] is False
    assert row["miss"].startswith("missed by 4.0 points (4.0% of the ceiling; 2.0x")


def test_restart_target(bench: Bench) -> None:
    targets = bench("targets")
    report = _report()
    report["restart"] = _restart(ready=19.5, consumed=15.0)
    row = targets.restart_target(report)
    assert row["met"] is True and row["miss"] is None and row["why"] == []
    assert row["ratio"] == 1.0  # consumed again at exactly the limit
    assert (row["value"], row["consumed"]) == (19.5, 15.0)
    report["restart"] = _restart(ready=12.0, consumed=31.0)  # e.g. waited for the session timeout
    row = targets.restart_target(report)
    assert row["met"] is False
    assert row["miss"] == "consumed again in 31.0 s, 2.1x the limit"
    assert any("group after the restart: Stable with 1 member(s)" in w for w in row["why"])
    # a smaller state is no evidence either way
    report["restart"] = _restart(ready=8.0, consumed=9.0, meters=2000)
    row = targets.restart_target(report)
    assert row["met"] is None and row["why"] == []
    assert row["miss"] == (
        "not comparable: state of 2,000 meters, the target is over 100,000 (within the limits "
        "on that state)"
    )
    report["restart"] = {"error": "RuntimeError: the memory phase handed over no worker"}
    assert targets.restart_target(report)["miss"].startswith("phase failed: RuntimeError")


def test_restart_timeline_spans(bench: Bench) -> None:
    restart = bench("restart")
    marks = {"web_up": 5.0, "partitions_assigned": 7.5, "recovered": 11.25, "ready": 11.5}
    times = restart.timeline(marks)
    assert times["ready_seconds"] == 11.5 and times["consumed_seconds"] is None
    assert (times["boot_seconds"], times["join_seconds"], times["recovery_seconds"]) == (
        5.0,
        2.5,
        3.75,
    )
    assert times["ready_to_consumed_seconds"] is None
    marks["consumed"] = 12.0
    assert restart.timeline(marks)["ready_to_consumed_seconds"] == 0.5


def test_memory_and_kafka_bytes_targets_read_their_phases(bench: Bench) -> None:
    targets = bench("targets")
    memory = {
        "steps": [
            {"meters": 10_000, "resident_bytes_per_meter": 5200.0},
            {"meters": 100_000, "resident_bytes_per_meter": 2900.0},
        ],
        "serialized_state": {"mean_bytes": 1765.0},
    }
    row = targets.memory_target({"memory": memory})
    assert (row["value"], row["ceiling"], row["met"]) == (2900.0, 3072, True)
    memory["steps"] = memory["steps"][:1]  # only 10k meters measured: said, not judged met
    row = targets.memory_target({"memory": memory})
    assert row["met"] is None and any("not 100,000" in w for w in row["why"])
    parts = {
        "state_record": 900.0,
        "forecast_record": 850.0,
        "latest_forecast_record": 850.0,
        "total": 2600.0,
    }
    row = targets.kafka_bytes_target({"forecast": {"kafka_bytes_per_live_reading": parts}})
    assert row["met"] is False and row["miss"] == "2,600 B per reading (1.27x)"
    assert row["why"] == [
        "a state record 900 B, a forecast 850 B and its latest-forecast changelog record 850 B "
        "(as stored, compressed)"
    ]
    parts["total"] = 1900.0
    row = targets.kafka_bytes_target({"forecast": {"kafka_bytes_per_live_reading": parts}})
    assert row["met"] is True


def test_live_reading_bytes_are_per_write_and_per_forecast(bench: Bench) -> None:
    forecasting = bench("forecasting")
    written = {
        "meter-state-changelog": 9000,
        "forecasts": 6000,
        "meter-latest-forecast-changelog": 6000,
    }
    assert forecasting.live_reading_bytes(written, forecasts=10, state_writes=10) == {
        "state_record": 900.0,
        "forecast_record": 600.0,
        "latest_forecast_record": 600.0,
        "total": 2100.0,
    }
    assert forecasting.live_reading_bytes(written, forecasts=0, state_writes=10) is None


def test_a_measured_backlog_is_scraped_coarsely_until_its_end_is_near(bench: Bench) -> None:
    forecasting = bench("forecasting")
    coarse = forecasting.BACKLOG_POLL_SECONDS
    poll = forecasting.backlog_poll_seconds
    assert poll(0, 48_000, 0.5, 0.1) == 0.1  # nothing taken yet: no rate to go by
    assert poll(8_000, 48_000, 1.0, 0.1) == coarse  # 5 s left at 8,000/s
    assert poll(44_000, 48_000, 5.5, 0.1) == 0.1  # 0.5 s left: the end is near
    assert poll(47_999, 48_000, 6.0, 0.1) == 0.1


def test_http_target_is_half_the_session_at_the_server_batch_with_every_answer_200(
    bench: Bench,
) -> None:
    targets = bench("targets")
    report = {"http": _http()}
    row = targets.http_target(report)
    assert (row["value"], row["ceiling"], row["batch_size"]) == (7560.0, 19116.0, 256)
    assert row["ratio"] == pytest.approx(7560 / 19116, abs=1e-4) and row["met"] is False
    assert row["miss"].startswith("missed by 10.4 points (39.6% of the ceiling")
    why = " ".join(row["why"])
    assert "its event loop's thread 0.597" in why and "other threads 0.627" in why
    assert "the worker spent 16.2 ms of CPU" in why  # 1.224 cores / 75.6 requests/s
    assert "requests of 100 series fill batches of 200" in why
    assert "6,400 series in flight" in why
    assert "against the session at the request size (100): 39.7%" in row["note"]
    report["http"] = _http(series_per_s=9600.0)
    row = targets.http_target(report)
    assert row["met"] is True and row["why"] == [] and row["miss"] is None
    # fast enough, but a refusal is a miss
    report["http"].update(non_200=3, statuses={"200": 753, "429": 3})
    row = targets.http_target(report)
    assert row["met"] is False and row["miss"] == "3 answers other than 200 (429: 3)"
    # another load shape is no evidence either way
    report["http"] = {**_http(series_per_s=9600.0), "concurrency": 16}
    row = targets.http_target(report)
    assert row["met"] is None
    assert row["miss"].startswith("not comparable: 16 requests in flight of 100 series")
    assert targets.http_target({})["miss"] == "phase not run"
    failed = targets.http_target({"http": {"error": "RuntimeError: worker exited"}})
    assert failed["met"] is None and failed["miss"].startswith("phase failed: RuntimeError")


def test_markdown_has_the_http_section_and_target_row(bench: Bench) -> None:
    text = _markdown(bench)
    assert (
        "| `POST /v1/forecast` >= 50% of raw ONNX Runtime throughput at 64 requests in flight of "
        "100 series, every answer 200 (issue 18) | 7,560 series/s | 19,116 series/s (ONNX "
        "session, batch 256) | 39.6% | **missed**: missed by 10.4 points" in text
    )
    section = text.split("## 8. HTTP serving: `POST /v1/forecast` (issue 18)")[1]
    assert "| series answered/s | **7,560** (75.6 requests/s, 756 answered) |" in section
    assert "| latency per request, ms (p50, p99, p99.9, max) | 836.5, **957.1**, 963.5, n/a |" in (
        section
    )
    assert "| answers other than 200 | 0 (by status: 200 756) |" in section
    assert "mean 200.0 series, 37.8/s" in section
    assert "| 200 (the server's mean batch) | 19,456 |" in section
    assert "| 256 (the server's largest batch: the target's ceiling) | 19,116 |" in section
    assert "| 100 (one request) | 19,034 |" in section
    assert "parse the body 3.178 ms, encode the 316 kB answer 1.226 ms" in section
    assert "**39.6%**, **missed**" in section
    assert "| http | 27.2 | [0.7, 0.5, 0.28] |" in text
    for line in text.splitlines():
        if line.startswith("|"):
            assert line.endswith("|"), line

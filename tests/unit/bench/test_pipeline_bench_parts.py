"""The pure parts of bench/pipeline_bench.py: workloads, settings, profile summary, report."""

from __future__ import annotations

import importlib
import sys
from datetime import datetime
from pathlib import Path
from types import ModuleType

import orjson

BENCH = Path(__file__).resolve().parents[3] / "bench"


def bench_module(name: str) -> ModuleType:
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    return importlib.import_module(f"pipelinebench.{name}")


RES_S = 1800
END_MS = 1_795_428_000_000  # a slot end (2026-11-23T10:00:00Z)


def ts_ms(value: bytes) -> int:
    """The reading's ``ts`` (RFC 3339 text or epoch milliseconds) as epoch milliseconds."""
    ts = orjson.loads(value)["ts"]
    if isinstance(ts, int):
        return ts
    return int(datetime.fromisoformat(ts).timestamp() * 1000)


def test_slot_end_before_is_on_the_grid_and_in_the_past() -> None:
    workload = bench_module("workload")
    now = END_MS + 1_234_567  # 20 min 34 s after a slot end
    assert workload.slot_end_before(now, RES_S, 0) == END_MS
    assert workload.slot_end_before(now, RES_S, 2) == END_MS - 2 * RES_S * 1000


def test_slot_major_sends_every_meter_once_per_slot() -> None:
    workload = bench_module("workload")
    messages = workload.slot_major(5, 3, END_MS, seed=1, resolution_seconds=RES_S)
    assert len(messages) == 15
    keys = [key for key, _ in messages]
    assert keys[:5] == keys[5:10] == keys[10:]
    assert len(set(keys[:5])) == 5
    assert [ts_ms(v) for _, v in messages[::5]] == [
        END_MS - 2 * RES_S * 1000,
        END_MS - RES_S * 1000,
        END_MS,
    ]


def test_forecast_workload_orders_history_by_meter_then_rounds_by_slot() -> None:
    workload = bench_module("workload")
    work = workload.forecast_workload(4, 6, 2, END_MS, seed=2, resolution_seconds=RES_S)
    assert len(work.history) == 24
    keys = [key for key, _ in work.history]
    for i in range(4):  # each meter's six slots together, in time order, ending at END_MS
        assert keys[i * 6 : (i + 1) * 6] == [keys[i * 6]] * 6
        stamps = [ts_ms(v) for _, v in work.history[i * 6 : (i + 1) * 6]]
        assert stamps == [END_MS - k * RES_S * 1000 for k in range(5, -1, -1)]
    assert len(set(keys)) == 4
    assert [len(r) for r in work.rounds] == [4, 4]
    for n, messages in enumerate(work.rounds, 1):
        assert {ts_ms(v) for _, v in messages} == {END_MS + n * RES_S * 1000}
        assert {k for k, _ in messages} == set(keys)


def test_phase_settings_give_each_phase_its_own_topics_group_and_dir(tmp_path: Path) -> None:
    worker = bench_module("worker")
    base = {"state_dir": tmp_path, "kafka_bootstrap": "127.0.0.1:49092"}
    one = worker.phase_settings(base, "bench-x-ingest", forecast_every_slots=7)
    two = worker.phase_settings(base, "bench-x-forecast")
    assert one.app_id == "bench-x-ingest"
    assert one.forecast_every_slots == 7
    assert one.state_dir == tmp_path / "bench-x-ingest"
    topics_one = {v for k, v in one.model_dump().items() if k.endswith("_topic")}
    topics_two = {v for k, v in two.model_dump().items() if k.endswith("_topic")}
    assert all(t.startswith("bench-x-ingest-") for t in topics_one)
    assert not topics_one & topics_two
    assert one.web_port != 0


def test_metrics_total_sums_matching_labels() -> None:
    worker = bench_module("worker")
    metrics = worker.Metrics(
        {
            ("f_total", (("fallback", "false"), ("model_name", "lstm"))): 5.0,
            ("f_total", (("fallback", "true"), ("model_name", "seasonal"))): 2.0,
            ("g", ()): 1.0,
        }
    )
    assert metrics.total("f_total") == 7.0
    assert metrics.total("f_total", model_name="lstm") == 5.0
    assert metrics.total("f_total", fallback="true", model_name="lstm") == 0.0
    assert metrics.total("missing") == 0.0


def test_profile_summary_counts_own_inclusive_and_groups(tmp_path: Path) -> None:
    profiling = bench_module("profiling")
    raw = tmp_path / "raw.txt"
    raw.write_text(
        "main (/x/streamer/cli.py:3);ReadingsLoop.process (/x/streamer/agents/a.py:9);"
        "Session.run (/v/site-packages/onnxruntime/s.py:1) 6\n"
        "main (/x/streamer/cli.py:3);EpollSelector.select (selectors.py:4) 3\n"
        "main (/x/streamer/cli.py:3);ReadingsLoop.process (/x/streamer/agents/a.py:9) 1\n"
    )
    summary = profiling.summarise(raw, Path("/x"))
    assert summary["samples"] == 10
    own = {row["function"]: row for row in summary["self"]}
    assert own["Session.run (onnxruntime/s.py)"]["share"] == 0.6
    assert own["ReadingsLoop.process (streamer/agents/a.py)"]["inclusive_share"] == 0.7
    assert summary["groups"]["batch handler (ReadingsLoop.process)"] == 0.7
    assert summary["groups"]["    ONNX Runtime session (Session.run)"] == 0.6
    assert summary["groups"]["event loop waiting (selector)"] == 0.3


def test_issue_14s_latency_step_is_a_quarter_of_the_runs_onnx_ceiling() -> None:
    targets = bench_module("targets")
    assert targets.quarter_rate(20_000.0) == 5_000  # the issue's own example
    assert targets.quarter_rate(22_390.5) == 5_600  # to the hundred
    assert targets.quarter_rate(None) == targets.LATENCY_RATE  # no forecast phase: 5,000
    step = {
        "offered_per_s": 5_600,
        "saturation": {"saturated": False, "reason": ""},
        "latency": {"p50_ms": 120.0, "p99_ms": 240.0, "p999_ms": 260.0, "max_ms": 270.0},
    }
    report = {"latency": {"steps": [step], "quarter_rate": 5_600}}
    row = targets.latency_target(report)
    assert "5,600 readings/s" in row["target"]
    assert "quarter" in row["note"]
    assert row["met"] is True and row["value"] == 240.0


def test_a_missed_latency_step_says_how_near_the_worker_s_capacity_it_ran() -> None:
    targets = bench_module("targets")
    step = {
        "offered_per_s": 5_900,
        "saturation": {"saturated": False, "reason": ""},
        "latency": {"p50_ms": 200.0, "p99_ms": 420.0, "p999_ms": 500.0, "max_ms": 550.0},
    }
    saturated = {
        "offered_per_s": 20_000,
        "saturation": {"saturated": True, "reason": "growing"},
        "worker_consumed_per_s_during_step": 6_756.0,
        "latency": {"p50_ms": 8_000.0, "p99_ms": 16_000.0},
        "latency_covers": "some",
    }
    report = {"latency": {"steps": [step, saturated], "quarter_rate": 5_900}}
    row = targets.latency_target(report)
    assert row["met"] is False
    (capacity,) = [line for line in row["why"] if "capacity" in line]
    assert "6,756 readings/s" in capacity and "87% of it" in capacity
    # no saturated step: nothing to say about the capacity
    lone = targets.latency_target({"latency": {"steps": [step], "quarter_rate": 5_900}})
    assert lone["met"] is False and not [line for line in lone["why"] if "capacity" in line]

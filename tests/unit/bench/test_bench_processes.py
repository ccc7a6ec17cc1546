"""The bench's process helpers: the bare faust app, /proc readings, the GPU probe, the CLI."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

from streamer.app import create_app
from streamer.settings import load_settings

Bench = Callable[[str], ModuleType]


def test_bare_faust_app_has_the_worker_faust_settings(bench: Bench, tmp_path: Path) -> None:
    """The faust ceiling is only a ceiling if faust is configured as in create_app."""
    drain = bench("faust_drain")
    settings = load_settings(
        state_dir=tmp_path,
        kafka_bootstrap="127.0.0.1:1",
        forecaster="seasonal_naive_day",  # no ONNX session needed to compare faust settings
        batch_max_events=3000,
        web_port=7777,
    )
    worker_app, _ = create_app(settings)
    status = drain.DrainStatus(10, tmp_path / "status.json")
    bare_app = drain.build_app(settings, status)
    kwargs = drain.faust_app_kwargs(settings)
    assert bare_app.conf.id == worker_app.conf.id
    assert "producer_linger" in type(bare_app.conf).setting_names()
    # every active faust setting, not only those passed: a new argument in create_app shows up
    differ = {
        name: (getattr(bare_app.conf, name), getattr(worker_app.conf, name))
        for name in type(bare_app.conf).setting_names()
        if name not in {"broker", "broker_credentials", "autodiscover", "reply_to"}
        and getattr(bare_app.conf, name) != getattr(worker_app.conf, name)
    }
    assert differ == {}
    assert set(kwargs) >= {"stream_buffer_maxsize", "broker_commit_every", "producer_linger_ms"}
    assert [str(u) for u in bare_app.conf.broker] == [str(u) for u in worker_app.conf.broker]
    assert bare_app.conf.stream_buffer_maxsize == max(settings.stream_buffer_events, 6000)
    assert bare_app.conf.broker_commit_every == 4 * 3000


def test_drain_status_is_written_at_the_first_event_and_when_done(
    bench: Bench, tmp_path: Path
) -> None:
    drain = bench("faust_drain")
    path = tmp_path / "status.json"
    status = drain.DrainStatus(5, path)
    status.add(2)
    first = json.loads(path.read_text())
    assert first["events"] == 2 and first["done_at"] is None and first["first_event_at"]
    status.add(2)
    assert json.loads(path.read_text())["events"] == 2  # nothing new to say
    status.add(1)
    done = json.loads(path.read_text())
    assert done["events"] == 5 and done["batches"] == 3
    assert done["done_at"] >= done["first_event_at"]


def test_parse_vm_rss(bench: Bench) -> None:
    worker = bench("worker")
    text = "Name:\tpython\nVmPeak:\t  900 kB\nVmRSS:\t  123456 kB\nThreads:\t5\n"
    assert worker.parse_vm_rss(text) == 123456 * 1024
    with pytest.raises(ValueError, match="no VmRSS"):
        worker.parse_vm_rss("Name:\tzombie\n")


def test_this_process_has_rss_and_schedstat(bench: Bench) -> None:
    import os

    worker = bench("worker")
    assert worker.vm_rss_bytes(os.getpid()) > 1_000_000
    assert worker.proc_runqueue_wait_seconds(os.getpid()) >= 0.0


def test_gpu_phase_says_why_it_is_skipped(bench: Bench) -> None:
    gpu = bench("gpu")
    no_driver = {
        "onnxruntime_providers": ["CPUExecutionProvider"],
        "nvidia_driver_loaded": False,
        "nvidia_smi": "not found",
    }
    assert gpu.skip_reason(no_driver).startswith("no GPU on this machine")
    cpu_build = {**no_driver, "nvidia_driver_loaded": True, "nvidia_smi": "GPU 0: H100"}
    assert "no CUDA provider" in gpu.skip_reason(cpu_build)
    ready = {**cpu_build, "onnxruntime_providers": [gpu.CUDA, "CPUExecutionProvider"]}
    assert gpu.skip_reason(ready) is None


def test_cli_keeps_off_other_sessions_ports_and_knows_its_phases(bench: Bench) -> None:
    cli = bench("pipeline_bench")
    args = cli.parse_args(["--quick"])
    assert (args.kafka_port, args.controller_port) == (19592, 19593)
    assert args.latency_rates == "1000,5000,20000"
    assert args.memory_meters == "10000,100000"
    assert args.profile is True
    full = cli.parse_args(["--latency-step-seconds", "5"])
    assert full.latency_step_seconds == 5.0 and full.latency_meters == 4000
    for port in ("19092", "19392", "9092"):
        with pytest.raises(SystemExit):
            cli.parse_args(["--kafka-port", port])
    with pytest.raises(SystemExit):
        cli.parse_args(["--phases", "ingest,warp"])


def test_cli_always_offers_1k_and_has_the_restart_phase(bench: Bench) -> None:
    cli = bench("pipeline_bench")
    args = cli.parse_args(["--quick", "--latency-rates", "5000,20000"])
    assert args.latency_rates == "1000,5000,20000"  # issue 13's latency target is at 1k
    assert cli.PHASES.index("restart") == cli.PHASES.index("memory") + 1
    assert args.restart_readings == 400
    assert args.faust_within_seconds == 0.25  # the bare faust drain's window: the bench's own
    assert not hasattr(args, "batch_within_seconds")


def test_bare_faust_app_takes_the_window_it_is_given(bench: Bench, tmp_path: Path) -> None:
    drain = bench("faust_drain")
    settings = load_settings(
        state_dir=tmp_path, kafka_bootstrap="127.0.0.1:1", forecaster="seasonal_naive_day"
    )
    status = drain.DrainStatus(10, tmp_path / "status.json")
    assert drain.WITHIN_SECONDS == bench("faust_ceiling").WITHIN_SECONDS == 0.25
    app = drain.build_app(settings, status, within=0.5)
    assert [agent.name for agent in app.agents.values()] == ["bench.drain"]

"""The streamer command line as a user runs it: real processes, real Kafka."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from streamer.settings import Settings
from tests.support.kafka import TestKafka
from tests.support.processes import free_port
from tests.support.topics import read_topic

pytestmark = pytest.mark.e2e


def run_cli(
    args: list[str], settings: Settings | None = None, timeout: float = 180, **env: str
) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("STREAMER_")}
    if settings is not None:
        environ.update(settings.to_env())
    environ.update(env)
    return subprocess.run(
        [sys.executable, "-m", "streamer", *args],
        capture_output=True,
        text=True,
        env=environ,
        timeout=timeout,
        check=False,
    )


def test_simulate_sends_what_it_says(kafka: TestKafka) -> None:
    settings = kafka.settings()
    proc = run_cli(
        [
            "simulate",
            "--meters",
            "20",
            "--backfill-days",
            "1",
            "--speedup",
            "200000",
            "--duration-seconds",
            "4",
            "--seed",
            "5",
        ],
        settings,
    )
    assert proc.returncode == 0, proc.stderr
    assert "simulated" in proc.stdout  # progress lines
    sent = int(re.search(r"sent (\d+) messages for (\d+) slots", proc.stdout).group(1))  # type: ignore[union-attr]
    assert sent >= 20 * 40
    records = asyncio.run(
        read_topic(
            settings.kafka_bootstrap,
            settings.readings_topic,
            until=lambda r: len(r) >= sent,
            timeout_seconds=30,
        )
    )
    assert len(records) == sent


def test_simulate_writes_history_without_kafka(tmp_path: Path) -> None:
    out = tmp_path / "history.parquet"
    proc = run_cli(
        [
            "simulate",
            "--meters",
            "5",
            "--history-out",
            str(out),
            "--history-days",
            "2",
            "--no-send",
        ],
        STREAMER_KAFKA_BOOTSTRAP="127.0.0.1:1",  # proves nothing is sent
    )
    assert proc.returncode == 0, proc.stderr
    frame = pd.read_parquet(out)
    assert list(frame.columns) == ["meter_id", "ts", "kwh"]
    assert len(frame) == 5 * 96
    assert str(frame["ts"].dt.tz) == "UTC"


def test_bad_setting_stops_with_the_variable_named() -> None:
    proc = run_cli(["settings"], STREAMER_RESOLUTION_SECONDS="1000")
    assert proc.returncode == 2
    assert "STREAMER_RESOLUTION_SECONDS" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_settings_lists_every_variable() -> None:
    proc = run_cli(["settings"])
    assert proc.returncode == 0
    for name in Settings.model_fields:
        assert f"STREAMER_{name.upper()}" in proc.stdout


def test_kafka_status_and_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        env = {
            "STREAMER_STATE_DIR": str(tmp_path),
            "STREAMER_KAFKA_BOOTSTRAP": f"127.0.0.1:{port}",
            "STREAMER_KAFKA_CONTROLLER_PORT": str(free_port()),
            "STREAMER_KAFKA_LIBS_DIR": str(Path(".streamer/kafka-libs").resolve()),
        }
        status = run_cli(["kafka", "status"], **env)
        assert status.returncode == 1 and "not running" in status.stdout
        start = run_cli(["kafka", "start"], **env)
    assert start.returncode == 2
    assert f"port {port}" in start.stderr and "in use" in start.stderr
    assert "Traceback" not in start.stderr


def test_worker_refuses_a_busy_web_port(kafka: TestKafka) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        settings = kafka.settings(web_port=blocker.getsockname()[1])
        proc = run_cli(["worker"], settings, timeout=60)
    assert proc.returncode == 2
    assert "STREAMER_WEB_PORT" in proc.stderr


def test_demo_shows_forecasts_flowing(kafka: TestKafka) -> None:
    settings = kafka.settings(web_port=free_port())
    proc = run_cli(["demo", "--meters", "100", "--duration-seconds", "75"], settings, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    totals = [
        int(m.replace(",", ""))
        for m in re.findall(r"forecasts +\d+/s \(total ([\d,]+)\)", proc.stdout)
    ]
    assert totals and totals[-1] > 0, proc.stdout[-3000:]
    assert "using the Kafka already at" in proc.stdout
    assert "dead letters" in proc.stdout

"""The streamer command line as a user runs it: real processes, real Kafka."""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import time
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


def test_a_worker_bound_beyond_loopback_without_api_keys_refuses_to_start(tmp_path: Path) -> None:
    proc = run_cli(
        ["worker", "-l", "info"],
        STREAMER_STATE_DIR=str(tmp_path),
        STREAMER_WEB_HOST="0.0.0.0",
        STREAMER_KAFKA_BOOTSTRAP="127.0.0.1:1",  # refused before any connection
    )
    assert proc.returncode == 2
    assert "STREAMER_WEB_HOST=0.0.0.0" in proc.stderr and "STREAMER_API_KEYS" in proc.stderr
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


def test_replay_sends_a_history_file_in_time_order(kafka: TestKafka, tmp_path: Path) -> None:
    history = tmp_path / "history.csv"
    written = run_cli(
        [
            *("simulate", "--meters", "4", "--history-days", "1", "--no-send"),
            *("--history-out", str(history)),
        ],
        STREAMER_KAFKA_BOOTSTRAP="127.0.0.1:1",
    )
    assert written.returncode == 0, written.stderr
    settings = kafka.settings()
    # a day at 86,400x: about a second; three meters, chosen through the flag's variable
    proc = run_cli(
        ["replay", "--history", str(history), "--speedup", "86400"],
        settings,
        STREAMER_REPLAY_METERS="3",
    )
    assert proc.returncode == 0, proc.stderr
    assert "Replaying 144 readings of 3 meters" in proc.stdout
    assert "replayed 144 of 144 readings of 3 meters" in proc.stdout
    seconds = float(re.search(r"in ([\d.]+) s \(", proc.stdout).group(1))  # type: ignore[union-attr]
    assert seconds >= 0.95, proc.stdout  # 47 half-hour steps at 86,400x take 0.98 s
    records = asyncio.run(
        read_topic(
            settings.kafka_bootstrap,
            settings.readings_topic,
            until=lambda r: len(r) >= 144,
            timeout_seconds=30,
        )
    )
    assert len(records) == 144
    expected = pd.read_csv(history)
    expected = expected[expected["meter_id"].isin(["m-000000", "m-000001", "m-000002"])]
    by_meter: dict[str, list[tuple[str, float]]] = {}
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        value = json.loads(record.value or b"")
        assert record.key == value["meter_id"].encode()
        assert value["meter_type"] in ("consumption", "net")
        by_meter.setdefault(value["meter_id"], []).append((value["ts"], value["kwh"]))
    assert sorted(by_meter) == ["m-000000", "m-000001", "m-000002"]
    for meter, sent in by_meter.items():
        rows = expected[expected["meter_id"] == meter]
        assert [pd.Timestamp(ts) for ts, _ in sent] == [pd.Timestamp(t) for t in rows["ts"]]
        assert [kwh for _, kwh in sent] == pytest.approx(rows["kwh"].tolist())


def test_replay_names_the_columns_it_needs(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("id,time,energy\nm-1,2026-01-01T00:30:00Z,0.5\n")
    proc = run_cli(["replay", "--history", str(bad)], STREAMER_KAFKA_BOOTSTRAP="127.0.0.1:1")
    assert proc.returncode == 2
    assert "meter_id" in proc.stderr and "ts" in proc.stderr and "kwh" in proc.stderr
    missing = run_cli(["replay", "--history", str(tmp_path / "absent.parquet")])
    assert missing.returncode == 2 and "no such history file" in missing.stderr
    assert "Traceback" not in proc.stderr + missing.stderr


def test_demo_keeps_forecasts_flowing_and_stops_by_itself(kafka: TestKafka) -> None:
    settings = kafka.settings(web_port=free_port())
    duration = 75
    started = time.monotonic()
    proc = run_cli(
        ["demo", "--meters", "100", "--duration-seconds", str(duration)], settings, timeout=240
    )
    took = time.monotonic() - started
    tail = proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.returncode == 0, tail
    assert "[demo] done" in proc.stdout and "exited with code" not in proc.stderr, tail
    lines = [
        (float(m.group(1)), float(m.group(2)), int(m.group(3).replace(",", "")))
        for m in re.finditer(
            r"\[ *(\d+)s\] readings .*\| forecasts +(\d+)/s \(total ([\d,]+)\)", proc.stdout
        )
    ]
    assert lines and lines[-1][2] > 0, tail
    # it stops at its duration (not before, not long after: set-up and shutdown aside)
    assert duration <= lines[-1][0] < duration + 5, tail
    assert took < duration + 90, tail
    # forecasts keep arriving in the last third of the run (the simulator never goes live)
    last_third = [line for line in lines if line[0] >= duration * 2 / 3]
    assert len(last_third) >= 8, tail
    flowing = [rate for _at, rate, _total in last_third if rate > 0]
    assert len(flowing) >= 0.75 * len(last_third), tail
    assert last_third[-1][2] - last_third[0][2] >= 1000, tail
    assert "using the Kafka already at" in proc.stdout
    assert "dead letters" in proc.stdout

"""``streamer simulate --groups-out`` and ``streamer backtest --groups`` as a user runs them
(no broker: ``--no-send``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from streamer.groups.membership import members_of, read_membership_csv
from tests.e2e.test_cli import run_cli

pytestmark = pytest.mark.e2e


def test_simulated_network_is_backtested_per_kind(tmp_path: Path) -> None:
    history, groups, report = (
        tmp_path / "fleet.parquet",
        tmp_path / "groups.csv",
        tmp_path / "r.json",
    )
    alone = run_cli(
        [
            "simulate",
            "--meters",
            "30",
            "--groups-out",
            str(groups),
            "--feeders",
            "3",
            "--substations",
            "1",
            "--no-send",
        ]
    )
    assert alone.returncode == 0, alone.stderr
    assert "Wrote 30 meters on 3 feeders in 1 substations" in alone.stdout
    first = groups.read_bytes()
    proc = run_cli(
        [
            "simulate",
            "--meters",
            "30",
            "--history-out",
            str(history),
            "--history-days",
            "20",
            "--history-end",
            "2026-10-11T00:00:00Z",
            "--groups-out",
            str(groups),
            "--feeders",
            "3",
            "--substations",
            "1",
            "--no-send",
        ]
    )
    assert proc.returncode == 0, proc.stderr
    assert groups.read_bytes() == first  # the same network with or without a history
    kinds = sorted(ref.kind for ref in members_of(read_membership_csv(groups)))
    assert kinds == ["feeder", "feeder", "feeder", "substation"]
    proc = run_cli(
        [
            "backtest",
            "--history",
            str(history),
            "--groups",
            str(groups),
            "--models",
            "seasonal_naive_week",
            "--holdout-days",
            "9",
            "--day-ahead",
            "--json-out",
            str(report),
        ]
    )
    assert proc.returncode == 0, proc.stderr
    assert "### Groups" in proc.stdout and "#### feeder" in proc.stdout
    assert "#### substation" in proc.stdout
    body = json.loads(report.read_text())
    assert [r["kind"] for r in body["groups"]["results"]] == ["feeder", "substation"]
    bad = run_cli(["backtest", "--history", str(history), "--groups", str(history)])
    assert bad.returncode != 0

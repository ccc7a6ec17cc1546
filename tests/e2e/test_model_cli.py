"""``streamer train`` and ``streamer backtest`` as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from streamer.modelrepo.card import load_card
from tests.e2e.test_cli import run_cli

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("history") / "history.csv.gz"
    proc = run_cli(
        [
            "simulate",
            "--meters",
            "6",
            "--history-out",
            str(out),
            "--history-days",
            "24",
            "--no-send",
        ]
    )
    assert proc.returncode == 0, proc.stderr
    return out


def test_train_writes_a_servable_version(history: Path, tmp_path: Path) -> None:
    out = tmp_path / "models" / "lstm" / "7"
    proc = run_cli(
        [
            "train",
            "--history",
            str(history),
            "--out",
            str(out),
            "--epochs",
            "1",
            "--samples-per-epoch",
            "256",
            "--hidden-size",
            "8",
            "--validation-days",
            "3",
        ],
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    card = load_card(out / "card.json")
    assert card.version == "7"
    assert (out.parent / "config.pbtxt").exists()
    # the new version is servable by name: backtest it from that repository
    report = tmp_path / "report.json"
    proc = run_cli(
        [
            "backtest",
            "--history",
            str(history),
            "--models",
            "lstm:7,seasonal_naive_week",
            "--holdout-days",
            "2",
            "--json-out",
            str(report),
        ],
        STREAMER_MODELS_DIR=str(tmp_path / "models"),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "| lstm |" in proc.stdout
    assert "backtest [" in proc.stderr  # the progress bar
    assert {m["name"] for m in json.loads(report.read_text())["models"]} >= {"lstm"}


def test_backtest_names_missing_columns(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("meter,time,energy\nm-1,2026-01-01T00:00:00Z,1.0\n")
    proc = run_cli(["backtest", "--history", str(bad), "--models", "seasonal_naive"])
    assert proc.returncode != 0
    assert "meter_id" in proc.stderr and "available columns" in proc.stderr
    assert "Traceback" not in proc.stderr

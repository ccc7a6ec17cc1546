"""One tiny training run shared by the training tests (a few seconds on a CPU)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from streamer.simulate.fleet import FleetModel
from streamer.simulate.history import generate_history, write_history
from streamer.train import TrainConfig, TrainReport, train_main

START_MS = 1_764_547_200_000  # 2025-12-01T00:00:00Z
DAY_MS = 86_400_000

TINY = TrainConfig(
    resolution_seconds=3600,
    lookback_slots=48,
    horizon_slots=12,
    hidden_size=8,
    patch_slots=4,
    epochs=2,
    batch_size=32,
    samples_per_epoch=256,
    max_validation_windows=128,
    validation_days=1.0,
    holdout_days=1.0,
    reference_windows=64,
    progress=False,
    seed=3,
)


def tiny_history(meters: int = 4, days: int = 7) -> pd.DataFrame:
    fleet = FleetModel(meters, seed=11, resolution_seconds=3600)
    return generate_history(fleet, START_MS, START_MS + days * DAY_MS)


@pytest.fixture(scope="session")
def history_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("history") / "history.csv"
    return write_history(path, tiny_history())


@pytest.fixture(scope="session")
def trained(history_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrainReport]:
    out = tmp_path_factory.mktemp("models") / "lstm" / "1"
    yield train_main(history_file, out, config=TINY)

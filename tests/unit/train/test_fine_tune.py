"""Fine-tuning (``--init-from``): a version starts from its base's weights and architecture,
records where it came from, and a base without weights is refused with the way out."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from streamer.modelrepo import load_card
from streamer.modelrepo.layout import WEIGHTS_FILE, version_dir_of
from streamer.train import TrainConfigError, TrainReport, train_main
from streamer.train.checkpoint import load_weights
from streamer.train.main import build_model
from tests.unit.train.conftest import TINY


def test_a_trained_version_keeps_its_weights_and_says_its_clock(trained: TrainReport) -> None:
    card = load_card(trained.card_path)
    assert card.weights_file == WEIGHTS_FILE and card.calendar_time == "local"
    model = build_model(TINY)
    load_weights(model, trained.out_dir / WEIGHTS_FILE)
    inputs = torch.zeros(3, TINY.lookback_slots, len(TINY.features))
    with torch.no_grad():
        out = model.eval()(inputs).numpy()
    assert out.shape == (3, TINY.horizon_slots, 3) and np.isfinite(out).all()


def test_fine_tuning_starts_from_the_base_and_takes_its_architecture(
    trained: TrainReport, history_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "lstm" / "2"
    # asked for other sizes: the base's architecture wins, or its weights could not load
    config = dataclasses.replace(TINY, hidden_size=16, lookback_slots=96, epochs=1, seed=5)
    report = train_main(history_file, out, config=config, init_from=trained.out_dir)
    card = load_card(report.card_path)
    assert card.lookback_slots == TINY.lookback_slots
    assert card.training is not None
    assert card.training.hyperparameters["hidden_size"] == TINY.hidden_size
    assert card.training.hyperparameters["init_from"] == str(trained.out_dir)
    # it started where the base ended: its first validation loss is near the base's best,
    # far below that of the same epoch from scratch
    scratch = train_main(history_file, tmp_path / "scratch" / "1", config=TINY, epochs=1)
    first = report.history[0].validation_pinball
    assert first < scratch.history[0].validation_pinball
    assert first <= trained.best_validation_pinball * 1.1


def test_a_base_without_weights_or_card_is_refused(trained: TrainReport, tmp_path: Path) -> None:
    bare = tmp_path / "models" / "lstm" / "7"
    shutil.copytree(trained.out_dir, bare)
    (bare / WEIGHTS_FILE).unlink()
    with pytest.raises(TrainConfigError, match=r"has no weights\.npz"):
        train_main(Path("unused.csv"), tmp_path / "lstm" / "8", config=TINY, init_from=bare)
    with pytest.raises(TrainConfigError, match=r"no card\.json"):
        train_main(Path("unused.csv"), tmp_path / "lstm" / "9", config=TINY, init_from=tmp_path)
    assert version_dir_of(tmp_path / "models", "lstm:7") == bare
    assert version_dir_of(tmp_path / "models", str(bare)) == bare

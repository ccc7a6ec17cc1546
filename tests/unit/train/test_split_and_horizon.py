"""The per-meter validation split, a model at another lookback/horizon, the stop flag."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from streamer.evaluate.grid import build_grid
from streamer.inference import OnnxForecaster, OnnxModel
from streamer.modelrepo import load_card
from streamer.simulate.fleet import FleetModel
from streamer.simulate.history import generate_history, write_history
from streamer.train import TrainConfig, TrainingStopped, TrainSummary, train_main
from streamer.train.windows import WindowSampler
from tests.unit.train.conftest import DAY_MS, START_MS, TINY, tiny_history


def test_each_meter_validates_on_the_end_of_its_own_history() -> None:
    frame = tiny_history(meters=2, days=8)
    ids = sorted(frame["meter_id"].unique())
    # the second meter's history ends two days before the first's
    cut = pd.Timestamp(START_MS + 6 * DAY_MS, unit="ms", tz="UTC")
    early = (frame["meter_id"] == ids[1]) & (frame["ts"] > cut)
    frame = frame[~early]
    grid = build_grid(frame, 3600)
    config = dataclasses.replace(TINY, holdout_days=0.0, max_validation_windows=10_000)
    sampler = WindowSampler(grid, config)
    ends = sampler.usable_ends
    assert ends[0] == grid.slots and ends[1] == grid.slots - 48
    meters, origins = sampler._validation
    horizon, val_slots = config.horizon_slots, config.validation_slots
    for meter in (0, 1):
        own = origins[meters == meter]
        assert own.size == val_slots - horizon + 1
        assert own.min() == ends[meter] - val_slots and own.max() == ends[meter] - horizon
    # training targets end before each meter's own validation period
    assert (sampler.train_hi + horizon <= sampler.validation_starts).all()
    assert sampler.train_hi[1] == sampler.train_hi[0] - 48
    m, o = sampler.sample_train(np.random.default_rng(0), 2048)
    assert (o >= sampler.train_lo[m]).all() and (o <= sampler.train_hi[m]).all()
    assert set(m.tolist()) == {0, 1}
    assert sampler.train_windows == int((sampler.train_hi - sampler.train_lo + 1).sum())


def test_a_day_ahead_model_at_15_minutes(tmp_path: Path) -> None:
    fleet = FleetModel(3, seed=5, resolution_seconds=900)
    history = write_history(
        tmp_path / "h.csv", generate_history(fleet, START_MS, START_MS + 5 * DAY_MS)
    )
    config = TrainConfig(
        resolution_seconds=900,
        lookback_slots=96,
        horizon_slots=96,
        hidden_size=8,
        epochs=1,
        batch_size=32,
        samples_per_epoch=64,
        max_validation_windows=64,
        validation_days=1.5,
        reference_windows=32,
        parity_batch_sizes=(1, 7),
        progress=False,
    )
    summaries: list[TrainSummary] = []
    report = train_main(
        history, tmp_path / "lstm" / "1", config=config, on_summary=summaries.append
    )
    card = load_card(report.card_path)
    assert (card.resolution_seconds, card.lookback_slots, card.horizon_slots) == (900, 96, 96)
    assert card.outputs[0].shape == (-1, 96, 3)
    assert summaries[0].horizon_slots == 96 and summaries[0].meters == 3
    assert summaries[0].train_period[1] < summaries[0].validation_period[0]
    assert "horizon 96 slots" in summaries[0].describe()
    forecaster = OnnxForecaster(OnnxModel(report.out_dir, providers=["cpu"]))
    grid = build_grid(generate_history(fleet, START_MS, START_MS + 2 * DAY_MS), 900)
    end_ms = np.full(3, grid.end_ms(grid.slots - 1), dtype=np.int64)
    batch = forecaster.forecast(grid.kwh[:, -96:], end_ms, 900)
    assert batch.quantiles_kwh.shape == (3, 96, 3) and batch.valid.all()


def test_a_stop_flag_ends_training_with_or_without_the_best_epoch(
    history_file: Path, tmp_path: Path
) -> None:
    stop = threading.Event()
    config = dataclasses.replace(TINY, epochs=50, patience=50)
    with pytest.raises(TrainingStopped, match="after 1 epochs; no model written"):
        train_main(
            history_file,
            tmp_path / "lstm" / "1",
            config=config,
            stop=stop,
            on_epoch=lambda _: stop.set(),
        )
    assert not (tmp_path / "lstm" / "1" / "model.onnx").exists()
    stop.clear()
    report = train_main(
        history_file,
        tmp_path / "lstm" / "2",
        config=config,
        stop=stop,
        keep_best_on_stop=True,
        on_epoch=lambda stats: stop.set() if stats.epoch == 2 else None,
    )
    assert report.stopped and report.epochs_run == 2 and report.best_epoch >= 1
    assert load_card(report.card_path).training.epochs_run == 2

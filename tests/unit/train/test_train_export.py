"""Training a few epochs on a small generated history, export, parity, and serving the result."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from streamer.evaluate.grid import build_grid
from streamer.evaluate.history import load_history
from streamer.forecast.protocol import Forecaster
from streamer.inference import OnnxForecaster, OnnxModel, build_inputs, unscale
from streamer.modelrepo import load_card
from streamer.train import ExportParityError, TrainConfigError, TrainReport, train_main
from streamer.train.export import check_parity, onnx_outputs
from streamer.train.main import build_model
from streamer.train.windows import WindowSampler
from tests.unit.train.conftest import TINY


def test_training_writes_model_card_and_triton_config(trained: TrainReport) -> None:
    assert trained.model_path.is_file() and trained.card_path.is_file()
    assert trained.triton_config_path == trained.out_dir.parent / "config.pbtxt"
    assert trained.epochs_run == 2 and trained.best_epoch in (1, 2)
    assert [s.epoch for s in trained.history] == [1, 2]
    assert np.isfinite(trained.best_validation_pinball)
    card = load_card(trained.card_path)  # verifies the SHA-256 of model.onnx
    assert (card.name, card.version) == ("lstm", "1")
    assert card.input.shape == (-1, 48, len(TINY.features))
    assert card.output.shape == (-1, 12, 3)
    assert card.training_data is not None and card.training_data.meters == 4
    assert card.training is not None and card.training.epochs_run == 2
    assert [r.feature for r in card.reference] == [*TINY.features, "window_scale_kwh"]
    assert trained.model_path.stat().st_size < 5 * 1024 * 1024


def test_parity_at_three_batch_sizes(trained: TrainReport) -> None:
    assert sorted(trained.parity_max_abs_diff) == [1, 7, 256]
    assert max(trained.parity_max_abs_diff.values()) <= 1e-4


def test_parity_check_catches_a_different_model(trained: TrainReport) -> None:
    torch.manual_seed(99)
    other = build_model(TINY)
    inputs = np.random.default_rng(0).normal(size=(5, 48, len(TINY.features))).astype(np.float32)
    with pytest.raises(ExportParityError, match="differ by up to"):
        check_parity(other, trained.model_path, inputs, batch_sizes=(1, 7))


def test_exported_model_has_a_dynamic_batch_axis(trained: TrainReport) -> None:
    for rows in (1, 3, 300):
        out = onnx_outputs(trained.model_path, np.zeros((rows, 48, 6), dtype=np.float32))
        assert out.shape == (rows, 12, 3)
        assert (np.diff(out, axis=-1) >= 0).all()


def test_served_features_and_outputs_equal_the_training_path(
    trained: TrainReport, history_file: Path
) -> None:
    grid = build_grid(load_history(history_file), 3600)
    sampler = WindowSampler(grid, TINY)
    meters = np.array([0, 1, 2, 3, 0], dtype=np.int64)
    origins = np.array([60, 70, 80, 90, 100], dtype=np.int64)
    train_batch = sampler.batch(meters, origins)
    history, actual, end_ms = sampler.raw(meters, origins)
    model = OnnxModel(trained.out_dir, providers=["cpu"])
    served = build_inputs(history, end_ms, model.feature_spec)
    np.testing.assert_array_equal(served.values, train_batch.inputs)
    np.testing.assert_array_equal(served.scale, train_batch.scale)
    np.testing.assert_allclose(train_batch.targets * served.scale[:, None], actual, rtol=1e-6)

    forecaster = OnnxForecaster(model)
    assert isinstance(forecaster, Forecaster)
    batch = forecaster.forecast(history, end_ms, 3600)
    expected = unscale(onnx_outputs(trained.model_path, train_batch.inputs), train_batch.scale)
    np.testing.assert_allclose(batch.quantiles_kwh, expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(batch.point_kwh, batch.quantiles_kwh[:, :, 1])
    assert batch.valid.all()


def test_time_split_and_window_shapes(history_file: Path) -> None:
    grid = build_grid(load_history(history_file), 3600)
    sampler = WindowSampler(grid, TINY)
    # every meter of this fleet ends on the same slot, so all share one split
    lo, hi = int(sampler.train_lo[0]), int(sampler.train_hi[0])
    assert (sampler.train_lo == lo).all() and (sampler.train_hi == hi).all()
    start = int(sampler.validation_starts[0])
    assert lo == 48 and hi + 12 <= start  # train targets end before val
    assert start == grid.slots - 24 - 24
    vlo, vhi = int(sampler.validation_lo[0]), int(sampler.validation_hi[0])
    assert vlo == start and vhi + 12 == grid.slots - 24  # holdout unseen
    assert sampler.train_windows == 4 * (hi - lo + 1)
    rng = np.random.default_rng(0)
    m, o = sampler.sample_train(rng, 64)
    assert ((o >= lo) & (o <= hi)).all() and ((m >= 0) & (m < 4)).all()
    batch = sampler.batch(m, o, np.random.default_rng(1))
    assert batch.inputs.shape == (64, 48, 6) and batch.targets.shape == (64, 12)
    same = sampler.sample_train(np.random.default_rng(0), 64)
    np.testing.assert_array_equal(same[0], m)


def test_too_short_history_and_bad_out_dir(history_file: Path, tmp_path: Path) -> None:
    base = tmp_path
    with pytest.raises(TrainConfigError, match="too short"):
        train_main(history_file, base / "lstm" / "1", config=TINY, validation_days=5.0)
    with pytest.raises(TrainConfigError, match="positive integer version"):
        train_main(history_file, base / "lstm" / "v1", config=TINY)
    with pytest.raises(TrainConfigError, match="TrainConfig fields are"):
        train_main(history_file, base / "lstm" / "1", config=TINY, epochz=3)
    with pytest.raises(TrainConfigError, match="multiple of patch_slots"):
        TINY.__class__(lookback_slots=50, patch_slots=4)

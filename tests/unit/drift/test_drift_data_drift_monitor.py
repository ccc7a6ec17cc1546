"""DataDriftMonitor and its UniformReservoir."""

from __future__ import annotations

import math

import numpy as np
import pytest

from streamer.drift import (
    DataDriftMonitor,
    DriftConfigError,
    DriftInputError,
    ReferenceHistogram,
    UniformReservoir,
)

FEATURES = ("load_scaled", "is_missing", "tod_sin")


def _inputs(
    rng: np.random.Generator, rows: int, *, load_scale: float = 0.5, missing: float = 0.05
) -> np.ndarray:
    load = rng.gamma(2.0, load_scale, (rows, 336))
    miss = (rng.random((rows, 336)) < missing).astype(np.float64)
    tod = np.sin(2 * np.pi * rng.random((rows, 336)))
    return np.stack([load, miss, tod], axis=-1).astype(np.float32)


@pytest.fixture(scope="module")
def references() -> dict[str, ReferenceHistogram]:
    rng = np.random.default_rng(0)
    train = _inputs(rng, 400).reshape(-1, 3)
    return {
        "load_scaled": ReferenceHistogram.from_sample(train[:, 0], bins=20),
        "is_missing": ReferenceHistogram.from_sample(train[:, 1], bins=20),
    }


def test_stable_inputs_do_not_drift(references: dict[str, ReferenceHistogram]) -> None:
    monitor = DataDriftMonitor(FEATURES, references)
    rng = np.random.default_rng(1)
    for _ in range(10):
        assert monitor.update(_inputs(rng, 200)) is monitor
    report = monitor.report()
    assert report.rows_seen == 10 * 200 * 336
    assert [f.feature for f in report.features] == ["load_scaled", "is_missing"]
    load, missing = report.features
    assert load.sample_size == 4096
    assert load.psi < 0.02
    assert load.ks < 0.06
    assert not load.drifted
    assert missing.psi < 0.02
    assert math.isnan(missing.ks)  # 2 bins: too coarse for a CDF comparison
    assert report.drifted_features == ()


def test_shifted_inputs_drift(references: dict[str, ReferenceHistogram]) -> None:
    monitor = DataDriftMonitor(FEATURES, references)
    rng = np.random.default_rng(2)
    for _ in range(5):
        monitor.update(_inputs(rng, 200, load_scale=0.75, missing=0.2))
    report = monitor.report()
    load, missing = report.features
    assert load.psi > 0.2
    assert load.ks > 0.1
    assert load.ks_pvalue < 1e-6
    assert missing.psi > 0.2
    assert report.drifted_features == ("load_scaled", "is_missing")
    assert report.max_psi == max(load.psi, missing.psi)


def test_report_resets_the_interval(references: dict[str, ReferenceHistogram]) -> None:
    monitor = DataDriftMonitor(FEATURES, references)
    rng = np.random.default_rng(3)
    monitor.update(_inputs(rng, 10, load_scale=2.0))
    assert monitor.report(reset=False).rows_seen == 3360
    assert monitor.report().rows_seen == 3360
    empty = monitor.report()
    assert empty.rows_seen == 0
    assert all(f.sample_size == 0 and math.isnan(f.psi) and not f.drifted for f in empty.features)
    assert math.isnan(empty.max_psi)


def test_metrics_are_flat_and_json_safe(references: dict[str, ReferenceHistogram]) -> None:
    monitor = DataDriftMonitor(FEATURES, references)
    monitor.update(_inputs(np.random.default_rng(4), 5))
    metrics = monitor.report().metrics()
    assert set(metrics) == {
        "psi.load_scaled",
        "ks.load_scaled",
        "psi.is_missing",
        "ks.is_missing",
        "rows_seen",
    }
    assert metrics["ks.is_missing"] is None
    assert metrics["rows_seen"] == 5 * 336.0


def test_same_seed_same_report(references: dict[str, ReferenceHistogram]) -> None:
    data = _inputs(np.random.default_rng(5), 50)
    a = DataDriftMonitor(FEATURES, references, seed=3).update(data).report()
    b = DataDriftMonitor(FEATURES, references, seed=3).update(data).report()
    assert a == b


def test_non_finite_inputs_are_ignored(references: dict[str, ReferenceHistogram]) -> None:
    data = _inputs(np.random.default_rng(6), 4)
    data[0, :, 0] = np.nan
    report = DataDriftMonitor(FEATURES, references).update(data).report()
    assert report.features[0].sample_size == pytest.approx(0.75 * 4096, abs=150)
    assert report.features[1].sample_size == 4096


def test_wrong_inputs_are_rejected(references: dict[str, ReferenceHistogram]) -> None:
    monitor = DataDriftMonitor(FEATURES, references)
    with pytest.raises(DriftInputError, match="3 features"):
        monitor.update(np.zeros((4, 2)))
    with pytest.raises(DriftConfigError, match="no reference"):
        DataDriftMonitor(("a", "b"), references)
    with pytest.raises(DriftConfigError, match="duplicate"):
        DataDriftMonitor(("load_scaled", "load_scaled"), references)
    with pytest.raises(DriftConfigError, match="threshold"):
        DataDriftMonitor(FEATURES, references, psi_threshold=0.0)


# ----------------------------------------------------------------------------- reservoir


def test_reservoir_has_fixed_size() -> None:
    reservoir = UniformReservoir(100, 2, seed=0)
    assert reservoir.sample().shape == (0, 2)
    reservoir.add(np.ones((30, 2)))
    assert reservoir.sample().shape == (100, 2)
    assert reservoir.effective_size == 30
    reservoir.add(np.ones((500, 2)))
    assert reservoir.sample().shape == (100, 2)
    assert reservoir.rows_seen == 530
    assert reservoir.effective_size == 100
    assert not reservoir.sample().flags.writeable
    reservoir.reset()
    assert reservoir.sample().shape == (0, 2)
    assert reservoir.rows_seen == 0


def test_reservoir_is_uniform_over_batches_of_any_size() -> None:
    # Batch b holds 1000 * (b + 1) rows of value b: a uniform sample over rows has the mean
    # sum(b (b + 1)) / sum(b + 1) = 6.0 for b = 0..9.
    reservoir = UniformReservoir(4000, 1, seed=1)
    for batch in range(10):
        reservoir.add(np.full((1000 * (batch + 1), 1), float(batch)))
    assert float(reservoir.sample().mean()) == pytest.approx(6.0, abs=0.1)
    # Each batch's share of the sample follows its size.
    shares = np.bincount(reservoir.sample()[:, 0].astype(int), minlength=10) / 4000
    assert shares == pytest.approx(np.arange(1, 11) / 55, abs=0.02)


def test_reservoir_copies_only_the_chosen_columns() -> None:
    rows = np.arange(12.0).reshape(4, 3)
    reservoir = UniformReservoir(8, 2, seed=3)
    reservoir.add(rows, np.array([2, 0]))
    sample = reservoir.sample()
    assert set(map(tuple, sample.tolist())) <= {(2.0, 0.0), (5.0, 3.0), (8.0, 6.0), (11.0, 9.0)}


def test_reservoir_is_deterministic() -> None:
    rows = np.random.default_rng(4).random((1000, 1))
    a = UniformReservoir(50, 1, seed=9).add(rows).add(rows[:10]).sample()
    b = UniformReservoir(50, 1, seed=9).add(rows).add(rows[:10]).sample()
    assert np.array_equal(a, b)


def test_reservoir_rejects_bad_shapes_and_parameters() -> None:
    with pytest.raises(DriftInputError, match="columns"):
        UniformReservoir(10, 2).add(np.zeros((3, 3)))
    with pytest.raises(DriftInputError, match="columns"):
        UniformReservoir(10, 2).add(np.zeros(3))
    with pytest.raises(DriftConfigError):
        UniformReservoir(0, 2)

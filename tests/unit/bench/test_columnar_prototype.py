"""bench/columnar_prototype.py does the worker's arithmetic on its common case, so that its
timing is of the same work: the same ledger matches, the same fleet prior and calibration (to the
bit), the same accuracy and drift statistics."""

from __future__ import annotations

import math

import numpy as np
import pytest

from streamer.accuracy.interval_calibration import IntervalCalibrator
from streamer.pipeline.config import PipelineConfig
from streamer.pipeline.meter_record import MeterRecord
from streamer.pipeline.scoring import score_actual
from streamer.settings import load_settings
from tests.unit.bench.conftest import load_bench_module

RES_MS = 1_800_000


@pytest.mark.parametrize("seed", [1, 2])
def test_prototype_scores_as_the_worker_does(seed: int) -> None:
    proto = load_bench_module("columnar_prototype")
    config = PipelineConfig.from_settings(load_settings()).record
    assert config.ledger.horizons == proto.TRACKED  # the prototype's assumptions hold
    assert config.calibration.step == proto.STEP
    rng = np.random.default_rng(seed)
    meters, rounds = 24, 70  # past 48 rounds: every tracked horizon matches
    store = proto.ColumnarStore(meters, rng, 5_000)
    records = [MeterRecord.new(config) for _ in range(meters)]
    prior = IntervalCalibrator(config.calibration.for_prior())
    matches = 0
    for _ in range(rounds):
        rows = rng.permutation(meters)  # every meter, in a new order each batch
        slot = store.head[rows] + 1
        actual = rng.gamma(2.0, 0.3, rows.size)
        actual[rng.random(rows.size) < 0.05] *= 8.0  # now and then far outside the band
        store.apply(rows, slot, actual.astype(np.float32))
        made = store.score(rows, slot, actual)
        for i, s, a in zip(rows.tolist(), slot.tolist(), actual.tolist(), strict=True):
            found, _ = score_actual(
                records[i], f"m-{i}", s, a, res_ms=RES_MS, now_ms=0, prior=prior
            )
            made -= len(found)
            matches += len(found)
        assert made == 0  # the same matches, batch by batch
        point = rng.gamma(2.0, 0.3, (rows.size, proto.HORIZON))
        quantiles = np.stack([point * 0.5, point, point * 1.8], axis=2)
        store.keep(rows, slot, point, quantiles)
        for k, i in enumerate(rows.tolist()):
            records[i].ledger.record(int(slot[k]), point[k], quantiles[k])
    assert matches > meters * len(proto.TRACKED)
    np.testing.assert_array_equal(store.prior[:, 0], np.asarray(prior.log_low, np.float64))
    np.testing.assert_array_equal(store.prior[:, 1], np.asarray(prior.log_high, np.float64))
    for i, record in enumerate(records):
        calibration = record.calibration
        np.testing.assert_array_equal(store.cal[i, :, 0], calibration.log_low.astype(np.float64))
        np.testing.assert_array_equal(store.cal[i, :, 1], calibration.log_high.astype(np.float64))
        np.testing.assert_array_equal(store.cal_count[i], calibration.matches)
        snapshot = record.accuracy.get()
        n, weight, total, smape = store.acc[i]
        assert n == snapshot.n
        assert math.isclose(total / weight, snapshot.mae_kwh, rel_tol=1e-12)
        assert math.isclose(smape / weight, snapshot.smape_pct, rel_tol=1e-12)
        detector = record.detector
        assert store.ph[i, 0] == detector._n
        assert math.isclose(store.ph[i, 1], detector._mean, rel_tol=1e-9, abs_tol=1e-12)

"""Online calibration of the p10..p90 band: coverage reaches its target, whatever the model."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamer.accuracy.errors import AccuracyStateDecodeError
from streamer.accuracy.interval_calibration import (
    CalibrationConfig,
    IntervalCalibrator,
    batch_multipliers,
    calibrate_quantiles,
)
from streamer.accuracy.match import Match

CONFIG = CalibrationConfig()
#: The over-confident model of the test below reaches its band within this many matches.
MATCHES_TO_CALIBRATE = 400


def stream(
    calibrator: IntervalCalibrator,
    rng: np.random.Generator,
    matches: int,
    *,
    band_scale: float,
    prior: IntervalCalibrator | None = None,
) -> float:
    """Feed ``matches`` horizon-1 forecasts of N(0, 1) actuals whose band is ``band_scale``
    times the true p10..p90; the share of actuals inside the calibrated band."""
    z90 = 1.2815515655446004
    inside = 0
    for _ in range(matches):
        actual = float(rng.standard_normal()) + 10.0
        half = z90 * band_scale
        match = Match(1, 10.0, 10.0 - half, 10.0, 10.0 + half, actual)
        inside += bool(calibrator.update(match, prior))
    return inside / matches


@pytest.mark.parametrize("band_scale", [0.3, 0.5, 2.5])
def test_an_over_or_under_confident_models_band_reaches_80_percent(band_scale: float) -> None:
    """A model whose band holds about 24% (scale 0.3), 40% or 99% of the actuals: after
    MATCHES_TO_CALIBRATE matches, the calibrated band holds 76-84% of the next 4,000."""
    rng = np.random.default_rng(3)
    calibrator = IntervalCalibrator(CONFIG)
    raw = stream(IntervalCalibrator(CalibrationConfig(step=0.0)), rng, 2000, band_scale=band_scale)
    assert abs(raw - 0.8) > 0.15  # the model is miscalibrated
    stream(calibrator, rng, MATCHES_TO_CALIBRATE, band_scale=band_scale)
    covered = stream(calibrator, rng, 4000, band_scale=band_scale)
    assert 0.76 <= covered <= 0.84, (raw, covered)


def test_a_new_meter_starts_from_the_fleet_prior() -> None:
    rng = np.random.default_rng(5)
    prior = IntervalCalibrator(CONFIG)
    stream(prior, rng, 2000, band_scale=0.4)  # the fleet taught it: widen about x2.5
    fresh = IntervalCalibrator(CONFIG)
    low, high = fresh.multipliers(48, prior)
    assert low[0] > 2.0 and high[0] > 2.0  # step 1: the horizon the fleet learnt
    assert (low[1:] == 1.0).all()  # the others saw no match yet
    own_low, own_high = fresh.multipliers(48)
    assert (own_low == 1.0).all() and (own_high == 1.0).all()
    # its first matches already land in a band of about the right width
    assert stream(fresh, rng, 200, band_scale=0.4, prior=prior) > 0.7


def test_steps_use_the_tracked_horizon_at_or_after_them() -> None:
    assert CONFIG.bucket_of_steps(48).tolist() == ([0] + [1] * 3 + [2] * 8 + [3] * 12 + [4] * 24)
    assert CalibrationConfig(horizons=(1, 4)).bucket_of_steps(6).tolist() == [0, 1, 1, 1, 1, 1]


def test_state_round_trips_in_42_bytes_and_refuses_other_bytes() -> None:
    calibrator = IntervalCalibrator(CONFIG)
    stream(calibrator, np.random.default_rng(1), 50, band_scale=0.5)
    data = calibrator.to_bytes()
    assert len(data) == CONFIG.encoded_size == 42
    again = IntervalCalibrator.from_bytes(data, CONFIG)
    assert again.to_bytes() == data
    assert (again.log_high == calibrator.log_high).all() and again.matches[0] == 50
    with pytest.raises(AccuracyStateDecodeError):
        IntervalCalibrator.from_bytes(data, CalibrationConfig(horizons=(1, 2)))
    with pytest.raises(AccuracyStateDecodeError):
        IntervalCalibrator.from_bytes(data[:-1] + bytes([data[-1] ^ 1]), CONFIG)


def test_step_zero_learns_nothing_but_still_judges_the_band() -> None:
    calibrator = IntervalCalibrator(CalibrationConfig(step=0.0))
    assert calibrator.update(Match(1, 1.0, 0.5, 1.0, 1.5, 2.0)) is False
    assert calibrator.update(Match(1, 1.0, 0.5, 1.0, 1.5, 1.2)) is True
    assert calibrator.update(Match(7, 1.0, 0.5, 1.0, 1.5, 1.2)) is None  # not tracked
    assert calibrator.update(Match(1, 1.0, 0.5, float("nan"), 1.5, 1.2)) is None
    assert not calibrator.log_high.any() and not calibrator.matches.any()


@given(
    st.lists(st.floats(-2.0, 2.0), min_size=3, max_size=3),
    st.floats(0.05, 20.0),
    st.floats(0.05, 20.0),
)
def test_calibrated_quantiles_keep_their_order_the_median_and_non_negative_values(
    raw: list[float], low: float, high: float
) -> None:
    q = np.sort(np.array(raw))[None, None, :]
    out = calibrate_quantiles(q, (0.1, 0.5, 0.9), 1, np.full((1, 1), low), np.full((1, 1), high))
    assert out[0, 0, 1] == q[0, 0, 1]
    assert out[0, 0, 0] <= out[0, 0, 1] <= out[0, 0, 2]
    if q[0, 0, 0] >= 0:
        assert out[0, 0, 0] >= 0


def test_batch_multipliers_are_each_calibrators_own() -> None:
    rng = np.random.default_rng(2)
    prior = IntervalCalibrator(CONFIG)
    stream(prior, rng, 300, band_scale=0.5)
    meters = [IntervalCalibrator(CONFIG) for _ in range(3)]
    stream(meters[1], rng, 100, band_scale=2.0)
    low, high = batch_multipliers(meters, prior, 48)
    assert low.shape == high.shape == (3, 48)
    for row, meter in enumerate(meters):
        one_low, one_high = meter.multipliers(48, prior)
        assert np.allclose(low[row], one_low) and np.allclose(high[row], one_high)
    assert high[1, 0] < high[0, 0]  # the wide meter narrows, the others follow the prior

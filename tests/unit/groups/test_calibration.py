"""The band of a group total, calibrated online against realised totals."""

from __future__ import annotations

import doctest
from collections.abc import Iterator

import numpy as np
import numpy.typing as npt
import pytest

from streamer.groups import calibration as calibration_module
from streamer.groups.calibration import (
    GroupBand,
    GroupCalibrationConfig,
    GroupCalibrator,
)
from streamer.groups.errors import GroupError, GroupStateDecodeError

F64 = npt.NDArray[np.float64]
STEPS = np.arange(1, 49)
SHAPE = 100.0 + 60.0 * np.sin(2 * np.pi * STEPS / 48)  # a group's daily load, kWh per slot


def _days(
    days: int, *, bias: float, noise: float, seed: int = 17, shape: F64 = SHAPE
) -> Iterator[tuple[F64, F64]]:
    """A day-ahead stream: (forecast total, realised total) of 48 slots a day. The forecast is
    ``bias`` times the truth; the realised total has slot noise and a day-wide shift (the
    weather moves every member at once) of ``noise`` and ``noise / 2`` kWh."""
    rng = np.random.default_rng(seed)
    for _ in range(days):
        actual = shape + rng.normal(0.0, noise, shape.size) + rng.normal(0.0, noise / 2)
        yield bias * shape, actual


def _inside(band: GroupBand, actual: F64) -> npt.NDArray[np.bool_]:
    return (band.quantiles_kwh[:, 0] <= actual) & (actual <= band.quantiles_kwh[:, -1])


def test_config_checks_and_bucket_of_steps() -> None:
    config = GroupCalibrationConfig()
    steps = [1, 2, 4, 5, 12, 13, 24, 25, 48, 49, 336]
    assert config.bucket_of(steps).tolist() == [0, 1, 1, 2, 2, 3, 3, 4, 4, 4, 4]
    assert config.encoded_size() == len(GroupCalibrator(config).to_bytes()) == 2670
    assert config.for_prior().window == 16 * config.window
    np.testing.assert_allclose(config.default_residuals, [-0.15, 0.0, 0.15])
    for bad in (
        {"horizons": ()},
        {"horizons": (4, 1)},
        {"horizons": (0, 4)},
        {"window": 0},
        {"min_pairs": 300},
        {"levels": (0.9, 0.1)},
        {"levels": (0.0, 0.5)},
        {"default_band": (1.1, 1.2)},
    ):
        with pytest.raises(GroupError):
            GroupCalibrationConfig(**bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("bias", "noise", "first_origin_coverage"),
    [
        (1.1, 12.0, 0.667),  # biased: 10% too high
        (1.0, 25.0, 0.375),  # over-confident: the default band is far too narrow
        (0.9, 8.0, 0.542),  # biased: 10% too low
    ],
)
def test_a_biased_or_overconfident_stream_is_calibrated_within_1152_pairs(
    bias: float, noise: float, first_origin_coverage: float
) -> None:
    calibrator = GroupCalibrator(GroupCalibrationConfig())
    inside, error, raw_error, total = [], 0.0, 0.0, 0.0
    first_calibrated = None
    for origin, (forecast, actual) in enumerate(_days(64, bias=bias, noise=noise)):
        band = calibrator.publish(STEPS, forecast)  # published before its actuals are known
        if origin == 0:
            assert not band.calibrated.any()
            assert _inside(band, actual).mean() == pytest.approx(first_origin_coverage, abs=1e-3)
        if first_calibrated is None and band.calibrated.all():
            first_calibrated = origin
            # bucket 1 sees one pair a day and needs min_pairs = 24 of them
            assert calibrator.pairs().tolist() == [24, 72, 192, 288, 576]
            assert int(calibrator.pairs().sum()) == 1152
        if first_calibrated is not None:
            inside.append(_inside(band, actual))
            error += float((band.mean_kwh - actual).sum())
            raw_error += float((forecast - actual).sum())
            total += float(actual.sum())
        assert calibrator.update(STEPS, forecast, actual) == 48
    assert first_calibrated == 24
    coverage = float(np.concatenate(inside).mean())  # 40 days, 1,920 pairs
    assert 0.75 <= coverage <= 0.85
    assert abs(error / total) < 0.01  # bias learnt away: under 1% of the realised total
    assert abs(raw_error / total) > 0.02 or bias == 1.0


def test_one_bucket_uses_its_own_residuals_after_exactly_min_pairs() -> None:
    config = GroupCalibrationConfig(horizons=(1,), window=64, min_pairs=24)
    calibrator = GroupCalibrator(config)
    rng = np.random.default_rng(5)
    for pair in range(24):
        assert not calibrator.publish([1], [50.0]).calibrated[0]
        assert calibrator.update([1], [50.0], [40.0 + rng.normal(0, 3)]) == 1
        assert calibrator.pairs()[0] == pair + 1
    band = calibrator.publish([1], [50.0])
    assert band.calibrated[0] and band.mean_kwh[0] == pytest.approx(40.0, abs=1.5)


def test_a_new_group_is_published_with_the_fleets_prior() -> None:
    config = GroupCalibrationConfig()
    prior = GroupCalibrator(config.for_prior())
    big = GroupCalibrator(config)
    for forecast, actual in _days(5, bias=1.1, noise=12.0):
        for scale in (1.0, 5.0):  # a feeder and a substation, both teach the prior
            big.update(STEPS, scale * forecast, scale * actual)
            prior.update(STEPS, scale * forecast, scale * actual)
    newcomer = GroupCalibrator(config)
    forecast = 0.2 * 1.1 * SHAPE  # a small group, also 10% too high
    alone = newcomer.publish(STEPS, forecast)
    assert not alone.calibrated.any()
    np.testing.assert_allclose(alone.quantiles_kwh[:, 0], 0.85 * forecast)
    np.testing.assert_allclose(alone.mean_kwh, forecast)
    with_prior = newcomer.publish(STEPS, forecast, prior)
    # five days teach the prior buckets 4..48 (bucket 1 has 2 x 5 = 10 pairs, under 24)
    assert with_prior.calibrated.tolist() == [False] + [True] * 47
    # the prior's residuals are in units of each group's level: the bias and spread carry over
    # to a group of any size (its level taken from its forecast until it has pairs)
    truth = 0.2 * SHAPE
    assert abs(with_prior.mean_kwh[1:].sum() / truth[1:].sum() - 1) < 0.03
    assert abs(forecast[1:].sum() / truth[1:].sum() - 1) > 0.09
    assert newcomer.pairs().sum() == 0
    # once the group has its own pairs in a bucket, they win over the prior's
    newcomer.update(STEPS[24:], forecast[24:], 3.0 * truth[24:])
    own = newcomer.publish(STEPS, forecast, prior)
    assert own.mean_kwh[30] > 2.0 * truth[30] > with_prior.mean_kwh[30]


def test_negative_and_near_zero_totals_give_ordered_bands() -> None:
    # a feeder full of PV: its total dips below zero at noon
    shape = 20.0 - 45.0 * np.exp(-(((STEPS - 26) / 5.0) ** 2))
    assert shape.min() < -20 and (np.abs(shape) < 4).any()
    calibrator = GroupCalibrator(GroupCalibrationConfig())
    default = calibrator.publish(STEPS, shape)
    assert (np.diff(default.quantiles_kwh, axis=1) >= 0).all()
    np.testing.assert_allclose(default.quantiles_kwh[:, 2] - shape, 0.15 * np.abs(shape))
    inside = []
    for origin, (forecast, actual) in enumerate(_days(40, bias=1.0, noise=4.0, shape=shape)):
        band = calibrator.publish(STEPS, forecast)
        assert (np.diff(band.quantiles_kwh, axis=1) >= 0).all()
        assert (band.quantiles_kwh[:, 0] <= band.mean_kwh).all()
        assert (band.mean_kwh <= band.quantiles_kwh[:, 2]).all()
        if origin >= 24:
            inside.append(_inside(band, actual))
        calibrator.update(STEPS, forecast, actual)
    assert calibrator.level_kwh > 0
    coverage = np.concatenate(inside).reshape(-1, 48)
    assert 0.75 <= coverage.mean() <= 0.85
    noon = coverage[:, 20:32].mean()  # where the total is negative or crosses zero
    assert 0.7 <= noon <= 0.95


@pytest.mark.parametrize(("rate", "stormy_coverage"), [(0.0, 0.556), (2.0, 0.809)])
def test_published_levels_adapt_when_the_errors_grow(
    rate: float, stormy_coverage: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 30 calm days fill the window, then the errors triple: adaptive conformal inference
    # (calibration_module.ACI_RATE) widens the band faster than the residuals turn over
    monkeypatch.setattr(calibration_module, "ACI_RATE", rate)
    calibrator = GroupCalibrator(GroupCalibrationConfig(horizons=(48,)))
    for forecast, actual in _days(30, bias=1.0, noise=4.0):
        calibrator.update(STEPS, forecast, actual)
    np.testing.assert_allclose(calibrator.levels_used[0], [0.1, 0.5, 0.9], atol=0.15)
    stormy = []
    for forecast, actual in _days(6, bias=1.0, noise=12.0, seed=3):
        stormy.append(_inside(calibrator.publish(STEPS, forecast), actual).mean())
        calibrator.update(STEPS, forecast, actual)
    assert float(np.mean(stormy)) == pytest.approx(stormy_coverage, abs=1e-3)
    if rate:
        assert min(stormy[1:]) > 0.85  # from the second stormy day on


def test_update_skips_what_it_cannot_learn_and_keeps_the_newest_window() -> None:
    config = GroupCalibrationConfig(horizons=(1, 4), window=8, min_pairs=2)
    calibrator = GroupCalibrator(config)
    kept = calibrator.update(
        [1, 0, 2, 3, 1], [10.0, 10.0, np.nan, 10.0, 10.0], [11.0, 11.0, 11.0, np.inf, 12.0]
    )
    assert kept == 2 and calibrator.pairs().tolist() == [2, 0]
    assert calibrator.update([], [], []) == 0
    zero = GroupCalibrator(config)
    assert zero.update([1, 1], [0.0, 1.0], [0.0, 0.0]) == 0  # nothing measured: no unit yet
    with pytest.raises(GroupError, match="same length"):
        calibrator.update([1, 2], [1.0, 2.0, 3.0], [1.0, 2.0])
    with pytest.raises(GroupError, match="same length"):
        calibrator.publish([1, 2], [1.0])
    ring = GroupCalibrator(config)
    ring.update(np.full(5, 4), np.full(5, 100.0), 100.0 + np.arange(5.0))
    ring.update(np.full(7, 4), np.full(7, 100.0), 200.0 + np.arange(7.0))
    assert ring.pairs().tolist() == [0, 12]
    # the newest 8 stay: the 7 of the second call (about +100 kWh) and the last of the first
    assert (ring.residuals[1] > 0.5).sum() == 7
    assert (ring.residuals[1] < 0.1).sum() == 1
    assert np.isnan(ring.publish([1], [np.nan]).mean_kwh[0])


def test_state_round_trips_through_bytes() -> None:
    config = GroupCalibrationConfig()
    calibrator = GroupCalibrator(config)
    for forecast, actual in _days(9, bias=1.05, noise=10.0):
        calibrator.update(STEPS, forecast, actual)
    data = calibrator.to_bytes()
    assert len(data) == config.encoded_size()
    again = GroupCalibrator.from_bytes(data, config)
    assert again.to_bytes() == data
    np.testing.assert_array_equal(again.pairs(), calibrator.pairs())
    assert again.level_kwh == calibrator.level_kwh
    first, second = calibrator.publish(STEPS, SHAPE), again.publish(STEPS, SHAPE)
    np.testing.assert_array_equal(first.quantiles_kwh, second.quantiles_kwh)
    np.testing.assert_array_equal(first.mean_kwh, second.mean_kwh)
    # learning continues where it stopped
    forecast, actual = next(_days(1, bias=1.0, noise=5.0, seed=9))
    calibrator.update(STEPS, forecast, actual)
    again.update(STEPS, forecast, actual)
    assert again.to_bytes() == calibrator.to_bytes()
    # publishing settings may change without discarding the state
    GroupCalibrator.from_bytes(data, GroupCalibrationConfig(min_pairs=48, default_band=(0.8, 1.2)))


def test_corrupt_or_foreign_state_is_refused() -> None:
    config = GroupCalibrationConfig()
    data = GroupCalibrator(config).to_bytes()
    flipped = bytearray(data)
    flipped[40] ^= 0xFF
    for bad, match in (
        (bytes(flipped), "corrupt"),
        (data[:6], "truncated"),
        (b"IC" + data[2:], "magic"),
    ):
        with pytest.raises(GroupStateDecodeError, match=match):
            GroupCalibrator.from_bytes(bad, config)
    for other in (
        GroupCalibrationConfig(window=128),
        GroupCalibrationConfig(horizons=(1, 48)),
        GroupCalibrationConfig(levels=(0.05, 0.5, 0.95)),
    ):
        with pytest.raises(GroupStateDecodeError, match="other parameters"):
            GroupCalibrator.from_bytes(data, other)
    with pytest.raises(GroupStateDecodeError, match="must be bytes"):
        GroupCalibrator.from_bytes("text", config)  # type: ignore[arg-type]


def test_docstring_examples_run() -> None:
    result = doctest.testmod(calibration_module)
    assert result.attempted >= 4 and result.failed == 0

"""Page-Hinkley: pinned detection indices, directions, parameters, bytes."""

from __future__ import annotations

import math

import pytest

from streamer.drift import DriftConfigError, DriftStateDecodeError, PageHinkley, PageHinkleyConfig
from streamer.drift.calibration import drift_indices, shifted_stream
from streamer.drift.page_hinkley import ENCODED_SIZE


# Computed once with the defaults (delta=0.5, threshold=25, min_instances=48) and pinned, so a
# change of behaviour is caught. Streams: N(0, 1) from RandomState(seed), shift at index 1000.
@pytest.mark.parametrize(
    ("shift", "seed", "expected"),
    [
        (1.0, 0, [1040]),
        (1.0, 1, [1055]),
        (1.0, 2, [1040]),
        (1.0, 3, [1034]),
        (-1.0, 0, [1064]),
        (-1.0, 1, [1040]),
        (2.0, 0, [1014]),
        (2.0, 1, [1021]),
    ],
)
def test_default_detector_fires_at_pinned_index(
    shift: float, seed: int, expected: list[int]
) -> None:
    assert drift_indices(PageHinkley(), shifted_stream(2000, 1000, shift, seed)) == expected


# The same indices as River 0.26.1's drift.PageHinkley() (its defaults: delta=0.005,
# threshold=50, min_instances=30) on a stream shifted by +1.5 at 1000 and by -3 at 2000;
# checked once against River itself (240 streams gave identical indices), pinned here.
@pytest.mark.parametrize(
    ("seed", "expected"),
    [(0, [382, 1009, 2004]), (1, [1032, 2004]), (2, [1025, 2016])],
)
def test_matches_river_page_hinkley(seed: int, expected: list[int]) -> None:
    values = shifted_stream(3000, 1000, 1.5, seed)
    values[2000:] -= 3.0
    detector = PageHinkley(delta=0.005, threshold=50.0, min_instances=30)
    assert drift_indices(detector, values) == expected


def test_direction_is_reported_for_one_update() -> None:
    detector = PageHinkley()
    directions = []
    for x in shifted_stream(2000, 1000, -2.0, seed=5):
        detector.update(float(x))
        directions.append(detector.drift_direction)
    hits = [(i, d) for i, d in enumerate(directions) if d is not None]
    assert len(hits) == 1
    index, direction = hits[0]
    assert direction == "down"
    assert 1000 <= index < 1060


def test_statistics_restart_after_a_drift() -> None:
    detector = PageHinkley(delta=0.5, threshold=5.0, min_instances=5)
    values = [0.0] * 10 + [3.0] * 10
    found = drift_indices(detector, values)
    assert found == [12]
    # 7 values (13..19) since the drift; mean 3, nothing above it.
    assert detector.n == 7
    assert detector.mean == 3.0
    assert detector.up_statistic == 0.0


def test_statistics_by_hand() -> None:
    detector = PageHinkley(delta=0.5, threshold=100.0, alpha=1.0, min_instances=1)
    for x in (1.0, 3.0, -1.0):
        detector.update(x)
    # means 1, 2, 1; deviations 0, 1, -2; up sums -0.5, 0.0, -2.5 (min -2.5);
    # down sums 0.5, 2.0, 0.5 (max 2.0).
    assert detector.n == 3
    assert detector.mean == 1.0
    assert detector.up_statistic == 0.0
    assert detector.down_statistic == 1.5


def test_min_instances_delays_the_test() -> None:
    values = [0.0] * 3 + [10.0] * 40
    assert drift_indices(PageHinkley(delta=0.5, threshold=5.0, min_instances=1), values) == [3]
    assert drift_indices(PageHinkley(delta=0.5, threshold=5.0, min_instances=20), values) == [19]


def test_fading_factor_forgets_old_excursions() -> None:
    # The running mean catches up with a step, so its deviations shrink; strong fading keeps
    # the cumulative sum from ever reaching the threshold.
    values = [0.0] * 50 + [3.0] * 200
    assert drift_indices(PageHinkley(delta=0.5, threshold=20.0, alpha=1.0), values) == [58]
    assert drift_indices(PageHinkley(delta=0.5, threshold=20.0, alpha=0.9), values) == [65]
    assert drift_indices(PageHinkley(delta=0.5, threshold=20.0, alpha=0.8), values) == []


def test_encoded_size_is_fixed() -> None:
    detector = PageHinkley()
    assert len(detector.to_bytes()) == ENCODED_SIZE == 60
    for x in shifted_stream(500, 250, 3.0, seed=1):
        detector.update(float(x))
        assert len(detector.to_bytes()) == ENCODED_SIZE


def test_new_threshold_keeps_state_new_delta_does_not() -> None:
    detector = PageHinkley()
    for x in shifted_stream(100, 50, 0.0, seed=2):
        detector.update(float(x))
    data = detector.to_bytes()
    other = PageHinkley.from_bytes(data, PageHinkleyConfig(threshold=40.0, mode="up"))
    assert other.n == detector.n
    assert other.config.threshold == 40.0
    with pytest.raises(DriftStateDecodeError, match="other parameters"):
        PageHinkley.from_bytes(data, PageHinkleyConfig(delta=0.25))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"delta": -0.1},
        {"delta": math.nan},
        {"threshold": 0.0},
        {"threshold": math.inf},
        {"alpha": 0.0},
        {"alpha": 1.5},
        {"min_instances": 0},
        {"mode": "sideways"},
    ],
)
def test_bad_parameters_are_rejected(kwargs: dict[str, object]) -> None:
    with pytest.raises(DriftConfigError, match="PageHinkley"):
        PageHinkley(**kwargs)  # type: ignore[arg-type]


def test_defaults_are_the_documented_ones() -> None:
    config = PageHinkley().config
    assert (config.delta, config.threshold, config.alpha, config.min_instances, config.mode) == (
        0.5,
        25.0,
        1.0 - 1e-4,
        48,
        "both",
    )

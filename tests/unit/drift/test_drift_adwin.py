"""ADWIN: pinned detection indices, bounded memory, bytes."""

from __future__ import annotations

import pytest

from streamer.drift import Adwin, AdwinConfig, DriftConfigError, DriftStateDecodeError
from streamer.drift.adwin import encoded_size
from streamer.drift.calibration import drift_indices, shifted_stream, stable_streams


# Computed once with the defaults (delta=0.002, clock=32) and pinned. Streams: N(0, 1) from
# RandomState(seed), shift at index 1000. Checks happen every 32 values (index 31 mod 32).
@pytest.mark.parametrize(
    ("shift", "seed", "expected"),
    [
        (1.0, 0, [1055]),
        (1.0, 1, [1055]),
        (1.0, 3, [1055]),
        (-1.0, 1, [1023]),
        (2.0, 0, [1023]),
    ],
)
def test_default_detector_fires_at_pinned_index(
    shift: float, seed: int, expected: list[int]
) -> None:
    assert drift_indices(Adwin(), shifted_stream(2000, 1000, shift, seed)) == expected


# The same indices as River 0.26.1's drift.ADWIN() and drift.ADWIN(delta=0.05, clock=4) on a
# stream shifted by +1.5 at 1000 and by -3 at 2000 (checked once against River itself).
@pytest.mark.parametrize(
    ("seed", "default", "fast"),
    [
        (0, [1023, 2015], [1011, 2007]),
        (1, [1055, 2015], [1015, 2007]),
        (2, [1023, 2015], [1015, 2011]),
    ],
)
def test_matches_river_adwin(seed: int, default: list[int], fast: list[int]) -> None:
    values = shifted_stream(3000, 1000, 1.5, seed)
    values[2000:] -= 3.0
    assert drift_indices(Adwin(), values) == default
    assert drift_indices(Adwin(delta=0.05, clock=4), values) == fast


def test_checks_only_on_the_clock() -> None:
    found = drift_indices(Adwin(clock=16), shifted_stream(3000, 1000, 3.0, seed=4))
    assert found and all((i + 1) % 16 == 0 for i in found)


def test_window_starts_afresh_after_a_drift() -> None:
    detector = Adwin()
    for x in shifted_stream(1100, 1000, 3.0, seed=0):
        if detector.update(float(x)).drift_detected:
            assert detector.n == 0
            assert detector.to_bytes() != Adwin().to_bytes()  # only the drift flag differs
            detector.update(0.0)
            assert detector.n == 1
            return
    pytest.fail("no drift found")


def test_mean_and_variance_of_the_window() -> None:
    detector = Adwin()
    for x in (1.0, 2.0, 3.0, 4.0):
        detector.update(x)
    assert detector.width == 4
    assert detector.mean == 2.5
    assert detector.variance == pytest.approx(1.25)  # population variance


def test_memory_is_bounded() -> None:
    config = AdwinConfig()
    assert config.max_width == 5115
    assert config.max_encoded_size == 855
    detector = Adwin()
    sizes = []
    for x in stable_streams(1, 12_000, seed=9)[0]:
        detector.update(float(x))
        sizes.append(len(detector.to_bytes()))
    assert detector.n <= config.max_width
    assert detector.n > 4000  # the window did grow up to the cap
    assert max(sizes) <= config.max_encoded_size
    assert detector.n_buckets <= config.max_buckets * config.max_levels
    assert len(detector.to_bytes()) == encoded_size(len(detector._levels), detector.n_buckets)


def test_cap_drops_old_values_without_a_drift() -> None:
    detector = Adwin(max_buckets=2, max_levels=3)
    found = drift_indices(detector, [1.0] * 100)
    assert found == []
    assert detector.n <= 14
    assert detector.mean == 1.0


def test_new_delta_keeps_state_new_shape_does_not() -> None:
    detector = Adwin()
    for x in stable_streams(1, 300, seed=3)[0]:
        detector.update(float(x))
    data = detector.to_bytes()
    assert Adwin.from_bytes(data, AdwinConfig(delta=0.01, clock=8)).n == detector.n
    with pytest.raises(DriftStateDecodeError, match="other parameters"):
        Adwin.from_bytes(data, AdwinConfig(max_buckets=7))


def test_inconsistent_bucket_layout_is_rejected() -> None:
    from streamer.drift.adwin import _FIXED, MAGIC, VERSION
    from streamer.drift.sealed import seal

    config = AdwinConfig()
    # Width 3 claimed, but one bucket of size 1 stored.
    body = _FIXED.pack(1, 3, 1.0, 0.0, 1) + bytes([1]) + b"\0" * 16
    data = seal(MAGIC, VERSION, 0, config.fingerprint(), body)
    with pytest.raises(DriftStateDecodeError, match="width"):
        Adwin.from_bytes(data, config)
    body = _FIXED.pack(1, 1, 1.0, 0.0, 1) + bytes([9]) + b"\0" * 16
    data = seal(MAGIC, VERSION, 0, config.fingerprint(), body)
    with pytest.raises(DriftStateDecodeError, match="bucket counts"):
        Adwin.from_bytes(data, config)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"delta": 0.0},
        {"delta": 1.0},
        {"clock": 0},
        {"max_buckets": 1},
        {"grace_period": 5},
        {"max_levels": 0},
    ],
)
def test_bad_parameters_are_rejected(kwargs: dict[str, object]) -> None:
    with pytest.raises(DriftConfigError, match="Adwin"):
        Adwin(**kwargs)  # type: ignore[arg-type]

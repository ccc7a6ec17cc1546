"""One check suite over every DriftDetector implementation (and parameter variants)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamer.drift import (
    Adwin,
    DriftDetector,
    DriftStateDecodeError,
    PageHinkley,
)
from streamer.drift.calibration import drift_indices, shifted_stream

Factory = Callable[[], DriftDetector]

FACTORIES: dict[str, Factory] = {
    "page_hinkley": PageHinkley,
    "page_hinkley_up": lambda: PageHinkley(mode="up"),
    "page_hinkley_down": lambda: PageHinkley(mode="down"),
    "page_hinkley_river_defaults": lambda: PageHinkley(delta=0.005, threshold=50, min_instances=30),
    "adwin": Adwin,
    "adwin_fast": lambda: Adwin(delta=0.05, clock=4),
    "adwin_capped": lambda: Adwin(clock=8, max_buckets=3, max_levels=6),
}

# A stream whose mean changes every 300 values, both ways, so that every variant alarms.
_LEVELS = [0, 4, 0, -4, 0, 4, 0]
_CHANGING = np.concatenate(
    [shifted_stream(300, 0, level, seed) for seed, level in enumerate(_LEVELS)]
)


@pytest.fixture(params=sorted(FACTORIES))
def make(request: pytest.FixtureRequest) -> Factory:
    factory: Factory = FACTORIES[request.param]
    return factory


def test_is_a_drift_detector(make: Factory) -> None:
    assert isinstance(make(), DriftDetector)


def test_fresh_detector_is_empty(make: Factory) -> None:
    detector = make()
    assert detector.n == 0
    assert detector.drift_detected is False
    assert detector.to_bytes() == make().to_bytes()


def test_update_returns_self_and_counts(make: Factory) -> None:
    detector = make()
    assert detector.update(0.25) is detector
    assert detector.n == 1


def test_non_finite_values_are_skipped(make: Factory) -> None:
    detector = make()
    for x in _CHANGING[:50]:
        detector.update(float(x))
    before = detector.to_bytes()
    for bad in (math.nan, math.inf, -math.inf):
        assert detector.update(bad) is detector
        assert not detector.drift_detected
    assert detector.to_bytes() == before


def test_constant_stream_never_drifts(make: Factory) -> None:
    assert drift_indices(make(), [0.7] * 3000) == []


def _mode(detector: DriftDetector) -> str:
    return str(getattr(getattr(detector, "config", None), "mode", "both"))


@pytest.mark.parametrize("shift", [4.0, -4.0])
def test_finds_an_abrupt_shift_in_its_direction(make: Factory, shift: float) -> None:
    found = drift_indices(make(), shifted_stream(600, 300, shift, seed=11))
    mode = _mode(make())
    if (mode == "up" and shift < 0) or (mode == "down" and shift > 0):
        assert found == []
    else:
        assert found and 300 <= found[0] < 450, found


@pytest.mark.parametrize("name", [n for n in sorted(FACTORIES) if _mode(FACTORIES[n]()) == "both"])
def test_two_sided_detectors_find_every_change(name: str) -> None:
    found = drift_indices(FACTORIES[name](), _CHANGING)
    for k in range(1, len(_LEVELS)):
        assert any(300 * k <= i < 300 * k + 150 for i in found), (300 * k, found)
    assert all(i % 300 < 150 for i in found), found  # no alarm late in a stable stretch


def test_drift_flag_lasts_one_update(make: Factory) -> None:
    detector = make()
    flags = [detector.update(float(x)).drift_detected for x in _CHANGING]
    assert any(flags)
    assert not any(a and b for a, b in itertools.pairwise(flags))


def test_reset_gives_the_fresh_state(make: Factory) -> None:
    detector = make()
    for x in _CHANGING[:400]:
        detector.update(float(x))
    detector.reset()
    assert detector.n == 0
    assert not detector.drift_detected
    assert detector.to_bytes() == make().to_bytes()


def test_clone_is_fresh_with_same_parameters(make: Factory) -> None:
    detector = make()
    for x in _CHANGING[:400]:
        detector.update(float(x))
    clone = detector.clone()
    assert type(clone) is type(detector)
    assert clone.to_bytes() == make().to_bytes()
    assert drift_indices(clone, _CHANGING) == drift_indices(make(), _CHANGING)


def test_deterministic(make: Factory) -> None:
    a, b = make(), make()
    assert drift_indices(a, _CHANGING) == drift_indices(b, _CHANGING)
    assert a.to_bytes() == b.to_bytes()


@settings(max_examples=30, deadline=None)
@given(split=st.integers(min_value=0, max_value=_CHANGING.size))
def test_bytes_round_trip_resumes_identically(split: int) -> None:
    for make in FACTORIES.values():
        whole = make()
        expected = drift_indices(whole, _CHANGING)
        first = make()
        found = drift_indices(first, _CHANGING[:split])
        restored = first.restore(first.to_bytes())
        assert restored.to_bytes() == first.to_bytes()
        assert restored.drift_detected == first.drift_detected
        assert restored.n == first.n
        found += [split + i for i in drift_indices(restored, _CHANGING[split:])]
        assert found == expected
        assert restored.to_bytes() == whole.to_bytes()


def test_round_trip_keeps_the_drift_flag(make: Factory) -> None:
    detector = make()
    for x in _CHANGING:
        if detector.update(float(x)).drift_detected:
            break
    assert detector.drift_detected
    assert detector.restore(detector.to_bytes()).drift_detected


def test_corrupt_bytes_are_rejected(make: Factory) -> None:
    detector = make()
    for x in _CHANGING[:200]:
        detector.update(float(x))
    data = detector.to_bytes()
    for index in (0, 3, 9, len(data) // 2, len(data) - 1):
        broken = bytearray(data)
        broken[index] ^= 0x40
        with pytest.raises(DriftStateDecodeError, match="afresh"):
            detector.restore(bytes(broken))
    with pytest.raises(DriftStateDecodeError, match="truncated"):
        detector.restore(data[:5])
    with pytest.raises(DriftStateDecodeError):
        detector.restore(data[:-5])
    with pytest.raises(DriftStateDecodeError, match="must be bytes"):
        detector.restore("text")  # type: ignore[arg-type]


def test_other_detectors_bytes_are_rejected(make: Factory) -> None:
    detector = make()
    for other in (PageHinkley(), Adwin()):
        if type(other) is type(detector):
            continue
        with pytest.raises(DriftStateDecodeError, match="not"):
            detector.restore(other.to_bytes())

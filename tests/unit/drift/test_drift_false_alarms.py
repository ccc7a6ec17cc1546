"""False-alarm rates on stable streams and detection delays, for the recommended defaults.

The same numbers come out of ``python -m streamer.drift.calibration`` (which adds shifts of
0.5 and 2). Each measurement is pinned exactly (a behaviour change shows up) and also held to
the documented bound the defaults were chosen for.

Recommended input: standardised residuals of 30-minute slots (about N(0, 1) while the model
fits). Bounds: on 200 i.i.d. N(0, 1) streams of 2000 values (41 days of slots), at most 1 %
of streams may alarm; on AR(1) streams with lag-1 correlation 0.5, at most 10 % for
Page-Hinkley; a shift of 1 standard deviation is found after a median of at most 48 values
(one day of slots) by Page-Hinkley, 64 by ADWIN (which checks every 32 values).
"""

from __future__ import annotations

import numpy as np
import pytest

from streamer.drift import Adwin, PageHinkley
from streamer.drift.calibration import (
    FloatArray,
    detection_delays,
    false_alarms,
    stable_streams,
)


@pytest.fixture(scope="module")
def iid() -> FloatArray:
    return stable_streams(200, 2000, seed=1)


@pytest.fixture(scope="module")
def autocorrelated() -> FloatArray:
    return stable_streams(200, 2000, seed=2, phi=0.5)


def test_streams_are_standardised(iid: FloatArray, autocorrelated: FloatArray) -> None:
    for streams in (iid, autocorrelated):
        assert abs(float(streams.mean())) < 0.01
        assert float(streams.std()) == pytest.approx(1.0, abs=0.01)
    lag1 = np.corrcoef(autocorrelated[:, :-1].ravel(), autocorrelated[:, 1:].ravel())[0, 1]
    assert lag1 == pytest.approx(0.5, abs=0.01)


def test_page_hinkley_false_alarms_iid(iid: FloatArray) -> None:
    result = false_alarms(PageHinkley, iid)
    assert result.streams_with_alarm == 0  # measured
    assert result.stream_rate <= 0.01


def test_page_hinkley_false_alarms_autocorrelated(autocorrelated: FloatArray) -> None:
    result = false_alarms(PageHinkley, autocorrelated)
    assert (result.streams_with_alarm, result.alarms) == (12, 12)  # measured: 6 %
    assert result.stream_rate <= 0.10


def test_adwin_false_alarms_iid(iid: FloatArray) -> None:
    result = false_alarms(Adwin, iid)
    assert result.streams_with_alarm == 0  # measured
    assert result.stream_rate <= 0.01


def test_adwin_is_not_robust_to_autocorrelation(autocorrelated: FloatArray) -> None:
    # ADWIN's bound assumes independent values: half the correlated streams alarm. This is why
    # Page-Hinkley is the recommended per-meter detector.
    result = false_alarms(Adwin, autocorrelated)
    assert (result.streams_with_alarm, result.alarms) == (96, 133)  # measured: 48 %


def test_page_hinkley_detection_delay() -> None:
    one = detection_delays(PageHinkley, shift=1.0, streams=100)
    assert (one.missed, one.early) == (0, 0)
    assert one.median == 45.0  # measured
    assert one.median <= 48
    two = detection_delays(PageHinkley, shift=2.0, streams=100)
    assert (two.missed, two.early, two.median) == (0, 0, 16.0)


def test_adwin_detection_delay() -> None:
    one = detection_delays(Adwin, shift=1.0, streams=100)
    assert (one.missed, one.early) == (0, 0)
    assert one.median == 55.0  # measured
    assert one.median <= 64

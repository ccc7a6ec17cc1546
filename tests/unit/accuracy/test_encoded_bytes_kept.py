"""The record parts keep their encoded bytes until they change: never stale.

A ledger, a rolling accuracy, a Page-Hinkley detector and an interval calibrator each keep the
bytes :meth:`to_bytes` last made (or the bytes they were read from), so that a meter record
rewritten with those parts untouched does not encode them again. Each test drives a part
through a random sequence of its updates, asking for its bytes after every step, and compares
them with the bytes of a part that replays the same steps and is encoded only once, at the end:
a step that changed the part without dropping its kept bytes would show as a difference.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from streamer.accuracy.forecast_ledger import ForecastLedger
from streamer.accuracy.interval_calibration import CalibrationConfig, IntervalCalibrator
from streamer.accuracy.match import Match
from streamer.accuracy.rolling_accuracy import RollingAccuracy
from streamer.drift.page_hinkley import PageHinkley, PageHinkleyConfig

Part = TypeVar("Part")
Step = Callable[[Any], object]

values = st.floats(-5.0, 5.0, allow_nan=False)


def check_never_stale(
    make: Callable[[], Part], steps: list[Step], decode: Callable[[bytes], Part]
) -> None:
    kept = make()
    for done in range(len(steps) + 1):
        if done:
            steps[done - 1](kept)
        got = kept.to_bytes()  # type: ignore[attr-defined]
        fresh = make()
        for step in steps[:done]:
            step(fresh)
        assert got == fresh.to_bytes(), f"stale bytes after step {done}"  # type: ignore[attr-defined]
        # a part read from its bytes gives those bytes back, and goes on changing as the original
        decoded = decode(got)
        assert decoded.to_bytes() == got  # type: ignore[attr-defined]
        if done < len(steps):
            steps[done](decoded)
            again = make()
            for step in steps[: done + 1]:
                step(again)
            assert decoded.to_bytes() == again.to_bytes()  # type: ignore[attr-defined]


def ledger_step(kind: int, slot: int, value: float) -> Step:
    if kind == 0:
        point = np.linspace(value, value + 1.0, 48)
        quantiles = np.stack([point - 0.5, point, point + 0.5], axis=1)
        return lambda ledger: ledger.record(100 + slot, point, quantiles)
    return lambda ledger: ledger.match(100 + slot, value)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1), st.integers(0, 60), values), max_size=25))
def test_a_ledger_never_gives_stale_bytes(ops: list[tuple[int, int, float]]) -> None:
    steps = [ledger_step(*op) for op in ops]
    check_never_stale(ForecastLedger, steps, ForecastLedger.from_bytes)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.one_of(st.tuples(st.just("update"), values, values), st.just(("reset", 0.0, 0.0))),
        max_size=25,
    )
)
def test_a_rolling_accuracy_never_gives_stale_bytes(ops: list[tuple[str, float, float]]) -> None:
    steps: list[Step] = [
        (lambda acc: acc.reset()) if kind == "reset" else (lambda acc, a=a, f=f: acc.update(a, f))
        for kind, a, f in ops
    ]
    check_never_stale(
        lambda: RollingAccuracy(8.0), steps, lambda b: RollingAccuracy.from_bytes(b, 8.0)
    )


DETECTOR = PageHinkleyConfig(delta=0.05, threshold=1.0, alpha=0.99, min_instances=3)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.one_of(values.map(lambda v: ("update", v)), st.just(("reset", 0.0))), max_size=30)
)
def test_a_page_hinkley_detector_never_gives_stale_bytes(ops: list[tuple[str, float]]) -> None:
    # a low threshold: drifts fire (and clear the statistics) within the sequences drawn
    steps: list[Step] = [
        (lambda d: d.reset()) if kind == "reset" else (lambda d, v=v: d.update(v))
        for kind, v in ops
    ]
    check_never_stale(
        lambda: PageHinkley.from_config(DETECTOR),
        steps,
        lambda b: PageHinkley.from_bytes(b, DETECTOR),
    )


CALIBRATION = CalibrationConfig(horizons=(1, 4), step=0.2)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("update"), st.sampled_from([1, 4, 7]), values),
            st.tuples(st.just("low"), st.just(1), values),
            st.tuples(st.just("high"), st.just(1), values),
        ),
        max_size=25,
    )
)
def test_an_interval_calibrator_never_gives_stale_bytes(ops: list[tuple[str, int, float]]) -> None:
    def step(kind: str, horizon: int, value: float) -> Step:
        if kind == "low":
            return lambda c: setattr(c, "log_low", [value / 5, -value / 5])
        if kind == "high":
            return lambda c: setattr(c, "log_high", [value / 5, value / 7])
        return lambda c: c.update(Match(horizon, 1.0, 0.5, 1.0, 1.5, 1.0 + value / 4))

    check_never_stale(
        lambda: IntervalCalibrator(CALIBRATION),
        [step(*op) for op in ops],
        lambda b: IntervalCalibrator.from_bytes(b, CALIBRATION),
    )

"""Measure a drift detector's false-alarm rate and detection delay on synthetic streams.

The streams come from NumPy's legacy ``RandomState``, whose output is frozen across NumPy
versions, so the numbers (and the indices pinned in the tests) do not move with an upgrade.

Run ``python -m streamer.drift.calibration`` to print the table for the recommended defaults
(about 15 seconds on one core).
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from streamer.drift.adwin import Adwin
from streamer.drift.page_hinkley import PageHinkley
from streamer.drift.protocol import DriftDetector

FloatArray = npt.NDArray[np.float64]
DetectorFactory = Callable[[], DriftDetector]


def stable_streams(count: int, length: int, seed: int = 0, phi: float = 0.0) -> FloatArray:
    """``(count, length)`` streams with mean 0 and variance 1: i.i.d. N(0, 1) when ``phi`` is
    0, else a stationary AR(1) ``x[t] = phi x[t-1] + sqrt(1 - phi^2) e[t]`` (residuals of a
    load forecast are autocorrelated; ``phi = 0.5`` is a plausible lag-1 value)."""
    noise = np.random.RandomState(seed).standard_normal((count, length))
    if phi == 0.0:
        return noise
    out = np.empty_like(noise)
    out[:, 0] = noise[:, 0]
    scale = math.sqrt(1.0 - phi * phi)
    for t in range(1, length):
        out[:, t] = phi * out[:, t - 1] + scale * noise[:, t]
    return out


def shifted_stream(
    length: int, change_index: int, shift: float, seed: int, phi: float = 0.0
) -> FloatArray:
    """One stable stream (see :func:`stable_streams`) with ``shift`` added from
    ``change_index`` on: an abrupt change of the mean by ``shift`` standard deviations."""
    values: FloatArray = stable_streams(1, length, seed, phi)[0]
    values[change_index:] += shift
    return values


def drift_indices(detector: DriftDetector, values: Iterable[float]) -> list[int]:
    """Indices of the updates on which ``detector`` reported a drift."""
    return [i for i, x in enumerate(values) if detector.update(float(x)).drift_detected]


@dataclass(frozen=True, slots=True)
class FalseAlarms:
    """Alarms on streams without a change."""

    streams: int
    length: int
    streams_with_alarm: int
    alarms: int

    @property
    def stream_rate(self) -> float:
        """Share of streams with at least one alarm."""
        return self.streams_with_alarm / self.streams

    @property
    def per_1000_values(self) -> float:
        """Alarms per 1000 values."""
        return 1000.0 * self.alarms / (self.streams * self.length)


def false_alarms(make: DetectorFactory, streams: FloatArray) -> FalseAlarms:
    """Feed each row of ``streams`` to a fresh detector and count the alarms."""
    counts = [len(drift_indices(make(), row)) for row in streams]
    return FalseAlarms(
        streams=len(counts),
        length=int(streams.shape[1]),
        streams_with_alarm=sum(1 for c in counts if c),
        alarms=sum(counts),
    )


@dataclass(frozen=True, slots=True)
class DetectionDelays:
    """First alarm at or after the change, over ``streams`` changed streams.

    ``delays`` holds ``first_alarm - change_index`` for the streams where the change was found
    (within the stream); ``early`` counts streams with an alarm before the change.
    """

    streams: int
    shift: float
    delays: tuple[int, ...]
    early: int

    @property
    def missed(self) -> int:
        """Streams whose change was never found."""
        return self.streams - len(self.delays)

    @property
    def median(self) -> float:
        """Median delay in values (NaN when nothing was found)."""
        return float(np.median(self.delays)) if self.delays else math.nan

    @property
    def p90(self) -> float:
        """90th percentile of the delays (NaN when nothing was found)."""
        return float(np.percentile(self.delays, 90)) if self.delays else math.nan


def detection_delays(
    make: DetectorFactory,
    *,
    shift: float,
    streams: int = 200,
    length: int = 2000,
    change_index: int = 1000,
    seed: int = 0,
    phi: float = 0.0,
) -> DetectionDelays:
    """Delays of the first alarm after an abrupt mean shift at ``change_index``."""
    delays: list[int] = []
    early = 0
    for k in range(streams):
        found = drift_indices(make(), shifted_stream(length, change_index, shift, seed + k, phi))
        if any(i < change_index for i in found):
            early += 1
        after = [i for i in found if i >= change_index]
        if after:
            delays.append(after[0] - change_index)
    return DetectionDelays(streams, shift, tuple(delays), early)


def _table(
    detectors: Sequence[tuple[str, DetectorFactory]], streams: int, length: int
) -> list[str]:
    lines = [
        f"{streams} streams x {length} values; shift at {length // 2}; delay = median/p90 "
        "values after the change (missed)",
        f"{'detector':<44} {'FA N(0,1)':>10} {'FA AR(.5)':>10} {'shift 0.5':>14} "
        f"{'shift 1':>14} {'shift 2':>14}",
    ]
    iid = stable_streams(streams, length, seed=1)
    ar = stable_streams(streams, length, seed=2, phi=0.5)
    for name, make in detectors:
        cells = [f"{false_alarms(make, iid).stream_rate:10.3f}"]
        cells.append(f"{false_alarms(make, ar).stream_rate:10.3f}")
        for shift in (0.5, 1.0, 2.0):
            d = detection_delays(
                make, shift=shift, streams=streams, length=length, change_index=length // 2
            )
            cells.append(f"{d.median:5.0f}/{d.p90:4.0f} ({d.missed:2d})")
        lines.append(f"{name:<44} " + " ".join(cells))
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    """Print false-alarm rates and delays of the recommended defaults."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--length", type=int, default=2000)
    args = parser.parse_args(argv)
    detectors: list[tuple[str, DetectorFactory]] = [
        ("PageHinkley() [default]", PageHinkley),
        ("Adwin() [default]", Adwin),
    ]
    for line in _table(detectors, args.streams, args.length):
        sys.stdout.write(line + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Fleet accuracy by horizon over a reporting interval, without per-meter memory."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from math import isfinite
from typing import Self

import numpy as np
import numpy.typing as npt

from streamer.accuracy.errors import AccuracyInputError
from streamer.accuracy.forecast_ledger import LEDGER_LEVELS
from streamer.accuracy.match import Match

#: Share of actuals expected inside ``[p10, p90]``.
NOMINAL_COVERAGE = 0.8

# Running sums per horizon, in this order.
_COUNT, _ABS, _SMAPE, _PIN10, _PIN50, _PIN90, _COVERED, _ERROR, _CAL_COUNT, _CAL_COVERED = range(10)
_FIELDS = 10


def pinball_term(actual: float, quantile: float, level: float) -> float:
    """``max(q (a - f), (q - 1)(a - f))`` (as :func:`streamer.evaluate.metrics.pinball_terms`)."""
    diff = actual - quantile
    return max(level * diff, (level - 1.0) * diff)


@dataclass(frozen=True, slots=True)
class HorizonAccuracy:
    """Accuracy of the matched forecasts of one horizon over the interval.

    ``mae_kwh`` and ``smape_pct`` (0..200) of the point forecast; ``pinball_kwh``: mean pinball
    loss of p10, p50, p90 (the mean of the three levels' means, as
    :func:`streamer.evaluate.metrics.pinball`); ``coverage``: share of actuals in
    ``[p10, p90]`` (nominal 0.8), the model's own band; ``coverage_calibrated``: the same share
    for the band as published after calibration (NaN when no match knew it); ``bias_kwh``: mean
    of ``point - actual``. NaN when ``count`` is 0.
    """

    horizon_slots: int
    count: int
    mae_kwh: float
    smape_pct: float
    pinball_kwh: float
    coverage: float
    bias_kwh: float
    coverage_calibrated: float = math.nan


class FleetAccuracy:
    """Sums per horizon of the matches seen since the last :meth:`reset` (one per worker and
    model version; merge workers' or intervals' with :meth:`merge`). Memory: 8 floats per
    horizon seen, whatever the number of meters.

    >>> fleet = FleetAccuracy().update(Match(1, 2.0, 1.0, 2.0, 3.0, 3.0))
    >>> h1 = fleet.get()[0]
    >>> h1.count, h1.mae_kwh, h1.smape_pct, h1.coverage, h1.bias_kwh, round(h1.pinball_kwh, 4)
    (1, 1.0, 40.0, 1.0, -1.0, 0.2333)
    """

    __slots__ = ("_sums",)

    def __init__(self) -> None:
        self._sums: dict[int, list[float]] = {}

    def _row(self, horizon_slots: int) -> list[float]:
        row = self._sums.get(horizon_slots)
        if row is None:
            if horizon_slots < 1:
                raise AccuracyInputError(f"horizon_slots must be >= 1, got {horizon_slots}")
            row = self._sums[horizon_slots] = [0.0] * _FIELDS
        return row

    @property
    def count(self) -> int:
        """Matches taken over all horizons."""
        return int(sum(row[_COUNT] for row in self._sums.values()))

    def update(self, match: Match) -> Self:
        """Take one match; skipped unless all its values are finite."""
        return self.update_many((match,))

    def update_many(self, matches: Iterable[Match]) -> Self:
        """:meth:`update` for each match (one loop: a batch has thousands of matches)."""
        sums = self._sums
        low, mid, high = LEDGER_LEVELS
        low_below, mid_below, high_below = low - 1.0, mid - 1.0, high - 1.0
        for match in matches:
            a, f, p10, p50, p90 = match.actual, match.point, match.p10, match.p50, match.p90
            if not (
                isfinite(a) and isfinite(f) and isfinite(p10) and isfinite(p50) and isfinite(p90)
            ):
                continue
            row = sums.get(match.horizon_slots)
            if row is None:
                row = self._row(match.horizon_slots)
            # smape_term (rolling_accuracy) and pinball_term inlined: the same floating-point
            # operations in the same order, so the same sums
            error = abs(a - f)
            denominator = abs(a) + abs(f)
            row[_COUNT] += 1.0
            row[_ABS] += error
            row[_SMAPE] += 0.0 if denominator == 0.0 else 200.0 * error / denominator
            diff = a - p10
            row[_PIN10] += max(low * diff, low_below * diff)
            diff = a - p50
            row[_PIN50] += max(mid * diff, mid_below * diff)
            diff = a - p90
            row[_PIN90] += max(high * diff, high_below * diff)
            if p10 <= a <= p90:  # (adding 0.0 to a count changes nothing: skipped)
                row[_COVERED] += 1.0
            row[_ERROR] += f - a
            covered = match.covered_calibrated
            if covered is not None:
                row[_CAL_COUNT] += 1.0
                if covered:
                    row[_CAL_COVERED] += 1.0
        return self

    def update_arrays(
        self,
        horizon_slots: int,
        actual: npt.ArrayLike,
        point: npt.ArrayLike,
        p10: npt.ArrayLike,
        p50: npt.ArrayLike,
        p90: npt.ArrayLike,
    ) -> Self:
        """Take many pairs of one horizon at once (1-D arrays of one length); rows with a
        non-finite value are skipped. Same sums as :meth:`update` row by row (up to the order
        of floating-point additions)."""
        arrays = [np.asarray(v, dtype=np.float64) for v in (actual, point, p10, p50, p90)]
        if any(v.ndim != 1 or v.shape != arrays[0].shape for v in arrays):
            raise AccuracyInputError(
                f"actual, point, p10, p50, p90 must be 1-D of one length, got "
                f"{[v.shape for v in arrays]}"
            )
        ok = np.logical_and.reduce([np.isfinite(v) for v in arrays])
        a, f, q10, q50, q90 = (v[ok] for v in arrays)
        if a.size == 0:
            return self
        row = self._row(horizon_slots)
        denominator = np.abs(a) + np.abs(f)
        with np.errstate(divide="ignore", invalid="ignore"):
            smape = np.where(denominator == 0.0, 0.0, 200.0 * np.abs(a - f) / denominator)
        row[_COUNT] += float(a.size)
        row[_ABS] += float(np.abs(a - f).sum())
        row[_SMAPE] += float(smape.sum())
        for index, q, level in zip(
            (_PIN10, _PIN50, _PIN90), (q10, q50, q90), LEDGER_LEVELS, strict=True
        ):
            diff = a - q
            row[index] += float(np.maximum(level * diff, (level - 1.0) * diff).sum())
        row[_COVERED] += float(np.count_nonzero((q10 <= a) & (a <= q90)))
        row[_ERROR] += float((f - a).sum())
        return self

    def merge(self, other: FleetAccuracy) -> Self:
        """Add ``other``'s sums to this one's (another worker, or another interval)."""
        for horizon, sums in other._sums.items():
            row = self._row(horizon)
            for i, value in enumerate(sums):
                row[i] += value
        return self

    def reset(self) -> None:
        """Start a new interval."""
        self._sums.clear()

    def get(self) -> tuple[HorizonAccuracy, ...]:
        """One :class:`HorizonAccuracy` per horizon seen, by increasing horizon."""
        out = []
        for horizon in sorted(self._sums):
            row = self._sums[horizon]
            n = row[_COUNT]
            out.append(
                HorizonAccuracy(
                    horizon_slots=horizon,
                    count=int(n),
                    mae_kwh=row[_ABS] / n,
                    smape_pct=row[_SMAPE] / n,
                    pinball_kwh=(row[_PIN10] + row[_PIN50] + row[_PIN90]) / (3.0 * n),
                    coverage=row[_COVERED] / n,
                    bias_kwh=row[_ERROR] / n,
                    coverage_calibrated=(
                        row[_CAL_COVERED] / row[_CAL_COUNT] if row[_CAL_COUNT] else math.nan
                    ),
                )
            )
        return tuple(out)

    def metrics(self) -> dict[str, float | None]:
        """Flat ``{"mae_kwh.h1": ..., "coverage.h48": ...}`` for a ``forecast-drift`` record's
        ``metrics`` (``count.h<h>`` included)."""
        out: dict[str, float | None] = {}
        for acc in self.get():
            suffix = f"h{acc.horizon_slots}"
            out[f"count.{suffix}"] = float(acc.count)
            out[f"mae_kwh.{suffix}"] = acc.mae_kwh
            out[f"smape_pct.{suffix}"] = acc.smape_pct
            out[f"pinball_kwh.{suffix}"] = acc.pinball_kwh
            out[f"coverage.{suffix}"] = acc.coverage
            out[f"bias_kwh.{suffix}"] = acc.bias_kwh
            if not math.isnan(acc.coverage_calibrated):
                out[f"coverage_calibrated.{suffix}"] = acc.coverage_calibrated
        return out

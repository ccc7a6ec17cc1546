"""The value a concept-drift detector watches: a forecast residual in units of its spread."""

from __future__ import annotations

import math
from math import isfinite

#: ``p90 - p10`` of a normal distribution is this many standard deviations (2 * 1.2815516).
P10_P90_WIDTH_SD = 2.5631031310892007


def standardized_residual(
    actual_kwh: float,
    p10_kwh: float,
    p50_kwh: float,
    p90_kwh: float,
    *,
    clip: float = 5.0,
    min_spread_kwh: float = 1e-3,
) -> float:
    """``(actual - p50) / sd``, with ``sd = (p90 - p10) / 2.563``, clipped to ``[-clip, clip]``.

    While the forecast is calibrated this is about N(0, 1) whatever the meter's size and the
    time of day, so one set of detector thresholds serves the whole fleet. The spread is
    floored at ``min_spread_kwh`` (a flat zero forecast would divide by 0) and the result is
    clipped so that one wild reading cannot raise an alarm on its own. NaN when any input is
    not finite (detectors skip NaN).

    >>> round(standardized_residual(1.5, 0.5, 1.0, 1.5), 4)
    1.2816
    >>> standardized_residual(100.0, 0.5, 1.0, 1.5)
    5.0
    """
    if not (isfinite(actual_kwh) and isfinite(p10_kwh) and isfinite(p50_kwh) and isfinite(p90_kwh)):
        return math.nan
    sd = max(p90_kwh - p10_kwh, min_spread_kwh) / P10_P90_WIDTH_SD
    z = (actual_kwh - p50_kwh) / sd
    return min(max(z, -clip), clip)

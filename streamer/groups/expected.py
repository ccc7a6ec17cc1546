"""A forecast's expected value from its quantiles: the centre that adds up over a group.

Medians do not add up (the median of a sum is not the sum of the medians, and a household's
half-hour is skewed: mostly a little, sometimes a kettle); expected values do. A group's
forecast is therefore centred on the sum of its members' expected values, estimated here from
the few quantiles a forecaster publishes:

- levels ``(0.1, 0.5, 0.9)``: Swanson's rule ``0.3 p10 + 0.4 p50 + 0.3 p90`` (Hurst, Brown and
  Swanson; a good estimator of the mean of skewed distributions);
- a single level: that quantile (a p50-only forecast is its own centre);
- any other set: the integral of the quantile function over ``(0, 1)``, linear between the
  given levels (the trapezoidal rule) and extrapolated linearly into both tails with the slope
  of the nearest pair of levels. For ``(0.1, 0.5, 0.9)`` that rule would weigh
  ``0.3125, 0.375, 0.3125``: Swanson's rule with a slightly heavier tail.

Both rules are fixed weights on the quantiles, so the expected value is linear in them (a sum of
members' expected values is the expected value of their summed quantiles, level by level).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from streamer.groups.errors import GroupError

SWANSON_LEVELS = (0.1, 0.5, 0.9)
SWANSON_WEIGHTS = (0.3, 0.4, 0.3)

F64 = npt.NDArray[np.float64]


def expected_kwh(quantiles_kwh: npt.ArrayLike, levels: Sequence[float]) -> F64:
    """The expected value of forecasts given by their quantiles at ``levels`` (last axis).

    ``(..., Q) -> (...)``; a row with a NaN quantile gives NaN.

    >>> expected_kwh([[0.2, 0.5, 1.4], [1.0, 1.0, 1.0]], (0.1, 0.5, 0.9)).round(4).tolist()
    [0.68, 1.0]
    >>> expected_kwh([0.7], (0.5,)).tolist()
    0.7
    >>> round(float(expected_kwh([1.0, 2.0, 3.0, 4.0], (0.2, 0.4, 0.6, 0.8))), 6)
    2.5
    """
    weights = expectation_weights(tuple(float(level) for level in levels))
    values = np.asarray(quantiles_kwh, dtype=np.float64)
    if values.ndim == 0 or values.shape[-1] != weights.size:
        raise GroupError(
            f"quantiles of shape {values.shape} do not match {weights.size} levels; the last "
            "axis must hold one value per level"
        )
    out: F64 = np.asarray(values @ weights, dtype=np.float64)
    return out


@lru_cache(maxsize=32)
def expectation_weights(levels: tuple[float, ...]) -> F64:
    """The weights ``w`` (summing to 1) with ``expected = quantiles @ w`` for ``levels``."""
    if not levels or any(not 0.0 < lv < 1.0 for lv in levels):
        raise GroupError(f"quantile levels must lie in (0, 1), got {levels}")
    if any(b <= a for a, b in itertools.pairwise(levels)):
        raise GroupError(f"quantile levels must increase, got {levels}")
    if len(levels) == len(SWANSON_LEVELS) and all(
        math.isclose(a, b, abs_tol=1e-9) for a, b in zip(levels, SWANSON_LEVELS, strict=True)
    ):
        out = np.array(SWANSON_WEIGHTS)
    elif len(levels) == 1:
        out = np.ones(1)
    else:
        out = _trapezoid_weights(np.asarray(levels, dtype=np.float64))
    out.setflags(write=False)
    return out


def _trapezoid_weights(tau: F64) -> F64:
    """Weights of the piecewise-linear quantile function's integral over ``(0, 1)``."""
    w = np.zeros(tau.size)
    gaps = np.diff(tau)
    # trapezoids between consecutive levels
    w[:-1] += gaps / 2.0
    w[1:] += gaps / 2.0
    # lower tail: Q(t) = q0 + (t - t0) * (q1 - q0) / (t1 - t0) over (0, t0)
    low, low_slope = tau[0], 1.0 / gaps[0]
    w[0] += low + low**2 / 2.0 * low_slope
    w[1] -= low**2 / 2.0 * low_slope
    # upper tail: Q(t) = qn + (t - tn) * (qn - qn-1) / (tn - tn-1) over (tn, 1)
    high, high_slope = 1.0 - tau[-1], 1.0 / gaps[-1]
    w[-1] += high + high**2 / 2.0 * high_slope
    w[-2] -= high**2 / 2.0 * high_slope
    return w

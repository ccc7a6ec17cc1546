"""Kolmogorov-Smirnov distance of a sample from a reference histogram, with a p-value."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from streamer.drift.errors import DriftInputError
from streamer.drift.reference_histogram import ReferenceHistogram, check_bins, finite_values

#: Default drift rule on KS: a distance of at least this (an effect size, see ks_statistic).
KS_THRESHOLD = 0.1


def ks_statistic(
    sample: npt.ArrayLike, bin_edges: npt.ArrayLike, ref_proportions: npt.ArrayLike
) -> float:
    """``sup |F_n(x) - F(x)|``: the sample's empirical CDF against the reference CDF.

    ``F`` is the histogram's CDF with values spread evenly inside each bin (piecewise linear,
    0 below the first edge and 1 above the last: see :meth:`ReferenceHistogram.cdf`), so the
    statistic is meant for continuous features; for binary or few-valued features use PSI.
    Non-finite sample values are ignored; NaN when none is left.

    Drift rule (documented default): ``ks >= 0.1`` (:data:`KS_THRESHOLD`). At the sample sizes
    of :class:`~streamer.drift.data_drift_monitor.DataDriftMonitor` (thousands of values) the
    p-value of :func:`ks_pvalue` is tiny for any visible shift, and the values of one worker
    are not independent (overlapping windows, the same meters), so the distance itself is the
    better rule. :func:`ks_critical_value` gives the classical rule when values are
    independent.

    >>> ks_statistic([0.5, 1.5], [0.0, 1.0, 2.0], [0.5, 0.5])
    0.25
    """
    edges, props = check_bins(bin_edges, ref_proportions)
    data = np.sort(finite_values(sample))
    n = data.size
    if n == 0:
        return math.nan
    cdf = ReferenceHistogram(edges, props).cdf(data)
    rank = np.arange(1, n + 1, dtype=np.float64)
    d_plus = float(np.max(rank / n - cdf))
    d_minus = float(np.max(cdf - (rank - 1.0) / n))
    return max(d_plus, d_minus, 0.0)


def _effective_lambda(d: float, n: int) -> float:
    root = math.sqrt(n)
    return (root + 0.12 + 0.11 / root) * d


def kolmogorov_survival(lam: float) -> float:
    """``P(K > lam)`` for the Kolmogorov distribution (limit of ``sqrt(n) D_n``)."""
    if lam <= 0.0:
        return 1.0
    if lam < 1.18:
        # P(K <= lam) = sqrt(2 pi) / lam * sum exp(-(2k-1)^2 pi^2 / (8 lam^2)); converges fast here.
        y = math.exp(-(math.pi**2) / (8.0 * lam * lam))
        total = y + y**9 + y**25 + y**49 + y**81
        return min(max(1.0 - math.sqrt(2.0 * math.pi) / lam * total, 0.0), 1.0)
    x = math.exp(-2.0 * lam * lam)
    total = x - x**4 + x**9 - x**16 + x**25
    return min(max(2.0 * total, 0.0), 1.0)


def ks_pvalue(statistic: float, n: int) -> float:
    """Asymptotic p-value of a one-sample KS distance ``statistic`` from ``n`` independent
    values, with Stephens' small-sample correction ``lambda = (sqrt(n) + 0.12 + 0.11 /
    sqrt(n)) D``: within 0.025 of the exact p-value from n = 10 on, and within 5 % of it where
    it is between 1e-4 and 0.1 (checked against SciPy). NaN for NaN input or ``n < 1``."""
    if n < 1 or not math.isfinite(statistic):
        return math.nan
    return kolmogorov_survival(_effective_lambda(statistic, n))


def ks_critical_value(n: int, alpha: float = 0.01) -> float:
    """The KS distance that :func:`ks_pvalue` puts at ``alpha`` for ``n`` independent values:
    ``c(alpha) / (sqrt(n) + 0.12 + 0.11 / sqrt(n))`` with ``c = sqrt(-ln(alpha / 2) / 2)``."""
    if n < 1:
        raise DriftInputError(f"n must be >= 1, got {n}")
    if not 0.0 < alpha < 1.0:
        raise DriftInputError(f"alpha must lie in (0, 1), got {alpha}")
    root = math.sqrt(n)
    return math.sqrt(-math.log(alpha / 2.0) / 2.0) / (root + 0.12 + 0.11 / root)

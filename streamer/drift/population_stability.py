"""Population stability index of a sample against a reference histogram."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from streamer.drift.errors import DriftInputError
from streamer.drift.reference_histogram import bin_proportions, check_bins

#: Conventional reading of PSI: below 0.1 stable, 0.1-0.25 a moderate shift, above 0.25 major.
PSI_MODERATE = 0.1
PSI_MAJOR = 0.25


def psi(
    sample: npt.ArrayLike,
    bin_edges: npt.ArrayLike,
    ref_proportions: npt.ArrayLike,
    eps: float = 1e-4,
) -> float:
    """``sum((q - p) * ln(q / p))`` over the bins, ``q`` the sample's shares, ``p`` the reference's.

    The sample is binned like the reference (outside values go to the end bins, non-finite
    values are ignored). Empty bins on either side are counted as ``eps`` (no renormalisation),
    so one bin that is empty on one side adds at most about ``share * ln(share / eps)``.
    NaN when the sample has no finite value. Symmetric in ``p`` and ``q``, >= 0.

    >>> round(psi([0.1, 0.2, 0.3, 1.5], [0.0, 1.0, 2.0], [0.5, 0.5]), 6)  # 0.25 ln 3
    0.274653
    """
    if not (math.isfinite(eps) and eps > 0.0):
        raise DriftInputError(f"eps must be finite and > 0, got {eps}")
    edges, p = check_bins(bin_edges, ref_proportions)
    q = bin_proportions(sample, edges)
    if np.isnan(q).any():
        return math.nan
    p = np.maximum(p, eps)
    q = np.maximum(q, eps)
    return float(np.sum((q - p) * np.log(q / p)))

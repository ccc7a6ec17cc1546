"""A reference distribution given as a histogram: bin edges and the share of values per bin."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np
import numpy.typing as npt

from streamer.drift.errors import DriftInputError

FloatArray = npt.NDArray[np.float64]

#: Tolerance on ``sum(proportions) == 1`` (the model card rounds its proportions).
SUM_TOLERANCE = 1e-4


class HistogramLike(Protocol):
    """Anything with ``bin_edges`` and ``proportions``, such as the model card's
    ``FeatureReference``."""

    @property
    def bin_edges(self) -> Sequence[float]: ...

    @property
    def proportions(self) -> Sequence[float]: ...


def finite_values(values: npt.ArrayLike) -> FloatArray:
    """The finite values of ``values``, flattened, as float64."""
    data = np.asarray(values, dtype=np.float64).ravel()
    out: FloatArray = data[np.isfinite(data)]
    return out


def check_bins(
    bin_edges: npt.ArrayLike, proportions: npt.ArrayLike
) -> tuple[FloatArray, FloatArray]:
    """Edges and proportions as float64 arrays; raises DriftInputError unless the edges are
    finite and strictly increasing (at least 2) and the proportions, one per bin, are >= 0 and
    sum to 1 (within :data:`SUM_TOLERANCE`)."""
    edges = np.asarray(bin_edges, dtype=np.float64)
    props = np.asarray(proportions, dtype=np.float64)
    if edges.ndim != 1 or edges.size < 2 or not np.isfinite(edges).all():
        raise DriftInputError(
            f"bin edges must be a 1-D array of at least 2 finite values, got shape {edges.shape}"
        )
    if (np.diff(edges) <= 0).any():
        raise DriftInputError("bin edges must be strictly increasing; sort and deduplicate them")
    if props.shape != (edges.size - 1,):
        raise DriftInputError(
            f"{props.size} proportions for {edges.size - 1} bins; pass one proportion per bin "
            "(len(edges) - 1)"
        )
    if not np.isfinite(props).all() or (props < 0).any():
        raise DriftInputError("proportions must be finite and >= 0")
    total = float(props.sum())
    if not math.isclose(total, 1.0, abs_tol=SUM_TOLERANCE):
        raise DriftInputError(f"proportions must sum to 1, they sum to {total:.6f}")
    return edges, props


def bin_proportions(values: npt.ArrayLike, bin_edges: FloatArray) -> FloatArray:
    """Share of the finite ``values`` in each bin ``[e[i], e[i+1])`` (last bin closed).

    Values below the first edge count in the first bin and values above the last edge in the
    last bin (as the model card's reference does). NaN per bin when no value is finite.
    """
    data = finite_values(values)
    bins = bin_edges.size - 1
    if data.size == 0:
        return np.full(bins, np.nan)
    index = np.clip(np.searchsorted(bin_edges, data, side="right") - 1, 0, bins - 1)
    counts = np.bincount(index, minlength=bins).astype(np.float64)
    out: FloatArray = counts / data.size
    return out


@dataclass(frozen=True, slots=True, eq=False)
class ReferenceHistogram:
    """Bin ``i`` is ``[edges[i], edges[i+1])`` (the last one closed) and held
    ``proportions[i]`` of the reference values. Arrays are read-only float64 copies.

    >>> ref = ReferenceHistogram.from_sample([0.0, 1.0, 2.0, 3.0], bins=2, strategy="uniform")
    >>> ref.edges.tolist(), ref.proportions.tolist()
    ([0.0, 1.5, 3.0], [0.5, 0.5])
    >>> ref.cdf([0.75, 3.0, 9.0]).tolist()
    [0.25, 1.0, 1.0]
    """

    edges: FloatArray
    proportions: FloatArray

    def __post_init__(self) -> None:
        edges, props = check_bins(self.edges, self.proportions)
        edges = edges.copy()
        props = props.copy()
        edges.setflags(write=False)
        props.setflags(write=False)
        object.__setattr__(self, "edges", edges)
        object.__setattr__(self, "proportions", props)

    @property
    def bins(self) -> int:
        """Number of bins."""
        return int(self.edges.size - 1)

    @classmethod
    def from_reference(cls, reference: HistogramLike) -> ReferenceHistogram:
        """From a model card ``FeatureReference`` (or anything with the same two fields)."""
        return cls(
            np.asarray(reference.bin_edges, dtype=np.float64),
            np.asarray(reference.proportions, dtype=np.float64),
        )

    @classmethod
    def from_sample(
        cls,
        values: npt.ArrayLike,
        bins: int = 20,
        *,
        strategy: Literal["quantile", "uniform"] = "quantile",
    ) -> ReferenceHistogram:
        """The histogram of the finite ``values``.

        ``quantile``: edges at the 0, 1/bins, ..., 1 quantiles (equal-frequency bins; repeated
        edges are merged). A sample with at most ``bins`` distinct values gets one bin per
        value instead, edges half-way between them (a binary feature gets ``[-0.5, 0.5, 1.5]``:
        quantile edges would give it the single bin ``[0, 1]`` and PSI could never move).
        ``uniform``: ``bins`` equal-width bins from min to max. A constant sample gets the
        single bin ``[v - 0.5, v + 0.5]``.
        """
        data = finite_values(values)
        if data.size == 0:
            raise DriftInputError("cannot build a reference histogram without a finite value")
        if bins < 1:
            raise DriftInputError(f"bins must be >= 1, got {bins}")
        distinct = np.unique(data)
        if distinct.size == 1:
            edges = np.array([distinct[0] - 0.5, distinct[0] + 0.5])
        elif strategy == "quantile" and distinct.size <= bins:
            half_gap = float(np.diff(distinct).min()) / 2.0
            middles = (distinct[:-1] + distinct[1:]) / 2.0
            edges = np.concatenate(([distinct[0] - half_gap], middles, [distinct[-1] + half_gap]))
        elif strategy == "quantile":
            edges = np.unique(np.quantile(data, np.linspace(0.0, 1.0, bins + 1)))
        elif strategy == "uniform":
            edges = np.linspace(distinct[0], distinct[-1], bins + 1)
        else:
            raise DriftInputError(f"strategy must be 'quantile' or 'uniform', got {strategy!r}")
        return cls(edges, bin_proportions(data, edges))

    def proportions_of(self, values: npt.ArrayLike) -> FloatArray:
        """Share of the finite ``values`` per bin (see :func:`bin_proportions`)."""
        return bin_proportions(values, self.edges)

    def cdf(self, x: npt.ArrayLike) -> FloatArray:
        """The reference CDF, values spread evenly inside each bin: piecewise linear through
        ``(edges[i], sum(proportions[:i]))``, 0 below the first edge, 1 above the last."""
        cumulative = np.concatenate(([0.0], np.cumsum(self.proportions)))
        cumulative /= cumulative[-1]
        out: FloatArray = np.interp(np.asarray(x, dtype=np.float64), self.edges, cumulative)
        return out

"""Reference distributions of model inputs (histograms), stored in the card for drift checks."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from streamer.modelrepo.card import FeatureReference

FloatArray = npt.NDArray[np.float64]


def histogram_proportions(values: npt.ArrayLike, bin_edges: npt.ArrayLike) -> FloatArray:
    """Share of the finite ``values`` in each bin of ``bin_edges``.

    Values below the first edge count in the first bin, above the last edge in the last bin,
    so the shares always sum to 1 (all zeros when there is no finite value).
    """
    edges = np.asarray(bin_edges, dtype=np.float64)
    data = np.asarray(values, dtype=np.float64).ravel()
    data = data[np.isfinite(data)]
    bins = edges.size - 1
    if data.size == 0:
        return np.zeros(bins)
    index = np.clip(np.searchsorted(edges, data, side="right") - 1, 0, bins - 1)
    counts = np.bincount(index, minlength=bins).astype(np.float64)
    out: FloatArray = counts / data.size
    return out


def feature_histograms(
    inputs: npt.ArrayLike,
    feature_names: Sequence[str],
    *,
    bins: int = 20,
    decimals: int = 6,
) -> tuple[FeatureReference, ...]:
    """One :class:`FeatureReference` per feature of ``inputs`` (``(..., F)``).

    Edges are the 0th..100th percentiles of each feature in ``bins`` steps (duplicates removed,
    so a binary feature gets two bins); proportions are rounded to ``decimals``.
    """
    data = np.asarray(inputs, dtype=np.float64)
    flat = data.reshape(-1, data.shape[-1])
    if flat.shape[1] != len(feature_names):
        raise ValueError(f"inputs have {flat.shape[1]} features, names list {len(feature_names)}")
    out = []
    for k, name in enumerate(feature_names):
        column = flat[:, k]
        column = column[np.isfinite(column)]
        if column.size == 0:
            column = np.zeros(1)
        edges = np.unique(np.round(np.quantile(column, np.linspace(0.0, 1.0, bins + 1)), decimals))
        if edges.size < 2:
            edges = np.array([edges[0] - 0.5, edges[0] + 0.5])
        props = np.round(histogram_proportions(column, edges), decimals)
        props[np.argmax(props)] += 1.0 - props.sum()  # sum 1 despite the rounding
        props = np.round(props, decimals)
        out.append(
            FeatureReference(
                feature=name,
                bin_edges=tuple(float(e) for e in edges),
                proportions=tuple(float(max(p, 0.0)) for p in props),
            )
        )
    return tuple(out)

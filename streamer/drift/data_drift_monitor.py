"""Data drift of the model inputs: a sample of recent inputs against the model card's
reference histograms, PSI and KS per feature."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Self

import numpy as np
import numpy.typing as npt

from streamer.drift.errors import DriftConfigError, DriftInputError
from streamer.drift.kolmogorov_smirnov import KS_THRESHOLD, ks_pvalue, ks_statistic
from streamer.drift.population_stability import psi
from streamer.drift.reference_histogram import ReferenceHistogram, finite_values
from streamer.drift.uniform_reservoir import UniformReservoir

#: Default drift rule on PSI (the conventional "moderate to major" boundary is 0.1-0.25).
PSI_THRESHOLD = 0.2


@dataclass(frozen=True, slots=True)
class FeatureDrift:
    """One feature's sample against its reference.

    ``ks`` and ``ks_pvalue`` are NaN when the reference has fewer than ``ks_min_bins`` bins (a
    binary or few-valued feature, where a CDF with values spread inside bins is meaningless).
    ``drifted``: ``psi >= psi_threshold`` or ``ks >= ks_threshold``. ``sample_size`` counts the
    finite values compared (0: all statistics NaN, not drifted); the p-value takes
    ``min(sample_size, rows seen)`` as its ``n``, since a sample with replacement from fewer
    rows than its size repeats them.
    """

    feature: str
    psi: float
    ks: float
    ks_pvalue: float
    sample_size: int
    drifted: bool


@dataclass(frozen=True, slots=True)
class DataDriftReport:
    """All monitored features (in the monitor's order) and the rows offered in the interval."""

    features: tuple[FeatureDrift, ...]
    rows_seen: int

    @property
    def drifted_features(self) -> tuple[str, ...]:
        """Names of the features whose drift rule fired."""
        return tuple(f.feature for f in self.features if f.drifted)

    @property
    def max_psi(self) -> float:
        """Largest PSI over the features (NaN when none has a value)."""
        values = [f.psi for f in self.features if math.isfinite(f.psi)]
        return max(values) if values else math.nan

    def metrics(self) -> dict[str, float | None]:
        """Flat ``{"psi.<feature>": ..., "ks.<feature>": ...}`` for a ``forecast-drift``
        record's ``metrics`` (NaN as None, as JSON has no NaN)."""
        out: dict[str, float | None] = {}
        for f in self.features:
            out[f"psi.{f.feature}"] = f.psi if math.isfinite(f.psi) else None
            out[f"ks.{f.feature}"] = f.ks if math.isfinite(f.ks) else None
        out["rows_seen"] = float(self.rows_seen)
        return out


class DataDriftMonitor:
    """Keeps a bounded random sample of the model inputs seen since the last report and, on
    :meth:`report`, compares each feature with its reference.

    One per worker (not per meter, not persisted: after a restart or a rebalance the next
    report covers a shorter interval). Memory is fixed: ``capacity`` rows of the monitored
    features as float32 (32 KiB with the defaults and 2 monitored features).

    What to feed: :meth:`update` takes the model input tensor ``(..., F)`` whose last axis is
    ``feature_names`` (e.g. ``(B, L, F)`` for a batch of windows). The card's references were
    computed over every step of the training windows, so feed whole windows: a window spans
    ``L`` slots (a week at 336 x 30 min), so its time-of-day mix matches the reference, which
    the newest step of each window alone would not (a report over one hour would see one time
    of day). The sample is uniform over all rows offered since the last report, whatever the
    batch sizes, and an update costs ``O(capacity)`` (:class:`UniformReservoir`).

    Features without a reference are ignored. The time and calendar features are functions of
    the clock; their PSI tells only whether the sample covered whole days and weeks, so the
    useful ones to watch are ``load_scaled`` (and ``is_missing`` through PSI).
    """

    __slots__ = (
        "_columns",
        "_ks_min_bins",
        "_ks_threshold",
        "_names",
        "_psi_eps",
        "_psi_threshold",
        "_references",
        "_reservoir",
        "_width",
    )

    def __init__(
        self,
        feature_names: Sequence[str],
        references: Mapping[str, ReferenceHistogram],
        *,
        capacity: int = 4096,
        seed: int = 0,
        psi_threshold: float = PSI_THRESHOLD,
        ks_threshold: float = KS_THRESHOLD,
        ks_min_bins: int = 5,
        psi_eps: float = 1e-4,
    ) -> None:
        if len(set(feature_names)) != len(feature_names):
            raise DriftConfigError(f"duplicate feature names in {list(feature_names)}")
        monitored = [(i, name) for i, name in enumerate(feature_names) if name in references]
        if not monitored:
            raise DriftConfigError(
                f"no reference for any of the features {list(feature_names)} (references: "
                f"{sorted(references)}); the model card's 'reference' list names the features"
            )
        if not (psi_threshold > 0 and ks_threshold > 0 and ks_min_bins >= 1):
            raise DriftConfigError(
                "psi_threshold and ks_threshold must be > 0 and ks_min_bins >= 1, got "
                f"{psi_threshold}, {ks_threshold}, {ks_min_bins}"
            )
        self._width = len(feature_names)
        self._columns = np.array([i for i, _ in monitored], dtype=np.intp)
        self._names = tuple(name for _, name in monitored)
        self._references = {name: references[name] for name in self._names}
        self._reservoir = UniformReservoir(capacity, len(self._names), seed=seed)
        self._psi_threshold = psi_threshold
        self._ks_threshold = ks_threshold
        self._ks_min_bins = ks_min_bins
        self._psi_eps = psi_eps

    @property
    def features(self) -> tuple[str, ...]:
        """The monitored features, in input order."""
        return self._names

    @property
    def rows_seen(self) -> int:
        """Input rows (time steps) offered since the last reset."""
        return self._reservoir.rows_seen

    def update(self, inputs: npt.ArrayLike) -> Self:
        """Offer model inputs ``(..., F)`` (F = ``len(feature_names)``); returns ``self``."""
        data = np.asarray(inputs)
        if data.ndim < 1 or data.shape[-1] != self._width:
            raise DriftInputError(
                f"inputs must have {self._width} features on the last axis (the monitor's "
                f"feature_names), got shape {data.shape}"
            )
        self._reservoir.add(data.reshape(-1, self._width), self._columns)
        return self

    def report(self, *, reset: bool = True) -> DataDriftReport:
        """PSI and KS per monitored feature over the sample; starts a new interval when
        ``reset``."""
        sample = self._reservoir.sample()
        distinct = self._reservoir.effective_size
        out = []
        for j, name in enumerate(self._names):
            out.append(self._feature(name, sample[:, j], distinct))
        report = DataDriftReport(tuple(out), self._reservoir.rows_seen)
        if reset:
            self._reservoir.reset()
        return report

    def _feature(self, name: str, column: npt.NDArray[np.float32], distinct: int) -> FeatureDrift:
        ref = self._references[name]
        values = finite_values(column)
        n = int(values.size)
        if n == 0:
            return FeatureDrift(name, math.nan, math.nan, math.nan, 0, False)
        value_psi = psi(values, ref.edges, ref.proportions, self._psi_eps)
        value_ks = math.nan
        p_value = math.nan
        if ref.bins >= self._ks_min_bins:
            value_ks = ks_statistic(values, ref.edges, ref.proportions)
            p_value = ks_pvalue(value_ks, min(n, distinct))
        drifted = value_psi >= self._psi_threshold or (
            math.isfinite(value_ks) and value_ks >= self._ks_threshold
        )
        return FeatureDrift(name, value_psi, value_ks, p_value, n, drifted)

    def reset(self) -> None:
        """Forget the sample."""
        self._reservoir.reset()

"""Data drift of a model's inputs: per time step (the features) and per window (its scale).

The LSTM sees each window divided by its own scale (mean |kWh|), so a meter whose load doubles
gives the same ``load_scaled`` values as before: per-step references cannot see a level shift.
The window's scale can, so the card also keeps a reference for it, ``window_scale_kwh``, and
this monitor samples it once per window beside the per-step sample of the features.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt

from streamer.drift.data_drift_monitor import DataDriftMonitor, DataDriftReport
from streamer.drift.reference_histogram import ReferenceHistogram
from streamer.modelrepo.card import WINDOW_SCALE_FEATURE


class InputDriftMonitor:
    """Per-step features and per-window scale against the card's references, one report."""

    def __init__(
        self,
        feature_names: Sequence[str],
        references: Mapping[str, ReferenceHistogram],
        *,
        psi_threshold: float,
        ks_threshold: float,
    ) -> None:
        steps = {k: v for k, v in references.items() if k in feature_names}
        windows = {k: v for k, v in references.items() if k == WINDOW_SCALE_FEATURE}
        self.steps = (
            DataDriftMonitor(
                feature_names, steps, psi_threshold=psi_threshold, ks_threshold=ks_threshold
            )
            if steps
            else None
        )
        self.windows = (
            DataDriftMonitor(
                (WINDOW_SCALE_FEATURE,),
                windows,
                psi_threshold=psi_threshold,
                ks_threshold=ks_threshold,
                seed=1,
            )
            if windows
            else None
        )

    @property
    def features(self) -> tuple[str, ...]:
        return tuple(
            name for m in (self.steps, self.windows) if m is not None for name in m.features
        )

    @property
    def rows_seen(self) -> int:
        """Time steps offered since the last report (windows when only the scale is watched)."""
        if self.steps is not None:
            return self.steps.rows_seen
        return 0 if self.windows is None else self.windows.rows_seen

    def update(self, inputs: npt.ArrayLike, scale_kwh: npt.ArrayLike) -> None:
        """One batch of model inputs ``(B, L, F)`` and the windows' scales ``(B,)``."""
        if self.steps is not None:
            self.steps.update(inputs)
        if self.windows is not None:
            self.windows.update(np.asarray(scale_kwh, dtype=np.float64).reshape(-1, 1))

    def report(self, *, reset: bool = True) -> DataDriftReport:
        rows = self.rows_seen
        parts = [m.report(reset=reset) for m in (self.steps, self.windows) if m is not None]
        return DataDriftReport(tuple(f for p in parts for f in p.features), rows)

"""Counters of what happened while fitting per-row statistical models."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass(slots=True)
class FitStats:
    """Running totals for one forecaster instance (ETS, SARIMA).

    Warnings raised by statsmodels inside a fit are captured, never re-emitted, and counted
    here by category name (``ConvergenceWarning``, ``EstimationWarning``, ...); so are
    per-row exceptions, by exception type. The worker can export these as metrics.
    """

    rows_fitted: int = 0
    rows_degenerate: int = 0
    rows_failed: int = 0
    rows_skipped_short: int = 0
    fit_seconds: float = 0.0
    warnings: Counter[str] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)

    @property
    def warnings_total(self) -> int:
        """All captured warnings."""
        return sum(self.warnings.values())

    def as_dict(self) -> dict[str, object]:
        """A JSON-friendly snapshot."""
        return {
            "rows_fitted": self.rows_fitted,
            "rows_degenerate": self.rows_degenerate,
            "rows_failed": self.rows_failed,
            "rows_skipped_short": self.rows_skipped_short,
            "fit_seconds": self.fit_seconds,
            "warnings": dict(self.warnings),
            "failures": dict(self.failures),
        }

"""One row of a backtest table: every metric for one model over some horizon slots."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class MetricSet:
    """Accuracy over ``n_pairs`` (actual, forecast) pairs. Units: kWh unless named.

    ``mape_percent`` skips zero actuals (``mape_skipped_zero`` of them); ``smape_percent`` is
    on the 0..200 scale; ``mase`` is scaled per meter by its in-sample weekly seasonal-naive
    MAE (meters whose scale is 0 are left out); ``pinball_kwh`` is the mean over the levels
    of ``pinball_per_level_kwh``; ``coverage`` is the share of actuals inside the outermost
    quantiles, to compare with ``nominal_coverage``. NaN where undefined.
    """

    n_pairs: int
    mae_kwh: float
    rmse_kwh: float
    mape_percent: float
    mape_skipped_zero: int
    smape_percent: float
    mase: float
    pinball_kwh: float
    pinball_per_level_kwh: tuple[float, ...]
    coverage: float
    nominal_coverage: float

    def to_json(self) -> dict[str, object]:
        """Plain JSON types; NaN becomes ``None``."""
        return {
            "n_pairs": self.n_pairs,
            "mae_kwh": json_float(self.mae_kwh),
            "rmse_kwh": json_float(self.rmse_kwh),
            "mape_percent": json_float(self.mape_percent),
            "mape_skipped_zero": self.mape_skipped_zero,
            "smape_percent": json_float(self.smape_percent),
            "mase": json_float(self.mase),
            "pinball_kwh": json_float(self.pinball_kwh),
            "pinball_per_level_kwh": [json_float(v) for v in self.pinball_per_level_kwh],
            "coverage": json_float(self.coverage),
            "nominal_coverage": json_float(self.nominal_coverage),
        }


def json_float(value: float) -> float | None:
    """``value``, or ``None`` when it is NaN or infinite (JSON has no NaN)."""
    return float(value) if math.isfinite(value) else None

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

    ``nrmse`` is RMSE divided by the mean actual over the same pairs. ``crps_kwh`` is CRPS
    approximated from the model's quantiles: twice ``pinball_kwh`` (the mean pinball loss over
    the levels; see :func:`~streamer.evaluate.metrics.crps_from_quantiles`).

    The metrics above are pooled over all pairs, so big or long-held meters weigh more. The
    ``*_per_meter`` ones are the per-meter mean: each meter's own MAE, NRMSE, MASE and coverage,
    then their mean over the ``meters_scored`` meters that have the metric.
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
    nrmse: float = math.nan
    crps_kwh: float = math.nan
    meters_scored: int = 0
    mae_kwh_per_meter: float = math.nan
    nrmse_per_meter: float = math.nan
    mase_per_meter: float = math.nan
    coverage_per_meter: float = math.nan

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
            "nrmse": json_float(self.nrmse),
            "crps_kwh": json_float(self.crps_kwh),
            "per_meter_mean": {
                "meters": self.meters_scored,
                "mae_kwh": json_float(self.mae_kwh_per_meter),
                "nrmse": json_float(self.nrmse_per_meter),
                "mase": json_float(self.mase_per_meter),
                "coverage": json_float(self.coverage_per_meter),
            },
        }


def json_float(value: float) -> float | None:
    """``value``, or ``None`` when it is NaN or infinite (JSON has no NaN)."""
    return float(value) if math.isfinite(value) else None

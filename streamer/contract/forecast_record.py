"""``meter-forecasts``: one message per forecast issued for a meter (key = meter id).

::

    {"forecast_id": "m-000042:1795430000000:seasonal_naive_week:1",
     "meter_id": "m-000042", "issued_at": "2026-11-23T10:30:01.250Z",
     "origin_ts": "2026-11-23T10:30:00Z", "model_name": "seasonal_naive_week",
     "model_version": "1", "fallback": false, "resolution_seconds": 1800,
     "observed_fraction": 0.98,
     "horizon_ts": ["2026-11-23T11:00:00Z", ...],            # end of each forecast slot
     "point_kwh": [0.41, ...],
     "quantiles_kwh": {"p10": [...], "p50": [...], "p90": [...]}}

``forecast_id`` is the same for a re-issued forecast of the same origin and model, so that a
consumer can drop duplicates under at-least-once processing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from streamer.timeutil import format_ts


@dataclass(frozen=True, slots=True)
class ForecastRecord:
    meter_id: str
    issued_ms: int
    origin_ms: int
    model_name: str
    model_version: str
    fallback: bool
    resolution_seconds: int
    observed_fraction: float
    horizon_end_ms: npt.NDArray[np.int64]
    point_kwh: npt.NDArray[np.float64]
    quantiles_kwh: npt.NDArray[np.float64]  # (H, Q)
    quantile_levels: Sequence[float]

    @property
    def forecast_id(self) -> str:
        return f"{self.meter_id}:{self.origin_ms}:{self.model_name}:{self.model_version}"

    def to_json(self) -> dict[str, Any]:
        return {
            "forecast_id": self.forecast_id,
            "meter_id": self.meter_id,
            "issued_at": format_ts(self.issued_ms),
            "origin_ts": format_ts(self.origin_ms),
            "model_name": self.model_name,
            "model_version": self.model_version,
            "fallback": self.fallback,
            "resolution_seconds": self.resolution_seconds,
            "observed_fraction": round(float(self.observed_fraction), 4),
            "horizon_ts": [format_ts(int(ts)) for ts in self.horizon_end_ms],
            "point_kwh": _rounded(self.point_kwh),
            "quantiles_kwh": {
                quantile_name(level): _rounded(self.quantiles_kwh[:, i])
                for i, level in enumerate(self.quantile_levels)
            },
        }

    def to_bytes(self) -> bytes:
        return orjson.dumps(self.to_json())


def quantile_name(level: float) -> str:
    """0.1 -> ``p10``; 0.975 -> ``p97.5``."""
    pct = round(level * 100, 4)
    return f"p{int(pct)}" if pct == int(pct) else f"p{pct}"


def _rounded(values: npt.NDArray[np.float64]) -> list[float | None]:
    return [None if not np.isfinite(v) else round(float(v), 6) for v in values]

"""The JSON of a group forecast (``group-forecasts``) and of a realised group total
(``forecast-drift``, scope ``group``)::

    {"forecast_id": "feeder-07:1795430000000", "group_id": "feeder-07", "kind": "feeder",
     "issued_at": "...", "origin_ts": "2026-11-23T10:30:00Z", "resolution_seconds": 1800,
     "members": 100, "reported": 97, "filled": 3, "missing": 0, "calibrated": true,
     "horizon_ts": ["2026-11-23T11:00:00Z", ...], "mean_kwh": [...],
     "quantiles_kwh": {"p10": [...], "p50": [...], "p90": [...]}, "members_sum_kwh": [...]}

``mean_kwh`` is the published centre: the sum of the members' expected values
(``members_sum_kwh``) as the group's calibration corrects it; the quantiles are those of the
group total, calibrated against its realised totals. ``reported + filled + missing = members``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import orjson

from streamer.groups.group_state import IssuedGroupForecast, RealisedTotal
from streamer.timeutil import format_ts, format_ts_array


def _numbers(values: np.ndarray) -> list[float | None]:
    return [None if not np.isfinite(v) else round(float(v), 4) for v in values]


def _level_name(level: float) -> str:
    return f"p{round(level * 100):d}" if float(level * 100).is_integer() else f"p{level * 100:g}"


def group_forecast_json(
    forecast: IssuedGroupForecast,
    *,
    resolution_seconds: int,
    levels: Sequence[float],
    issued_ms: int,
) -> bytes:
    res_ms = resolution_seconds * 1000
    origin_ms = forecast.origin_slot * res_ms
    horizon = forecast.members_sum_kwh.shape[0]
    ends = origin_ms + res_ms * np.arange(1, horizon + 1, dtype=np.int64)
    band = forecast.band
    body = {
        "forecast_id": f"{forecast.group_id}:{origin_ms}",
        "group_id": forecast.group_id,
        "kind": forecast.kind,
        "issued_at": format_ts(issued_ms),
        "origin_ts": format_ts(origin_ms),
        "resolution_seconds": resolution_seconds,
        "members": forecast.members,
        "reported": forecast.reported,
        "filled": forecast.filled,
        "missing": forecast.missing,
        "calibrated": bool(np.all(band.calibrated)),
        "horizon_ts": format_ts_array(ends),
        "mean_kwh": _numbers(band.mean_kwh),
        "quantiles_kwh": {
            _level_name(level): _numbers(band.quantiles_kwh[:, k]) for k, level in enumerate(levels)
        },
        "members_sum_kwh": _numbers(forecast.members_sum_kwh),
    }
    return orjson.dumps(body)


def realised_json(
    total: RealisedTotal, *, resolution_seconds: int, at_ms: int, model: tuple[str, str]
) -> bytes:
    """A ``forecast-drift`` record: the slot's realised total and the forecasts' errors."""
    metrics: dict[str, float | None] = {
        "actual_kwh": round(total.total_kwh, 4),
        "members": float(total.members),
        "read": float(total.read),
    }
    for step, forecast, actual in total.pairs:
        metrics[f"error_kwh.h{step}"] = round(forecast - actual, 4)
    return orjson.dumps(
        {
            "scope": "group",
            "kind": "group_accuracy",
            "group_id": total.group_id,
            "group_kind": total.kind,
            "at": format_ts(at_ms),
            "slot_ts": format_ts(total.slot * resolution_seconds * 1000),
            "model_name": model[0],
            "model_version": model[1],
            "metrics": metrics,
        }
    )

"""The answer of ``POST /v1/forecast``: the ``meter-forecasts`` records, one per series.

::

    {"forecasts": [{...the meter-forecasts record..., "fallback_reason": null}, ...]}

Each record is exactly what ``meter-forecasts`` carries for a meter with that window (the
series' ``id`` as ``meter_id``), plus ``fallback_reason``: ``null`` when the requested model
answered, else why its fallback did (``insufficient_history``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import orjson

from streamer.contract.forecast_record import ForecastRecord, encode_forecasts
from streamer.serving.errors import RequestRejected
from streamer.serving.request import SeriesWindow
from streamer.serving.series_forecast import RowForecast


def forecast_records(
    series: Sequence[SeriesWindow],
    rows: Sequence[RowForecast],
    issued_ms: int,
    resolution_seconds: int,
) -> list[ForecastRecord]:
    """The records of ``series`` from their ``rows``; 422 when no model could serve one."""
    res_ms = resolution_seconds * 1000
    records: list[ForecastRecord] = []
    for index, (window, row) in enumerate(zip(series, rows, strict=True)):
        if row.model is None or row.point_kwh is None or row.quantiles_kwh is None:
            raise RequestRejected(
                422,
                "no_valid_forecast",
                f"series[{index}]: neither the model nor its fallback could forecast it "
                f"({window.observed} values in its window); send a longer history",
            )
        steps = np.arange(1, row.point_kwh.shape[0] + 1, dtype=np.int64) * res_ms
        records.append(
            ForecastRecord(
                window.series_id,
                issued_ms,
                window.end_ms,
                row.model.name,
                row.model.version,
                row.fallback_reason is not None,
                resolution_seconds,
                window.observed / window.window_kwh.shape[0],
                window.end_ms + steps,
                row.point_kwh,
                row.quantiles_kwh,
                row.model.quantile_levels,
            )
        )
    return records


def encode_response(records: Sequence[ForecastRecord], rows: Sequence[RowForecast]) -> bytes:
    """``{"forecasts": [...]}`` with each record's ``fallback_reason`` added."""
    parts = []
    for encoded, row in zip(encode_forecasts(records), rows, strict=True):
        # a record is one JSON object: its reason goes in before the closing brace
        parts.append(
            encoded[:-1] + b',"fallback_reason":' + orjson.dumps(row.fallback_reason) + b"}"
        )
    return b'{"forecasts":[' + b",".join(parts) + b"]}"

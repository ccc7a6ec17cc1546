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

Serialisation is on the worker's hot path (one record per meter per closed slot), so
:meth:`ForecastRecord.to_bytes` avoids per-value Python work: the horizon timestamps are
formatted once per distinct horizon (all meters of a slot share it) and kept as a pre-encoded
JSON fragment, and the numbers are rounded in one numpy pass and written by orjson straight
from the array. The bytes are identical to ``orjson.dumps(record.to_json())``.

A batch's records are serialised together by :func:`encode_forecasts` (the same bytes as
``to_bytes`` of each): the numbers of all records are rounded in one numpy pass, and the pieces
records share (issue time, origins, horizons) are encoded once per batch; what remains per
record is one orjson call, most of it writing the 192 numbers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import orjson

from streamer.timeutil import format_ts, format_ts_array

_NUMPY: Final = orjson.OPT_SERIALIZE_NUMPY

F64 = npt.NDArray[np.float64]

#: Decimal places of the published kWh values.
KWH_DECIMALS: Final = 6
_SCALE: Final = 10.0**KWH_DECIMALS
#: Beyond this, ``value * 10**6`` has no fractional bits: numpy rounding is not used.
_EXACT_LIMIT: Final = 2.0**52
#: Distinct horizons whose encoded timestamps are kept (a worker needs a few per batch).
_HORIZON_CACHE_SIZE: Final = 1024


@dataclass(frozen=True, slots=True)
class _Horizon:
    texts: tuple[str, ...]
    fragment: orjson.Fragment


_horizons: dict[bytes, _Horizon] = {}


# not frozen: built on the hot path (per forecast issued), where a frozen dataclass
# costs 3-4x as much to build; treat it as read-only
@dataclass(slots=True)
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

    def _body(
        self,
        horizon: Any,
        point: Any,
        quantiles: dict[str, Any],
        issued_at: Any = None,
        origin_ts: Any = None,
    ) -> dict[str, Any]:
        """The record's JSON object; ``issued_at`` and ``origin_ts`` may come pre-encoded."""
        return {
            "forecast_id": self.forecast_id,
            "meter_id": self.meter_id,
            "issued_at": format_ts(self.issued_ms) if issued_at is None else issued_at,
            "origin_ts": format_ts(self.origin_ms) if origin_ts is None else origin_ts,
            "model_name": self.model_name,
            "model_version": self.model_version,
            "fallback": self.fallback,
            "resolution_seconds": self.resolution_seconds,
            "observed_fraction": round(float(self.observed_fraction), 4),
            "horizon_ts": horizon,
            "point_kwh": point,
            "quantiles_kwh": quantiles,
        }

    def _rounded_rows(self) -> F64:
        """``(1 + Q, H)``: the point forecast, then each quantile, rounded; NaN/inf kept."""
        point = np.asarray(self.point_kwh, dtype=np.float64)
        quantiles = np.asarray(self.quantiles_kwh, dtype=np.float64)
        block = np.empty((1 + quantiles.shape[1], point.shape[0]), dtype=np.float64)
        block[0] = point
        block[1:] = quantiles.T
        return round_kwh(block)

    def to_json(self) -> dict[str, Any]:
        rows = self._rounded_rows()
        return self._body(
            list(_horizon(self.horizon_end_ms).texts),
            _as_list(rows[0]),
            {
                quantile_name(level): _as_list(rows[1 + i])
                for i, level in enumerate(self.quantile_levels)
            },
        )

    def to_bytes(self) -> bytes:
        rows = self._rounded_rows()
        body = self._body(
            _horizon(self.horizon_end_ms).fragment,
            rows[0],
            {quantile_name(level): rows[1 + i] for i, level in enumerate(self.quantile_levels)},
        )
        # orjson writes a float64 array as it writes the same Python floats, NaN/inf as null
        return orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)


@lru_cache(maxsize=64)
def quantile_name(level: float) -> str:
    """0.1 -> ``p10``; 0.975 -> ``p97.5``."""
    pct = round(level * 100, 4)
    return f"p{int(pct)}" if pct == int(pct) else f"p{pct}"


def round_kwh(values: npt.ArrayLike) -> F64:
    """``round(v, 6)`` of every value, as Python rounds (correctly, half to even).

    ``rint(v * 1e6) / 1e6`` is the same double unless ``v * 1e6`` lies within a few ulps of a
    half-integer (the product's rounding could cross it) or is too large to have fractional
    digits: then, and for arrays holding NaN or infinities, the values are rounded by Python
    one by one. NaN and infinities are returned as they are.
    """
    data = np.asarray(values, dtype=np.float64)
    if data.size:
        peak = float(np.abs(data).max())  # NaN when any value is NaN
        if peak * _SCALE < _EXACT_LIMIT:
            scaled = data * _SCALE
            whole = np.rint(scaled)
            # distance to the nearest integer; near 0.5 the product's rounding might matter
            margin = 0.5 - 4.0 * float(np.spacing(peak * _SCALE))
            if float(np.abs(scaled - whole).max()) < margin:
                out: F64 = whole / _SCALE
                return out
    return _round_each(data)


def _round_each(data: F64) -> F64:
    out = data.copy()
    flat = out.reshape(-1)
    for i, value in enumerate(data.reshape(-1).tolist()):
        if math.isfinite(value):
            flat[i] = round(value, KWH_DECIMALS)
    return out


def _as_list(values: F64) -> list[float | None]:
    items: list[float | None] = values.tolist()
    if np.isfinite(values).all():
        return items
    return [None if v is None or v != v or v in (np.inf, -np.inf) else v for v in items]


def _horizon(horizon_end_ms: npt.NDArray[np.int64]) -> _Horizon:
    values = np.ascontiguousarray(horizon_end_ms).astype(np.int64, copy=False)
    key = values.tobytes()
    found = _horizons.get(key)
    if found is None:
        texts = tuple(format_ts_array(values))
        found = _Horizon(texts, orjson.Fragment(orjson.dumps(texts)))
        if len(_horizons) >= _HORIZON_CACHE_SIZE:
            _horizons.clear()
        _horizons[key] = found
    return found


def encode_forecasts(records: Sequence[ForecastRecord]) -> list[bytes]:
    """``[record.to_bytes() for record in records]``, the same bytes, made for all at once."""
    out: list[bytes] = [b""] * len(records)
    groups: dict[tuple[int, tuple[float, ...]], list[int]] = {}
    for i, record in enumerate(records):
        point, quantiles = record.point_kwh, record.quantiles_kwh
        levels = tuple(record.quantile_levels)
        horizon = point.shape[0] if point.ndim == 1 else 0
        if horizon == 0 or quantiles.shape != (horizon, len(levels)):
            out[i] = record.to_bytes()  # nothing to share: the plain way
        else:
            groups.setdefault((horizon, levels), []).append(i)
    pieces = _SharedPieces()
    for (horizon, levels), members in groups.items():
        group = [records[i] for i in members]
        for i, body in zip(members, _encode_group(group, horizon, levels, pieces), strict=True):
            out[i] = body
    return out


class _SharedPieces:
    """JSON pieces that the records of one batch share, encoded once per call."""

    __slots__ = ("horizons", "times")

    def __init__(self) -> None:
        self.times: dict[int, orjson.Fragment] = {}
        self.horizons: dict[int, tuple[npt.NDArray[np.int64], orjson.Fragment]] = {}

    def time(self, ts_ms: int) -> orjson.Fragment:
        text = self.times.get(ts_ms)
        if text is None:
            text = self.times[ts_ms] = orjson.Fragment(orjson.dumps(format_ts(ts_ms)))
        return text

    def horizon(self, horizon_end_ms: npt.NDArray[np.int64]) -> orjson.Fragment:
        # records of one origin usually share one array: look it up by identity first (the
        # entry keeps the array, so that its id is not reused while the entry lives)
        entry = self.horizons.get(id(horizon_end_ms))
        if entry is None or entry[0] is not horizon_end_ms:
            entry = self.horizons[id(horizon_end_ms)] = (
                horizon_end_ms,
                _horizon(horizon_end_ms).fragment,
            )
        return entry[1]


def _encode_group(
    records: list[ForecastRecord],
    horizon: int,
    levels: tuple[float, ...],
    pieces: _SharedPieces,
) -> list[bytes]:
    """The bytes of records with ``horizon`` slots and quantile ``levels``: their numbers are
    rounded together, the rest as :meth:`ForecastRecord.to_bytes` writes it."""
    block = np.empty((len(records), 1 + len(levels), horizon), dtype=np.float64)
    block[:, 0, :] = np.stack([r.point_kwh for r in records])
    if levels:
        block[:, 1:, :] = np.stack([r.quantiles_kwh for r in records]).transpose(0, 2, 1)
    rounded = _round_blocks(block)
    names = [(1 + i, quantile_name(level)) for i, level in enumerate(levels)]
    time, horizon_of, dumps = pieces.time, pieces.horizon, orjson.dumps
    out: list[bytes] = []
    for record, rows in zip(records, rounded, strict=True):
        # ForecastRecord._body with the shared pieces pre-encoded
        body = record._body(
            horizon_of(record.horizon_end_ms),
            rows[0],
            {name: rows[row] for row, name in names},
            time(record.issued_ms),
            time(record.origin_ms),
        )
        out.append(dumps(body, option=_NUMPY))
    return out


def _round_blocks(block: F64) -> F64:
    """:func:`round_kwh` of each ``block[i]`` (the same doubles), in one numpy pass: a block
    whose values need Python's rounding (near-ties, huge, NaN, infinite) gets it alone."""
    flat = block.reshape(block.shape[0], -1)
    with np.errstate(invalid="ignore", over="ignore"):
        scaled = flat * _SCALE
        whole = np.rint(scaled)
        # max |v * 1e6| is round_kwh's peak * 1e6 to the bit (scaling is monotonic)
        peak_scaled = np.abs(scaled).max(axis=1)  # NaN when any value is NaN
        np.subtract(scaled, whole, out=scaled)
        deviation = np.abs(scaled, out=scaled).max(axis=1)
        margin = 0.5 - 4.0 * np.spacing(peak_scaled)
        exact = (peak_scaled < _EXACT_LIMIT) & (deviation < margin)
    out: F64 = np.divide(whole, _SCALE, out=whole)
    for i in np.flatnonzero(~exact).tolist():
        out[i] = round_kwh(flat[i])
    return out.reshape(block.shape)

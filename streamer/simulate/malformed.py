"""Turning one good reading into a bad one of a given kind.

Each kind matches the dead-letter reason that ``streamer.contract.reading.parse_reading``
gives it, so a test can check that every broken message lands where it should.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Final

import numpy as np
import orjson

from streamer.simulate.wire import rfc3339

WEEK_MS: Final = 7 * 86_400_000
ABOVE_BOUND_KWH: Final = 1e6
_NAN_PLACEHOLDER: Final = "__simulated_nan__"


class MalformedKind(StrEnum):
    """How a malformed message is broken. The value is the dead-letter reason it should get."""

    INVALID_JSON = "invalid_json"
    """The JSON is cut short."""
    MISSING_FIELD = "missing_field"
    """``meter_id``, ``ts`` or the energy field is removed."""
    WRONG_TYPE = "wrong_type"
    """The energy field is the string ``"abc"``."""
    NON_FINITE = "non_finite"
    """The energy field is the JSON token ``NaN``."""
    NEGATIVE_ENERGY = "negative_energy"
    """Negative energy on a consumption meter."""
    ABOVE_PHYSICAL_BOUND = "above_physical_bound"
    """``kwh`` is 1e6."""
    FUTURE_TIMESTAMP = "future_timestamp"
    """``ts`` is a week ahead (of the reading, or of the wall clock when given)."""
    INVALID_TIMESTAMP = "invalid_timestamp"
    """``ts`` is the string ``"yesterday"``."""


def energy_field(reading: dict[str, Any]) -> str:
    """``"register_kwh"`` for register readings, else ``"kwh"``."""
    return "register_kwh" if "register_kwh" in reading else "kwh"


def eligible_kinds(reading: dict[str, Any]) -> list[MalformedKind]:
    """The kinds that make sense for this reading (e.g. negative energy only on consumption)."""
    kinds = [
        MalformedKind.INVALID_JSON,
        MalformedKind.MISSING_FIELD,
        MalformedKind.WRONG_TYPE,
        MalformedKind.NON_FINITE,
    ]
    if reading.get("meter_type", "consumption") == "consumption":
        kinds.append(MalformedKind.NEGATIVE_ENERGY)
    if "kwh" in reading:
        kinds.append(MalformedKind.ABOVE_PHYSICAL_BOUND)
    kinds += [MalformedKind.FUTURE_TIMESTAMP, MalformedKind.INVALID_TIMESTAMP]
    return kinds


def _ts_ms(value: object) -> int:
    if isinstance(value, int):
        return value
    return int(datetime.fromisoformat(str(value)).timestamp() * 1000)


def break_reading(
    value: bytes,
    kind: MalformedKind,
    rng: np.random.Generator,
    *,
    now_ms: int | None = None,
) -> bytes:
    """``value`` (a good reading's JSON) broken in the way ``kind`` names."""
    if kind is MalformedKind.INVALID_JSON:
        # Any proper prefix of a JSON object is invalid: the closing brace is missing.
        return value[: int(rng.integers(1, len(value)))]
    reading: dict[str, Any] = orjson.loads(value)
    field = energy_field(reading)
    if kind is MalformedKind.MISSING_FIELD:
        names = ["meter_id", "ts", field]
        del reading[names[int(rng.integers(len(names)))]]
    elif kind is MalformedKind.WRONG_TYPE:
        reading[field] = "abc"
    elif kind is MalformedKind.NON_FINITE:
        reading[field] = _NAN_PLACEHOLDER
        return orjson.dumps(reading).replace(f'"{_NAN_PLACEHOLDER}"'.encode(), b"NaN")
    elif kind is MalformedKind.NEGATIVE_ENERGY:
        reading[field] = -round(abs(float(reading[field])) + 0.001 * int(rng.integers(1, 1000)), 3)
    elif kind is MalformedKind.ABOVE_PHYSICAL_BOUND:
        reading[field] = ABOVE_BOUND_KWH
    elif kind is MalformedKind.FUTURE_TIMESTAMP:
        ts_ms = _ts_ms(reading["ts"])
        future_ms = max(ts_ms, now_ms if now_ms is not None else ts_ms) + WEEK_MS
        reading["ts"] = future_ms if isinstance(reading["ts"], int) else rfc3339(future_ms)
    elif kind is MalformedKind.INVALID_TIMESTAMP:
        reading["ts"] = "yesterday"
    return orjson.dumps(reading)

"""The body of ``POST /v1/forecast``, parsed and checked into model windows.

::

    {"model": "lstm:2",                         # optional: the live model when absent
     "series": [
       {"id": "feeder-7",                       # optional: the series' index when absent
        "values_kwh": [0.41, null, 0.39, ...],  # oldest first; null = missing (imputed)
        "start_ts": "2026-11-01T00:00:00Z",     # start of the first value's slot, or
        "slot_end_ts": ["2026-11-01T00:30:00Z", ...],  # the end of each value's slot
        "resolution_seconds": 1800,             # optional: must be the worker's
        "time_zone": "Europe/London"}]}         # optional IANA name (checked)

A single series may be sent as the body itself (``{"values_kwh": [...], "start_ts": ...}``).
Timestamps are RFC 3339 with an offset, or epoch milliseconds, on the worker's slot grid (a
multiple of the resolution since the epoch). Each series becomes the worker's window: its
newest ``lookback_slots`` slots ending at its newest slot, gaps NaN, as the stream keeps a
meter's window. Every refusal is a :class:`~streamer.serving.errors.RequestRejected` naming
the series and the limit.
"""

from __future__ import annotations

import math
import re
import zoneinfo
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import orjson

from streamer.serving.errors import RequestRejected, invalid

_MIN_TS_MS: Final = 946_684_800_000  # 2000-01-01
_MAX_TS_MS: Final = 4_102_444_800_000  # 2100-01-01
MAX_ID_CHARS: Final = 256
_MODEL_SPEC: Final = re.compile(r"[a-z][a-z0-9_]{0,63}(:[A-Za-z0-9_-]{1,32})?")
_NUMBER_TYPES: Final = frozenset({float, int, type(None)})


@dataclass(frozen=True, slots=True)
class RequestLimits:
    """What a request may hold; from the settings (see :meth:`from_settings`)."""

    resolution_seconds: int
    lookback_slots: int
    min_observed_fraction: float
    max_series: int

    @property
    def min_observed_slots(self) -> int:
        """Fewest real values in a window the stream would forecast (its observed fraction)."""
        needed = math.ceil(self.min_observed_fraction * self.lookback_slots)
        while needed > 0 and (needed - 1) / self.lookback_slots >= self.min_observed_fraction:
            needed -= 1
        return max(1, needed)


@dataclass(frozen=True, slots=True)
class SeriesWindow:
    """One series as the model reads it."""

    series_id: str
    window_kwh: npt.NDArray[np.float32]
    """``(lookback_slots,)`` oldest to newest, NaN where missing."""
    end_ms: int
    """End of the newest slot (UTC epoch ms): the forecast's origin."""
    observed: int
    """Real values in the window."""


@dataclass(frozen=True, slots=True)
class ForecastRequest:
    model_spec: str | None
    series: list[SeriesWindow]


def parse_request(body: bytes, limits: RequestLimits) -> ForecastRequest:
    """``body`` as a :class:`ForecastRequest`, or :class:`RequestRejected` saying why not."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise RequestRejected(400, "invalid_json", f"the body is not JSON ({exc})") from None
    if not isinstance(document, dict):
        raise invalid("the body must be a JSON object with 'series' (or one series' fields)")
    model_spec = _model_spec(document.get("model"))
    if "series" in document:
        items = document["series"]
        if not isinstance(items, list) or not items:
            raise invalid("'series' must be a non-empty array of series objects")
    elif "values_kwh" in document:
        items = [document]
    else:
        raise invalid("the body has neither 'series' nor 'values_kwh'")
    if len(items) > limits.max_series:
        raise RequestRejected(
            413,
            "too_many_series",
            f"{len(items)} series in one request; at most {limits.max_series} "
            "(STREAMER_SERVING_MAX_SERIES_PER_REQUEST): split the request",
        )
    return ForecastRequest(model_spec, [_series(i, item, limits) for i, item in enumerate(items)])


def _model_spec(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _MODEL_SPEC.fullmatch(value):
        raise RequestRejected(
            422,
            "unknown_model",
            "'model' must be a model spec such as 'lstm' or 'lstm:2' "
            "(name of lowercase letters, digits and '_', an optional ':version')",
        )
    return value


def _series(index: int, item: object, limits: RequestLimits) -> SeriesWindow:
    where = f"series[{index}]"
    if not isinstance(item, dict):
        raise invalid(f"{where} must be an object with 'values_kwh'")
    series_id = item.get("id", str(index))
    if not isinstance(series_id, str) or not 1 <= len(series_id) <= MAX_ID_CHARS:
        raise invalid(f"{where}.id must be a string of 1-{MAX_ID_CHARS} characters")
    values = _values(where, item.get("values_kwh"))
    _check_resolution(where, item.get("resolution_seconds"), limits)
    _check_time_zone(where, item.get("time_zone"))
    res_ms = limits.resolution_seconds * 1000
    ends = _slot_ends(where, item, values.size, res_ms)
    lookback = limits.lookback_slots
    end_ms = int(ends[-1])
    position = lookback - 1 - (end_ms - ends) // res_ms
    kept = position >= 0
    window = np.full(lookback, np.nan, dtype=np.float32)
    window[position[kept]] = values[kept]
    observed = int(np.count_nonzero(np.isfinite(window)))
    if observed == 0:
        raise RequestRejected(
            422,
            "all_missing",
            f"{where} ({_shown(series_id)}) has no value in its newest {lookback} slots: "
            "every value is null",
        )
    if observed < limits.min_observed_slots:
        raise RequestRejected(
            422,
            "too_short",
            f"{where} ({_shown(series_id)}) has {observed} values in its newest {lookback} "
            f"slots; at least {limits.min_observed_slots} are needed "
            f"(STREAMER_MIN_OBSERVED_FRACTION={limits.min_observed_fraction} of "
            f"STREAMER_LOOKBACK_SLOTS={lookback})",
        )
    return SeriesWindow(series_id, window, end_ms, observed)


def _shown(series_id: str) -> str:
    return repr(series_id if len(series_id) <= 64 else series_id[:64] + "...")


def _values(where: str, raw: object) -> npt.NDArray[np.float64]:
    if not isinstance(raw, list) or not raw:
        raise invalid(f"{where}.values_kwh must be a non-empty array of numbers or nulls")
    kinds = {type(value) for value in raw}
    if not kinds <= _NUMBER_TYPES:  # bool is its own type: true/false are refused here
        raise invalid(f"{where}.values_kwh must hold only numbers (kWh) or nulls")
    try:
        values = np.array(raw, dtype=np.float64)  # null -> NaN
    except OverflowError:
        raise invalid(f"{where}.values_kwh holds an integer too large for a number") from None
    if np.isinf(values).any():
        raise invalid(f"{where}.values_kwh holds a number beyond the float range")
    return values


def _check_resolution(where: str, raw: object, limits: RequestLimits) -> None:
    if raw is None:
        return
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise invalid(f"{where}.resolution_seconds must be a number of seconds")
    if raw != limits.resolution_seconds:
        raise RequestRejected(
            422,
            "wrong_resolution",
            f"{where}.resolution_seconds is {raw}; this worker forecasts "
            f"{limits.resolution_seconds} s slots (STREAMER_RESOLUTION_SECONDS): resample "
            "the series or ask a worker run at that resolution",
        )


def _check_time_zone(where: str, raw: object) -> None:
    if raw is None:
        return
    if not isinstance(raw, str) or not 1 <= len(raw) <= 64:
        raise invalid(f"{where}.time_zone must be an IANA zone name such as 'Europe/London'")
    try:
        zoneinfo.ZoneInfo(raw)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise invalid(
            f"{where}.time_zone {raw!r} is not an IANA zone name (e.g. 'Europe/London')"
        ) from None


def _ts_ms(where: str, value: object) -> int:
    if isinstance(value, bool):
        raise invalid(f"{where} must be an RFC 3339 string or epoch milliseconds")
    if isinstance(value, int):
        ts_ms = value
    elif isinstance(value, float) and value.is_integer():
        ts_ms = int(value)
    elif isinstance(value, str) and len(value) <= 64:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise invalid(f"{where} {value!r} is not RFC 3339") from None
        if parsed.utcoffset() is None:
            raise invalid(f"{where} {value!r} has no UTC offset; add 'Z' or '+00:00'")
        ts_ms = int(parsed.timestamp() * 1000)
    else:
        raise invalid(f"{where} must be an RFC 3339 string or epoch milliseconds")
    if not _MIN_TS_MS <= ts_ms < _MAX_TS_MS:
        raise invalid(f"{where} is outside the years 2000-2100")
    return ts_ms


def _slot_ends(where: str, item: dict[str, Any], count: int, res_ms: int) -> npt.NDArray[np.int64]:
    """The end of each value's slot, checked to be on the grid and strictly increasing."""
    start, ends_raw = item.get("start_ts"), item.get("slot_end_ts")
    if (start is None) == (ends_raw is None):
        raise invalid(f"{where} needs exactly one of 'start_ts' and 'slot_end_ts'")
    if start is not None:
        start_ms = _ts_ms(f"{where}.start_ts", start)
        if start_ms % res_ms:
            raise invalid(
                f"{where}.start_ts is not on the {res_ms // 1000} s slot grid (slots start at "
                "multiples of the resolution since 1970-01-01T00:00Z)"
            )
        last = start_ms + count * res_ms
        if last >= _MAX_TS_MS:
            raise invalid(f"{where} runs past the year 2100")
        return start_ms + res_ms * np.arange(1, count + 1, dtype=np.int64)
    if not isinstance(ends_raw, list) or len(ends_raw) != count:
        raise invalid(f"{where}.slot_end_ts must be an array with one time per value ({count})")
    ends = np.array(
        [_ts_ms(f"{where}.slot_end_ts[{i}]", value) for i, value in enumerate(ends_raw)],
        dtype=np.int64,
    )
    if (ends % res_ms).any():
        raise invalid(f"{where}.slot_end_ts holds a time off the {res_ms // 1000} s slot grid")
    if count > 1 and not (np.diff(ends) > 0).all():
        raise invalid(f"{where}.slot_end_ts must be strictly increasing")
    return ends

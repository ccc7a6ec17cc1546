"""The body of ``POST /v1/forecast``, parsed and checked into model windows.

::

    {"model": "lstm:2",                         # optional: the live model when absent
     "calibration": "fleet",                    # optional: "fleet" (default) or "none"
     "series": [
       {"id": "feeder-7",                       # optional: the series' index when absent
        "values_kwh": [0.41, null, 0.39, ...],  # oldest first; null = missing (imputed)
        "start_ts": "2026-11-01T00:00:00Z",     # start of the first value's slot, or
        "slot_end_ts": ["2026-11-01T00:30:00Z", ...],  # the end of each value's slot
        "resolution_seconds": 1800,             # optional: must be the worker's
        "time_zone": "Europe/London"}]}         # optional IANA zone (default: the worker's)

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
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import numpy.typing as npt
import orjson

from streamer.contract.errors import InvalidReading
from streamer.contract.reading import MAX_TS_MS, parse_ts_ms
from streamer.forecast.local_time import is_known_zone
from streamer.serving.errors import RequestRejected, invalid

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
    #: The fleet's zone: a series without ``time_zone`` is in this one.
    time_zone: str = "UTC"

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
    """``(lookback_slots,)`` oldest to newest, NaN where missing (a row of the request's)."""
    end_ms: int
    """End of the newest slot (UTC epoch ms): the forecast's origin."""
    observed: int
    """Real values in the window."""


@dataclass(frozen=True, slots=True)
class ForecastRequest:
    model_spec: str | None
    series: list[SeriesWindow]
    windows_kwh: npt.NDArray[np.float32]
    """``(B, lookback_slots)``: every series' window, stacked (row ``i`` is ``series[i]``'s)."""
    end_ms: npt.NDArray[np.int64]
    """``(B,)``"""
    calibrated: bool = True
    """``"calibration": "fleet"`` (the default): the band calibrated as the stream calibrates a
    meter it has never seen; ``"none"``: the model's own quantiles."""
    time_zones: npt.NDArray[np.str_] = field(default_factory=lambda: np.array([], dtype=str))
    """``(B,)`` each series' IANA zone (its own ``time_zone``, else the worker's)."""


def parse_request(body: bytes, limits: RequestLimits) -> ForecastRequest:
    """``body`` as a :class:`ForecastRequest`, or :class:`RequestRejected` saying why not.

    The values of all series are written straight into one ``(B, L)`` array and counted in one
    pass: per series there remain a type check and one slice assignment (about 10 us for 336
    values), not a dozen numpy calls.
    """
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise RequestRejected(400, "invalid_json", f"the body is not JSON ({exc})") from None
    if not isinstance(document, dict):
        raise invalid("the body must be a JSON object with 'series' (or one series' fields)")
    model_spec = _model_spec(document.get("model"))
    calibration = document.get("calibration", "fleet")
    if calibration not in ("fleet", "none"):
        raise invalid('\'calibration\' must be "fleet" (the default) or "none"')
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
    lookback = limits.lookback_slots
    windows = np.full((len(items), lookback), np.nan, dtype=np.float32)
    ids: list[str] = []
    ends: list[int] = []
    zones: list[str] = []
    for index, item in enumerate(items):
        series_id, end_ms = _place(index, item, limits, windows[index])
        ids.append(series_id)
        ends.append(end_ms)
        zone = item.get("time_zone")  # checked by _place
        zones.append(zone if isinstance(zone, str) else limits.time_zone)
    observed = np.count_nonzero(~np.isnan(windows), axis=1)
    short = np.flatnonzero(observed < limits.min_observed_slots)
    if short.size:
        _refuse_short(int(short[0]), ids[short[0]], int(observed[short[0]]), limits)
    counts = observed.tolist()
    series = [SeriesWindow(ids[i], windows[i], ends[i], counts[i]) for i in range(len(items))]
    return ForecastRequest(
        model_spec,
        series,
        windows,
        np.array(ends, dtype=np.int64),
        calibration == "fleet",
        np.array(zones, dtype=str),
    )


def _refuse_short(index: int, series_id: str, observed: int, limits: RequestLimits) -> None:
    where, lookback = f"series[{index}]", limits.lookback_slots
    if observed == 0:
        raise RequestRejected(
            422,
            "all_missing",
            f"{where} ({_shown(series_id)}) has no value in its newest {lookback} slots: "
            "every value is null",
        )
    raise RequestRejected(
        422,
        "too_short",
        f"{where} ({_shown(series_id)}) has {observed} values in its newest {lookback} "
        f"slots; at least {limits.min_observed_slots} are needed "
        f"(STREAMER_MIN_OBSERVED_FRACTION={limits.min_observed_fraction} of "
        f"STREAMER_LOOKBACK_SLOTS={lookback})",
    )


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


def _place(
    index: int, item: object, limits: RequestLimits, window: npt.NDArray[np.float32]
) -> tuple[str, int]:
    """Check series ``index`` and write its newest values into ``window`` (NaN-filled).

    Returns its id and the end of its newest slot.
    """
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
    lookback = limits.lookback_slots
    count = len(values)
    start, ends_raw = item.get("start_ts"), item.get("slot_end_ts")
    if (start is None) == (ends_raw is None):
        raise invalid(f"{where} needs exactly one of 'start_ts' and 'slot_end_ts'")
    if start is not None:  # contiguous slots: the newest values fill the window's end
        end_ms = _contiguous_end(where, start, count, res_ms)
        kept = min(count, lookback)
        window[lookback - kept :] = values[count - kept :]  # null -> NaN
        return series_id, end_ms
    ends = _slot_ends(where, ends_raw, count, res_ms)
    end_ms = int(ends[-1])
    position = lookback - 1 - (end_ms - ends) // res_ms
    inside = position >= 0
    window[position[inside]] = np.array(values, dtype=np.float64)[inside]
    return series_id, end_ms


def _shown(series_id: str) -> str:
    return repr(series_id if len(series_id) <= 64 else series_id[:64] + "...")


def _values(where: str, raw: object) -> list[float | int | None]:
    """``raw`` checked to be a non-empty list of numbers and nulls.

    JSON numbers beyond a float never get here (the JSON reader refuses them).
    """
    if not isinstance(raw, list) or not raw:
        raise invalid(f"{where}.values_kwh must be a non-empty array of numbers or nulls")
    if not {type(value) for value in raw} <= _NUMBER_TYPES:  # bool is a type of its own
        raise invalid(f"{where}.values_kwh must hold only numbers (kWh) or nulls")
    return raw


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
    if not is_known_zone(raw):
        raise invalid(f"{where}.time_zone {raw!r} is not an IANA zone name (e.g. 'Europe/London')")


def _ts_ms(where: str, value: object) -> int:
    """A request time, by the readings contract's rule (RFC 3339 with an offset, or epoch ms,
    in the years 2000-2100)."""
    try:
        return parse_ts_ms(value)
    except InvalidReading as exc:
        raise invalid(f"{where}: {exc.detail}") from None


def _contiguous_end(where: str, start: object, count: int, res_ms: int) -> int:
    """The end of the newest of ``count`` slots from ``start``, checked to be on the grid."""
    start_ms = _ts_ms(f"{where}.start_ts", start)
    if start_ms % res_ms:
        raise invalid(
            f"{where}.start_ts is not on the {res_ms // 1000} s slot grid (slots start at "
            "multiples of the resolution since 1970-01-01T00:00Z)"
        )
    end_ms = start_ms + count * res_ms
    if end_ms >= MAX_TS_MS:
        raise invalid(f"{where} runs past the year 2100")
    return end_ms


def _slot_ends(where: str, ends_raw: object, count: int, res_ms: int) -> npt.NDArray[np.int64]:
    """The end of each value's slot, checked to be on the grid and strictly increasing."""
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

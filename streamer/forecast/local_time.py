"""Local wall-clock time of UTC instants, vectorised: where the calendar matters.

Everything on the wire and in state is UTC epoch milliseconds. A meter's day, week and
holidays are those of the zone it lives in: :func:`wall_ms` turns UTC instants into "wall-clock
milliseconds" (the local date and time read as if they were UTC), so that ``wall % day`` is the
local time of day and ``wall // day`` the local date, across daylight-saving changes.

>>> int(wall_ms([1_782_864_000_000], "Europe/London")[0] - 1_782_864_000_000) // 3_600_000
1
>>> local_day_slots(date(2026, 3, 29), "Europe/London", 1800)
46
>>> local_day_slots(date(2026, 10, 25), "Europe/London", 1800)
50
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from streamer.forecast.errors import ForecastInputError

IntArray = npt.NDArray[np.int64]
#: One zone for the whole batch, or one per row.
TimeZones = str | Sequence[str] | npt.NDArray[np.str_] | npt.NDArray[np.object_]

UTC_ZONE: Final = "UTC"
MS_PER_DAY: Final = 86_400_000
_UTC_NAMES: Final = frozenset({"UTC", "Etc/UTC", "Etc/UCT", "UCT", "Zulu", "Etc/Zulu"})


class UnknownTimeZoneError(ForecastInputError):
    """A name that is not an IANA time zone."""


@lru_cache(maxsize=512)
def zone_info(name: str) -> zoneinfo.ZoneInfo:
    """The :class:`zoneinfo.ZoneInfo` of an IANA name; :class:`UnknownTimeZoneError` if none."""
    try:
        if not name or name != name.strip():
            raise ValueError(name)
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError):
        raise UnknownTimeZoneError(
            f"time zone {name[:64]!r} is not an IANA zone name (e.g. 'Europe/London', "
            "'Australia/Sydney', 'UTC')"
        ) from None


def check_zone(name: str) -> str:
    """``name`` when it is an IANA zone name, else :class:`UnknownTimeZoneError`."""
    zone_info(name)
    return name


def is_known_zone(name: str) -> bool:
    """Whether ``name`` is an IANA zone name (cached)."""
    try:
        zone_info(name)
    except UnknownTimeZoneError:
        return False
    return True


def is_utc(name: str) -> bool:
    return name in _UTC_NAMES


def wall_ms(utc_ms: npt.ArrayLike, zone: str) -> IntArray:
    """Local wall-clock time in ``zone`` of each UTC epoch-ms instant, as epoch ms (any shape)."""
    times = np.asarray(utc_ms, dtype=np.int64)
    if is_utc(zone):
        return times.copy()
    tz = zone_info(zone)
    flat = pd.DatetimeIndex(pd.to_datetime(times.ravel(), unit="ms", utc=True)).tz_convert(tz)
    local = flat.tz_localize(None).as_unit("ms").asi8
    out: IntArray = np.asarray(local, dtype=np.int64).reshape(times.shape)
    return out


def utc_offset_ms(utc_ms: npt.ArrayLike, zone: str) -> IntArray:
    """The zone's offset from UTC (ms, east positive) at each instant."""
    times = np.asarray(utc_ms, dtype=np.int64)
    out: IntArray = wall_ms(times, zone) - times
    return out


def same_wall_time_earlier(utc_ms: npt.ArrayLike, lag_ms: npt.ArrayLike, zone: str) -> IntArray:
    """The instant whose local wall-clock time is ``lag_ms`` earlier than each of ``utc_ms``.

    A week before Monday 18:00 is the previous Monday 18:00 local, which is 167 or 169 hours
    earlier across a daylight-saving change. Where that wall time is skipped or repeated (the
    change's own hour), the result is within an hour of it.
    """
    times = np.asarray(utc_ms, dtype=np.int64)
    naive = times - np.asarray(lag_ms, dtype=np.int64)
    if is_utc(zone):
        return naive
    out: IntArray = naive + (utc_offset_ms(times, zone) - utc_offset_ms(naive, zone))
    return out


def local_day_slots(day: date, zone: str, resolution_seconds: int) -> int:
    """How many slots the local calendar day has in ``zone`` (46, 48 or 50 half-hours)."""
    tz = zone_info(zone)
    start = datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(UTC)
    following = day + timedelta(days=1)
    end = datetime(following.year, following.month, following.day, tzinfo=tz).astimezone(UTC)
    return int((end - start).total_seconds()) // resolution_seconds


def row_zones(zones: TimeZones, rows: int) -> tuple[tuple[str, ...], npt.NDArray[np.intp]]:
    """Distinct zones and each row's index into them; one zone for all when ``zones`` is a str.

    Unknown names raise :class:`UnknownTimeZoneError`.
    """
    if isinstance(zones, str):
        check_zone(zones)
        return (zones,), np.zeros(rows, dtype=np.intp)
    names = np.asarray(zones, dtype=object)
    if names.shape != (rows,):
        raise ForecastInputError(
            f"time zones must be one name or one per row ({rows}), got shape {names.shape}"
        )
    distinct, inverse = np.unique(names.astype(str), return_inverse=True)
    for name in distinct.tolist():
        check_zone(name)
    return tuple(distinct.tolist()), inverse.reshape(-1).astype(np.intp)

"""Where the fleet lives: its time zone, hemisphere and public holidays.

People keep local wall-clock time: schedules, weekends, holidays and EV evenings follow the
zone's clocks, daylight saving included (:func:`wall_clock_ms`). The sun
and the weather keep local solar time: the zone's standard (non-DST) offset stands for the
longitude, so solar noon is at 12:00 local standard time. The zone is southern when its clocks
are further ahead in January than in July (daylight saving in the southern summer); zones
without daylight saving are taken as northern unless told otherwise.

>>> standard_offset_seconds(zone_of("Europe/Berlin")) // 3600
1
>>> int(wall_clock_ms(np.array([1_782_864_000_000]), zone_of("Europe/London"))[0]
...     - 1_782_864_000_000) // 3_600_000
1
>>> is_southern_zone(zone_of("Australia/Sydney")), is_southern_zone(zone_of("Europe/London"))
(True, False)
>>> sorted(holiday_dates(["2026-12-25", date(2026, 12, 26)]))
[datetime.date(2026, 12, 25), datetime.date(2026, 12, 26)]
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import Final

import numpy as np
import numpy.typing as npt

from streamer.forecast.local_time import UnknownTimeZoneError, wall_ms, zone_info
from streamer.simulate.errors import SimulationConfigError

I64 = npt.NDArray[np.int64]

#: The instants that tell a zone's winter from its summer offset (any recent year would do; a
#: fixed one keeps a fleet's weather the same whatever today's date is).
_JANUARY: Final = datetime(2026, 1, 15, 12, tzinfo=UTC)
_JULY: Final = datetime(2026, 7, 15, 12, tzinfo=UTC)
_EPOCH: Final = date(1970, 1, 1)


def zone_of(name: str) -> zoneinfo.ZoneInfo:
    """The zone of an IANA name; :class:`SimulationConfigError` naming an example if none."""
    try:
        return zone_info(name if isinstance(name, str) else "")
    except UnknownTimeZoneError:
        raise SimulationConfigError(
            f"time_zone={str(name)[:64]!r} is not an IANA time zone name; use one such as "
            "'Europe/London', 'Australia/Sydney' or 'UTC'"
        ) from None


def wall_clock_ms(utc_ms: I64, zone: zoneinfo.ZoneInfo) -> I64:
    """Local wall-clock time of UTC epoch-ms instants, read as if it were UTC (epoch ms).

    ``wall // 86_400_000`` is the local date and ``wall % 86_400_000`` the local time of day,
    across daylight-saving changes.
    """
    return wall_ms(utc_ms, zone.key)


def _offset_seconds(zone: zoneinfo.ZoneInfo, at: datetime) -> int:
    offset = at.astimezone(zone).utcoffset()
    return 0 if offset is None else int(offset.total_seconds())


def standard_offset_seconds(zone: zoneinfo.ZoneInfo) -> int:
    """The zone's standard offset from UTC (east positive): the smaller of January and July."""
    return min(_offset_seconds(zone, _JANUARY), _offset_seconds(zone, _JULY))


def is_southern_zone(zone: zoneinfo.ZoneInfo) -> bool:
    """Whether the zone keeps daylight saving in January (so lies south of the equator)."""
    return _offset_seconds(zone, _JANUARY) > _offset_seconds(zone, _JULY)


def holiday_dates(holidays: Iterable[date | str]) -> frozenset[date]:
    """Local calendar dates from ``date`` objects or ISO strings (``'2026-12-25'``)."""
    if isinstance(holidays, str | date):
        holidays = [holidays]
    out: set[date] = set()
    for item in holidays:
        if isinstance(item, datetime):
            out.add(item.date())
        elif isinstance(item, date):
            out.add(item)
        elif isinstance(item, str):
            try:
                out.add(date.fromisoformat(item.strip()))
            except ValueError:
                raise SimulationConfigError(
                    f"holiday {item[:64]!r} is not an ISO date; write it as '2026-12-25'"
                ) from None
        else:
            raise SimulationConfigError(
                f"holiday {item!r} is neither a datetime.date nor an ISO date string such as "
                "'2026-12-25'"
            )
    return frozenset(out)


def epoch_days(dates: Iterable[date]) -> I64:
    """Days since 1970-01-01 of each date, sorted: the ``wall_ms // day`` of that local date."""
    out: I64 = np.array(sorted((d - _EPOCH).days for d in dates), dtype=np.int64)
    return out

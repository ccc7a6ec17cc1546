"""Time helpers. Inside streamer a time is an int of epoch milliseconds, UTC (``*_ms``)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from functools import lru_cache
from typing import Final

import numpy as np
import numpy.typing as npt

#: ``format_ts_array`` formats with numpy inside [1970-01-01, 10000-01-01); outside, per value.
_VECTOR_MIN_MS: Final = 0
_VECTOR_END_MS: Final = 253_402_300_800_000


def now_ms() -> int:
    """Wall-clock now in epoch milliseconds."""
    return time.time_ns() // 1_000_000


def format_ts(ts_ms: int) -> str:
    """RFC 3339 in UTC with a ``Z``; milliseconds only when there are any."""
    return _format_ts(int(ts_ms))


@lru_cache(maxsize=8192)
def _format_ts(ts_ms: int) -> str:
    # cached: a batch formats the same issue time and slot origins many times over
    seconds, millis = divmod(ts_ms, 1000)
    text = datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{millis:03d}Z" if millis else f"{text}Z"


def format_ts_array(ts_ms: npt.ArrayLike) -> list[str]:
    """:func:`format_ts` of every value, formatted by numpy in one call (same strings)."""
    values = np.asarray(ts_ms).astype(np.int64, copy=False).ravel()
    if values.size == 0:
        return []
    if int(values.min()) < _VECTOR_MIN_MS or int(values.max()) >= _VECTOR_END_MS:
        return [format_ts(int(v)) for v in values.tolist()]
    with_millis = values % 1000 != 0
    seconds = np.datetime_as_string(
        (values // 1000).astype("datetime64[s]"), unit="s", timezone="UTC"
    )
    if not with_millis.any():
        out: list[str] = seconds.tolist()
        return out
    millis = np.datetime_as_string(values.astype("datetime64[ms]"), unit="ms", timezone="UTC")
    mixed: list[str] = np.where(with_millis, millis, seconds).tolist()
    return mixed


def to_datetime(ts_ms: int) -> datetime:
    """A timezone-aware UTC datetime."""
    return datetime.fromtimestamp(ts_ms / 1000, tz=UTC)

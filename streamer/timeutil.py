"""Time helpers. Inside streamer a time is an int of epoch milliseconds, UTC (``*_ms``)."""

from __future__ import annotations

import time
from datetime import UTC, datetime


def now_ms() -> int:
    """Wall-clock now in epoch milliseconds."""
    return time.time_ns() // 1_000_000


def format_ts(ts_ms: int) -> str:
    """RFC 3339 in UTC with a ``Z``; milliseconds only when there are any."""
    seconds, millis = divmod(int(ts_ms), 1000)
    text = datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{millis:03d}Z" if millis else f"{text}Z"


def to_datetime(ts_ms: int) -> datetime:
    """A timezone-aware UTC datetime."""
    return datetime.fromtimestamp(ts_ms / 1000, tz=UTC)

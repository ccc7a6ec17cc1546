"""What goes on the wire: a message is ``(key, value)`` bytes; timestamps are RFC 3339 UTC."""

from __future__ import annotations

from datetime import UTC, datetime

Message = tuple[bytes, bytes]
"""``(key, value)`` as sent to Kafka: key = meter id (UTF-8), value = the reading's JSON."""


def rfc3339(ts_ms: int) -> str:
    """``2026-11-23T10:30:00+00:00`` (milliseconds only when there are any)."""
    moment = datetime.fromtimestamp(ts_ms / 1000, tz=UTC)
    return moment.isoformat(timespec="milliseconds" if ts_ms % 1000 else "seconds")

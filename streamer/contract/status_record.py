"""``meter-status``: events about a meter's health rather than its load (key = meter id).

::

    {"meter_id": "m-000042", "status": "silent", "at": "2026-11-23T10:30:00Z",
     "last_reading_at": "2026-11-23T07:00:00Z", "detail": "no reading for 7 slots"}

Statuses: ``silent`` (no reading for ``STREAMER_SILENT_SLOTS`` slots of wall-clock time, found by
a timer), ``flatline`` (the same value for ``STREAMER_FLATLINE_SLOTS`` slots), ``register_reset``
and ``register_rollover`` (a cumulative register went down), ``expired`` (state dropped after
``STREAMER_RETENTION_SECONDS`` of silence).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import orjson

from streamer.timeutil import format_ts


class MeterStatus(StrEnum):
    SILENT = "silent"
    FLATLINE = "flatline"
    REGISTER_RESET = "register_reset"
    REGISTER_ROLLOVER = "register_rollover"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class StatusEvent:
    meter_id: str
    status: MeterStatus
    at_ms: int
    last_reading_ms: int | None
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {
            "meter_id": self.meter_id,
            "status": self.status.value,
            "at": format_ts(self.at_ms),
            "last_reading_at": None
            if self.last_reading_ms is None
            else format_ts(self.last_reading_ms),
            "detail": self.detail,
        }

    def to_bytes(self) -> bytes:
        return orjson.dumps(self.to_json())

"""A consumed message as the pipeline sees it, independent of faust."""

from __future__ import annotations

from dataclasses import dataclass


# not frozen: built on the hot path (per message consumed), where a frozen dataclass
# costs 3-4x as much to build; treat it as read-only
@dataclass(slots=True)
class InMessage:
    key: bytes | None
    value: bytes | None
    topic: str
    partition: int
    offset: int
    timestamp_ms: int | None

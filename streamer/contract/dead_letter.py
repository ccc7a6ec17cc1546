"""``meter-readings-dlq``: a refused message, with why and where it came from.

::

    {"reason": "negative_energy", "detail": "kwh -1.0 is negative on a consumption meter ...",
     "source": {"topic": "meter-readings", "partition": 3, "offset": 1234,
                "timestamp_ms": 1795430000123},
     "key_b64": "bS0wMDAwNDI=", "value_b64": "eyJtZXRlcl9pZCI6...",
     "dead_lettered_at": "2026-11-23T10:30:01.250Z"}

The original key and value are kept byte for byte (base64), so a message can be repaired and
re-produced. The dead letter is keyed by the original key.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import orjson

from streamer.contract.reasons import DlqReason
from streamer.timeutil import format_ts


@dataclass(frozen=True, slots=True)
class SourcePosition:
    topic: str
    partition: int
    offset: int
    timestamp_ms: int | None


@dataclass(frozen=True, slots=True)
class DeadLetter:
    reason: DlqReason
    detail: str
    source: SourcePosition
    key: bytes | None
    value: bytes | None
    dead_lettered_ms: int

    def to_json(self) -> dict[str, Any]:
        return {
            "reason": self.reason.value,
            "detail": self.detail,
            "source": {
                "topic": self.source.topic,
                "partition": self.source.partition,
                "offset": self.source.offset,
                "timestamp_ms": self.source.timestamp_ms,
            },
            "key_b64": None if self.key is None else base64.b64encode(self.key).decode(),
            "value_b64": None if self.value is None else base64.b64encode(self.value).decode(),
            "dead_lettered_at": format_ts(self.dead_lettered_ms),
        }

    def to_bytes(self) -> bytes:
        return orjson.dumps(self.to_json())

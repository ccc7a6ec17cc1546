"""``meter-readings-dlq``: a refused message, with why and where it came from.

::

    {"reason": "negative_energy", "detail": "kwh -1.0 is negative on a consumption meter ...",
     "source": {"topic": "meter-readings", "partition": 3, "offset": 1234,
                "timestamp_ms": 1795430000123},
     "key_b64": "bS0wMDAwNDI=", "value_b64": "eyJtZXRlcl9pZCI6...",
     "key_bytes": 8, "value_bytes": 97, "truncated": false,
     "dead_lettered_at": "2026-11-23T10:30:01.250Z"}

The original key and value are kept byte for byte (base64), so a message can be repaired and
re-produced. The dead letter is keyed by the original key.

A dead letter is bounded whatever arrives, so that hostile input cannot make the worker hold or
produce huge records (a 900 KB reading would otherwise become a 1.2 MB dead letter, above
Kafka's default message limit): an ``oversized`` message keeps only its first
:data:`OVERSIZED_PREFIX_BYTES` bytes, any key longer than :data:`MAX_KEPT_KEY_BYTES` (no meter id
is that long) only its prefix, and ``detail`` at most :data:`MAX_DETAIL_CHARS` characters.
``key_bytes`` / ``value_bytes`` give the original sizes and ``truncated`` says whether anything
was cut. Every other refused value is at most ``STREAMER_MAX_MESSAGE_BYTES`` and kept whole.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from streamer.contract.reasons import DlqReason
from streamer.timeutil import format_ts

OVERSIZED_PREFIX_BYTES: Final = 4096
MAX_KEPT_KEY_BYTES: Final = 1024
MAX_DETAIL_CHARS: Final = 1024


@dataclass(frozen=True, slots=True)
class SourcePosition:
    topic: str
    partition: int
    offset: int
    timestamp_ms: int | None


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A refused message. ``key`` and ``value`` are what is kept (bounded, see the module)."""

    reason: DlqReason
    detail: str
    source: SourcePosition
    key: bytes | None
    value: bytes | None
    dead_lettered_ms: int
    key_bytes: int | None = field(init=False)
    value_bytes: int | None = field(init=False)
    truncated: bool = field(init=False)

    def __post_init__(self) -> None:
        key, value, detail = self.key, self.value, self.detail
        kept_key = key if key is None else key[:MAX_KEPT_KEY_BYTES]
        limit = OVERSIZED_PREFIX_BYTES if self.reason is DlqReason.OVERSIZED else None
        kept_value = value if value is None or limit is None else value[:limit]
        # A shorter slice is a copy: the letter does not keep the whole original alive.
        setter = object.__setattr__
        setter(self, "key_bytes", None if key is None else len(key))
        setter(self, "value_bytes", None if value is None else len(value))
        setter(self, "truncated", kept_key != key or kept_value != value)
        setter(self, "key", kept_key)
        setter(self, "value", kept_value)
        if len(detail) > MAX_DETAIL_CHARS:
            setter(self, "detail", detail[: MAX_DETAIL_CHARS - 3] + "...")

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
            "key_bytes": self.key_bytes,
            "value_bytes": self.value_bytes,
            "truncated": self.truncated,
            "dead_lettered_at": format_ts(self.dead_lettered_ms),
        }

    def to_bytes(self) -> bytes:
        return orjson.dumps(self.to_json())

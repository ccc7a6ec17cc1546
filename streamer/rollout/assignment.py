"""The control message: the live forecaster spec and an optional shadow spec."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from streamer.errors import StreamerError
from streamer.timeutil import format_ts

CONTROL_KEY = b"forecaster"


class ControlMessageError(StreamerError):
    """A control-topic message streamer cannot apply."""


@dataclass(frozen=True, slots=True)
class ModelAssignment:
    """``live``: the spec whose forecasts are published; ``shadow``: forecast too, not published."""

    live: str
    shadow: str | None
    at_ms: int
    note: str = ""

    def to_bytes(self) -> bytes:
        body: dict[str, Any] = {
            "live": self.live,
            "shadow": self.shadow,
            "at": format_ts(self.at_ms),
            "at_ms": self.at_ms,
            "note": self.note,
        }
        return orjson.dumps(body)

    @classmethod
    def from_bytes(cls, raw: bytes) -> ModelAssignment:
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise ControlMessageError(f"control message is not JSON: {exc}") from None
        if not isinstance(body, dict):
            raise ControlMessageError("control message must be a JSON object")
        live, shadow, at_ms = body.get("live"), body.get("shadow"), body.get("at_ms", 0)
        if not isinstance(live, str) or not live:
            raise ControlMessageError("control message needs 'live': a forecaster spec")
        if shadow is not None and (not isinstance(shadow, str) or not shadow):
            raise ControlMessageError("'shadow' must be a forecaster spec or null")
        if not isinstance(at_ms, int):
            raise ControlMessageError("'at_ms' must be epoch milliseconds")
        note = body.get("note", "")
        return cls(live, shadow, at_ms, note if isinstance(note, str) else "")

    def promoted(self, at_ms: int) -> ModelAssignment:
        """The shadow becomes live; no shadow afterwards."""
        if self.shadow is None:
            raise ControlMessageError(
                f"nothing to promote: no shadow model runs beside {self.live}; "
                "start one with `streamer rollout SPEC --shadow`"
            )
        return ModelAssignment(self.shadow, None, at_ms, f"promoted from shadow over {self.live}")

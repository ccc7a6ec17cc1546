"""``forecast-drift``: accuracy and drift reports, per meter (key = meter id) or fleet (key
``fleet``, one per worker and interval).

::

    {"scope": "meter", "meter_id": "m-000042", "kind": "concept_drift",
     "at": "2026-11-23T10:30:01Z", "model_name": "lstm", "model_version": "1",
     "worker": "127.0.0.1:6066", "direction": "up",
     "metrics": {"residual": 4.1, "mae_kwh": 0.31, "smape_pct": 44.0, "pairs": 480},
     "detail": "one-slot-ahead residuals drifted up (Page-Hinkley)"}

Fleet reports: ``kind`` ``accuracy`` (metrics ``mae_kwh.h1`` ... ``coverage.h48``, with
``role`` ``live`` or ``shadow``) and ``data_drift`` (``psi.<feature>``, ``ks.<feature>``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from streamer.timeutil import format_ts

FLEET_KEY = b"fleet"


@dataclass(frozen=True, slots=True)
class DriftReport:
    scope: Literal["meter", "fleet"]
    kind: Literal["accuracy", "data_drift", "concept_drift"]
    at_ms: int
    model_name: str
    model_version: str
    meter_id: str | None = None
    worker: str | None = None
    role: Literal["live", "shadow"] | None = None
    direction: str | None = None
    metrics: dict[str, float | None] = field(default_factory=dict)
    detail: str = ""

    @property
    def key(self) -> bytes:
        return FLEET_KEY if self.meter_id is None else self.meter_id.encode()

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "scope": self.scope,
            "meter_id": self.meter_id,
            "kind": self.kind,
            "at": format_ts(self.at_ms),
            "model_name": self.model_name,
            "model_version": self.model_version,
            "metrics": {
                k: (None if v is None or not math.isfinite(v) else round(float(v), 6))
                for k, v in self.metrics.items()
            },
            "detail": self.detail,
        }
        for name in ("worker", "role", "direction"):
            value = getattr(self, name)
            if value is not None:
                body[name] = value
        return body

    def to_bytes(self) -> bytes:
        return orjson.dumps(self.to_json())

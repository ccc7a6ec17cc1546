"""Reading simulator messages back, independently of the simulator's own code."""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from streamer.simulate.faults import FaultTally
from streamer.simulate.slots import SlotChunk

DAY_MS = 86_400_000


def ts_to_ms(ts: object) -> int:
    if isinstance(ts, int):
        return ts
    parsed = datetime.fromisoformat(str(ts))
    assert parsed.utcoffset() is not None, f"ts {ts!r} has no offset"
    return int(parsed.timestamp() * 1000)


def classify(value: bytes, slot_end_ms: int) -> str:
    """``valid`` or the kind of breakage of one message (stdlib json: it reads ``NaN``)."""
    try:
        obj: dict[str, Any] = json.loads(value)
    except ValueError:
        return "invalid_json"
    energy_field = "register_kwh" if "register_kwh" in obj else "kwh"
    if "meter_id" not in obj or "ts" not in obj or energy_field not in obj:
        return "missing_field"
    energy = obj[energy_field]
    if isinstance(energy, str):
        return "wrong_type"
    if not math.isfinite(energy):
        return "non_finite"
    if obj["ts"] == "yesterday":
        return "invalid_timestamp"
    if ts_to_ms(obj["ts"]) > slot_end_ms + DAY_MS:
        return "future_timestamp"
    if energy < 0 and obj["meter_type"] == "consumption":
        return "negative_energy"
    if energy_field == "kwh" and abs(energy) >= 1e6:
        return "above_physical_bound"
    return "valid"


def tally_from_messages(chunks: Iterable[SlotChunk], readings: int) -> FaultTally:
    """Count the fates of ``readings`` readings from the messages alone."""
    kinds: Counter[str] = Counter()
    on_time: Counter[tuple[str, int]] = Counter()
    late = 0
    for chunk in chunks:
        for _key, value in chunk.messages:
            kind = classify(value, chunk.slot_end_ms)
            if kind != "valid":
                kinds[kind] += 1
                continue
            obj = json.loads(value)
            ts_ms = ts_to_ms(obj["ts"])
            if chunk.is_flush or ts_ms < chunk.slot_end_ms:
                late += 1
            else:
                assert ts_ms == chunk.slot_end_ms, "an on-time reading must carry its slot end"
                on_time[(obj["meter_id"], ts_ms)] += 1
    assert set(on_time.values()) <= {1, 2}, "a reading is sent at most twice"
    clean = sum(1 for c in on_time.values() if c == 1)
    duplicated = sum(1 for c in on_time.values() if c == 2)
    malformed = {f"malformed_{k}": v for k, v in kinds.items()}
    accounted = clean + duplicated + late + sum(kinds.values())
    return FaultTally(
        clean=clean,
        missing=readings - accounted,
        duplicated=duplicated,
        out_of_order=late,
        **malformed,
    )

"""Pure helpers of the benchmark: percentiles, forecast matching, saturation, record layout."""

from __future__ import annotations

import itertools
import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

import orjson

_FORECAST_PREFIX = b'{"forecast_id":"'


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The nearest-rank ``q`` quantile (0 < q <= 1) of values sorted ascending.

    Nearest rank: the smallest value with at least ``q`` of the values at or below it, so a
    p99.9 of 1,000 values is the largest but one, never an interpolation between two.
    """
    if not sorted_values:
        raise ValueError("percentile of no values")
    if not 0.0 < q <= 1.0:
        raise ValueError(f"quantile {q} is not in (0, 1]")
    rank = math.ceil(q * len(sorted_values))
    return float(sorted_values[max(rank, 1) - 1])


def latency_summary(seconds: Sequence[float]) -> dict[str, Any]:
    """Count, p50/p99/p99.9, mean and max of latencies given in seconds, in milliseconds."""
    if not seconds:
        return {"count": 0}
    ordered = sorted(seconds)
    return {
        "count": len(ordered),
        "p50_ms": round(percentile(ordered, 0.50) * 1000, 1),
        "p99_ms": round(percentile(ordered, 0.99) * 1000, 1),
        "p999_ms": round(percentile(ordered, 0.999) * 1000, 1),
        "mean_ms": round(sum(ordered) / len(ordered) * 1000, 1),
        "max_ms": round(ordered[-1] * 1000, 1),
    }


def forecast_origin(key: bytes, value: bytes) -> int:
    """The ``origin_ts`` (epoch ms) of a ``meter-forecasts`` record whose key is the meter id.

    A forecast starts ``{"forecast_id":"<meter>:<origin ms>:...``, so the origin is read from
    the first bytes; any other layout is parsed as JSON.
    """
    head = _FORECAST_PREFIX + key + b":"
    if value.startswith(head):
        end = value.find(b":", len(head))
        digits = value[len(head) : end]
        if end > 0 and digits.isdigit():
            return int(digits)
    origin = orjson.loads(value)["origin_ts"]
    return int(datetime.fromisoformat(origin.replace("Z", "+00:00")).timestamp() * 1000)


_ISSUED_AT = b'"issued_at":"'


def forecast_issued_ms(value: bytes) -> int:
    """The ``issued_at`` (epoch ms) of a ``meter-forecasts`` record: when the worker began the
    batch that made it (every forecast of a batch has the same)."""
    start = value.find(_ISSUED_AT)
    if start >= 0:
        start += len(_ISSUED_AT)
        end = value.find(b'"', start)
        if end > start:
            return _epoch_ms(value[start:end].decode())
    return _epoch_ms(orjson.loads(value)["issued_at"])


@lru_cache(maxsize=4096)
def _epoch_ms(text: str) -> int:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return round(moment.timestamp() * 1000)


def batch_cycles(issued_ms: Sequence[int]) -> dict[str, Any]:
    """Forecasts/s over complete batch cycles at saturation, from the forecasts' ``issued_at``.

    The forecasts of one batch share its start time, so the distinct times are the batches.
    The first batches of a backlog are taken while it is still arriving: leading batches with
    fewer than half the median batch's forecasts are the ramp-up and are left out. From the
    first batch after them to the last batch's start, the worker made every batch but the last:
    the rate is their forecasts over that span (a cycle: take a batch, process it, deliver its
    outputs). Also the forecasts per batch and the cycle times of that span.
    """
    counts: dict[int, int] = {}
    for at in issued_ms:
        counts[at] = counts.get(at, 0) + 1
    starts = sorted(counts)
    sizes = [counts[at] for at in starts]
    median = percentile(sorted(sizes), 0.5) if sizes else 0
    ramp = 0
    while ramp < len(sizes) - 1 and sizes[ramp] < median / 2:
        ramp += 1
    out: dict[str, Any] = {
        "batches": len(starts),
        "ramp_up_batches": ramp,
        "forecasts": sum(sizes),
        "forecasts_per_batch": {
            "min": min(sizes, default=0),
            "median": median,
            "max": max(sizes, default=0),
        },
    }
    span, made = starts[ramp:], sizes[ramp:-1]
    if len(span) < 2:
        return {
            **out,
            "seconds": None,
            "forecasts_in_span": None,
            "forecasts_per_s": None,
            "mean_batch_forecasts_in_span": None,
            "cycle_seconds": None,
        }
    seconds = (span[-1] - span[0]) / 1000
    cycles = [(b - a) / 1000 for a, b in itertools.pairwise(span)]
    return {
        **out,
        "seconds": round(seconds, 3),
        "forecasts_in_span": sum(made),
        "forecasts_per_s": round(sum(made) / seconds, 1) if seconds > 0 else None,
        "mean_batch_forecasts_in_span": round(sum(made) / len(made), 1),
        "cycle_seconds": {
            "min": round(min(cycles), 3),
            "median": round(percentile(sorted(cycles), 0.5), 3),
            "max": round(max(cycles), 3),
        },
    }


@dataclass(frozen=True, slots=True)
class LagSample:
    """Seconds since a load step began, and readings produced but not yet consumed then."""

    at: float
    backlog: int


def saturation(samples: Sequence[LagSample], rate: float, batch_events: int = 0) -> dict[str, Any]:
    """Whether the worker fell behind an offered load for good, judged from its backlog.

    A worker that keeps up still holds a backlog: the readings that arrive while it handles a
    batch (up to ``batch_events``) wait for the next one, so the backlog saws up and down by
    about a batch. Saturated means more than that: at the end the backlog exceeds both two
    seconds of the load and two batches, and it kept growing over the second half of the step
    (least-squares slope above 10% of the rate).
    """
    if len(samples) < 4:
        return {"saturated": False, "reason": "too few samples to judge", "slope_per_s": None}
    half = [s for s in samples if s.at >= samples[-1].at / 2] or list(samples[-2:])
    slope = _slope([s.at for s in half], [float(s.backlog) for s in half])
    end = samples[-1].backlog
    limit = max(2.0 * rate, 2.0 * batch_events)
    grows = slope > 0.1 * rate
    behind = end > limit
    if grows and behind:
        reason = (
            f"backlog {end:,} readings at the end ({end / rate:.1f} s of load), "
            f"growing {slope:,.0f}/s over the second half of the step"
        )
    elif behind:
        reason = f"backlog {end:,} readings at the end but not growing ({slope:,.0f}/s)"
    else:
        reason = (
            f"backlog {end:,} readings at the end, within {limit:,.0f} (2 s of load or 2 "
            f"batches; slope {slope:,.0f}/s)"
        )
    return {"saturated": grows and behind, "reason": reason, "slope_per_s": round(slope, 1)}


def _slope(xs: Sequence[float], ys: Sequence[float]) -> float:
    n = len(xs)
    if n < 2:
        return 0.0
    mx, my = sum(xs) / n, sum(ys) / n
    den = sum((x - mx) ** 2 for x in xs)
    if den == 0:
        return 0.0
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den


_RECORD_HEADER = struct.Struct("<2sBH")
_LENGTH = struct.Struct("<I")
RECORD_PARTS = (
    "window",
    "forecast_ledger",
    "drift_detector",
    "rolling_accuracy",
    "interval_calibration",
)


def record_sections(value: bytes) -> dict[str, int]:
    """Bytes of each part of a ``meter-state`` table value (``streamer.pipeline.meter_record``).

    Layout: ``b"MR"``, version u8, partition u16, offset i64 (versions 3 and 4; none in
    version 2), then (length u32, bytes) parts: four, and the interval calibration from version
    4. Returns the header and length prefixes as ``framing`` beside the parts.
    """
    if len(value) < _RECORD_HEADER.size or value[:2] != b"MR":
        raise ValueError("not a meter record")
    header = _RECORD_HEADER.size + (8 if value[2] >= 3 else 0)
    offset = header
    out: dict[str, int] = {"framing": header}
    for name in RECORD_PARTS if value[2] >= 4 else RECORD_PARTS[:4]:
        (length,) = _LENGTH.unpack_from(value, offset)
        out["framing"] += _LENGTH.size
        out[name] = length
        offset += _LENGTH.size + length
    if offset != len(value):
        raise ValueError(f"meter record of {len(value)} bytes has {len(value) - offset} extra")
    return out


def ratio(value: float | None, ceiling: float | None) -> float | None:
    if value is None or ceiling is None or ceiling <= 0:
        return None
    return round(value / ceiling, 4)

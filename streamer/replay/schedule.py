"""What a replay sends and when (pure): a history's rows in time order, grouped by timestamp.

A history frame (``meter_id, ts, kwh``, as :func:`streamer.evaluate.history.load_history` reads
it) becomes :class:`ReplayRows`: rows without ``kwh`` dropped, optionally limited to the first
meters and to a time range, sorted by time, then meter id. :func:`send_schedule` groups the rows
of one timestamp into a :class:`ReplayStep` sent ``(ts - first ts) / speedup`` wall seconds after
the start (speedup 0: all at once, as fast as Kafka takes them). :func:`encode_rows` turns rows
into contract readings keyed by meter id.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from streamer.contract.reading import MeterType, Reading, encode_reading
from streamer.replay.errors import ReplayConfigError
from streamer.simulate.wire import Message

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
OBJ = npt.NDArray[np.object_]

METER_TYPES: Final = ("consumption", "net")


@dataclass(frozen=True, slots=True)
class ReplayRows:
    """The rows to replay, in send order (time, then meter id)."""

    meter_ids: OBJ
    ts_ms: I64
    kwh: F64
    is_net: npt.NDArray[np.bool_]
    """Per row: the meter sends ``meter_type`` ``net`` (it has a negative ``kwh`` somewhere)."""
    skipped_empty: int
    """Rows of the (filtered) history left out because their ``kwh`` is empty."""

    def __len__(self) -> int:
        return int(self.ts_ms.size)

    @property
    def meters(self) -> int:
        return int(np.unique(self.meter_ids).size) if len(self) else 0


@dataclass(frozen=True, slots=True)
class ReplayStep:
    """The rows ``[begin, end)`` of one timestamp, due ``at_seconds`` after the replay starts."""

    at_seconds: float
    ts_ms: int
    begin: int
    end: int

    @property
    def size(self) -> int:
        return self.end - self.begin


def parse_time(text: str, flag: str) -> int:
    """``text`` (RFC 3339 / ISO 8601; without an offset: UTC) as epoch milliseconds."""
    try:
        moment = pd.Timestamp(text)
    except (ValueError, TypeError) as exc:
        raise ReplayConfigError(
            f"{flag} {text!r} is not a time ({exc}); write e.g. 2026-01-31T12:00:00Z"
        ) from None
    if pd.isna(moment):
        raise ReplayConfigError(f"{flag} {text!r} is not a time; write e.g. 2026-01-31T12:00:00Z")
    if moment.tzinfo is None:
        moment = moment.tz_localize("UTC")
    return int(moment.value // 1_000_000)


def prepare_rows(
    history: pd.DataFrame,
    *,
    meters: int | None = None,
    start_ms: int | None = None,
    end_ms: int | None = None,
    meter_type: str = "auto",
) -> ReplayRows:
    """The rows of ``history`` to send, in send order.

    ``meters``: only the first N meter ids (sorted); ``start_ms``/``end_ms``: only rows with
    ``start_ms <= ts <= end_ms``; ``meter_type``: ``auto`` (``net`` for a meter with any
    negative ``kwh`` in the rows sent, else ``consumption``), ``consumption`` or ``net``.
    """
    if meters is not None and meters < 1:
        raise ReplayConfigError(f"--meters {meters}: replay at least one meter (or leave it out)")
    if start_ms is not None and end_ms is not None and end_ms < start_ms:
        raise ReplayConfigError("--end is before --start; swap them")
    if meter_type not in ("auto", *METER_TYPES):
        raise ReplayConfigError(f"meter type {meter_type!r}: use auto, consumption or net")
    ids: OBJ = history["meter_id"].astype(str).to_numpy(dtype=object)
    ts: I64 = history["ts"].dt.tz_convert("UTC").dt.as_unit("ms").astype("int64").to_numpy()
    kwh: F64 = history["kwh"].to_numpy(dtype=np.float64)
    keep = np.ones(ts.size, dtype=bool)
    if meters is not None:
        chosen = np.unique(ids)[:meters]
        keep &= np.isin(ids, chosen)
    if start_ms is not None:
        keep &= ts >= start_ms
    if end_ms is not None:
        keep &= ts <= end_ms
    empty = keep & np.isnan(kwh)
    keep &= ~empty
    ids, ts, kwh = ids[keep], ts[keep], kwh[keep]
    order = np.lexsort((ids.astype(str), ts))
    ids, ts, kwh = ids[order], ts[order], kwh[order]
    if meter_type == "auto":
        net_ids = np.unique(ids[kwh < 0])
        is_net = np.isin(ids, net_ids)
    else:
        is_net = np.full(ts.size, meter_type == "net")
    return ReplayRows(ids, ts, kwh, is_net, int(empty.sum()))


def send_schedule(rows: ReplayRows, speedup: float) -> list[ReplayStep]:
    """One step per timestamp, due ``(ts - first ts) / speedup`` seconds after the start.

    ``speedup`` is simulated seconds per wall second; 0 sends every step at once (as fast as
    possible).
    """
    if speedup < 0 or not np.isfinite(speedup):
        raise ReplayConfigError(
            f"--speedup {speedup}: use a positive factor (1 = real time) or 0 (as fast as possible)"
        )
    ts = rows.ts_ms
    if ts.size == 0:
        return []
    starts = np.flatnonzero(np.r_[True, ts[1:] != ts[:-1]])
    ends = np.r_[starts[1:], ts.size]
    first = int(ts[0])
    steps: list[ReplayStep] = []
    for begin, end in zip(starts.tolist(), ends.tolist(), strict=True):
        step_ts = int(ts[begin])
        at = 0.0 if speedup == 0 else (step_ts - first) / 1000.0 / speedup
        steps.append(ReplayStep(at, step_ts, begin, end))
    return steps


def encode_rows(rows: ReplayRows, begin: int, end: int) -> list[Message]:
    """Rows ``[begin, end)`` as ``(meter id, reading JSON)`` messages (the contract's encoding)."""
    out: list[Message] = []
    for meter_id, ts_ms, kwh, net in zip(
        rows.meter_ids[begin:end].tolist(),
        rows.ts_ms[begin:end].tolist(),
        rows.kwh[begin:end].tolist(),
        rows.is_net[begin:end].tolist(),
        strict=True,
    ):
        kind: MeterType = "net" if net else "consumption"
        reading = Reading(
            meter_id=meter_id, ts_ms=ts_ms, kwh=kwh, register_kwh=None, meter_type=kind
        )
        out.append((meter_id.encode(), encode_reading(reading)))
    return out

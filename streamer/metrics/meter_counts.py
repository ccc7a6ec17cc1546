"""Active, silent and flatlined meters among those a worker holds (pure; no per-meter output)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from streamer.pipeline.meter_record import MeterRecord, RecordConfig
from streamer.state.errors import StateDecodeError


@dataclass(frozen=True, slots=True)
class MeterCounts:
    """``held`` = ``active`` + ``silent``; ``flatlined`` may be active or silent."""

    held: int = 0
    active: int = 0
    silent: int = 0
    flatlined: int = 0
    unreadable: int = 0


def count_meters(
    records: Iterable[bytes], *, record: RecordConfig, at_ms: int, silent_after_ms: int
) -> MeterCounts:
    """Count meters by health from their stored records.

    Silent: no reading accepted for more than ``silent_after_ms`` of wall-clock time (by the
    Kafka timestamp of the last one, as the silence timer decides). Flatlined: the newest
    ``flatline_slots`` observed values of the window are equal. Unreadable records are counted
    apart and nowhere else.
    """
    held = active = flatlined = unreadable = 0
    flat_after = record.window.flatline_slots
    for data in records:
        try:
            state = MeterRecord.state_from_bytes(data, record)
        except StateDecodeError:
            unreadable += 1
            continue
        held += 1
        if at_ms - state.last_arrival_ms <= silent_after_ms:  # as state.expiry.silent_meters
            active += 1
        if state.flatline_run_slots(cap=flat_after) >= flat_after:
            flatlined += 1
    return MeterCounts(
        held=held,
        active=active,
        silent=held - active,
        flatlined=flatlined,
        unreadable=unreadable,
    )

"""Silent, expired, active and flatlined meters: one scan of the states a worker holds (pure).

The one rule for silence and expiry is :func:`~streamer.state.expiry.silent_meters` (no reading
accepted for longer than a limit, by the Kafka timestamp of the last one): silence with
``STREAMER_SILENT_SLOTS`` slots, expiry with ``STREAMER_RETENTION_SECONDS``. The same scan gives
the status events and the counts behind the meter gauges, so the two never disagree.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from streamer.contract.status_record import MeterStatus, StatusEvent
from streamer.pipeline.meter_record import MeterRecord, RecordConfig
from streamer.state.errors import StateDecodeError
from streamer.state.expiry import silent_meters


@dataclass(frozen=True, slots=True)
class HeldMeter:
    meter_id: str
    partition: int
    record_bytes: bytes


@dataclass(frozen=True, slots=True)
class MeterCounts:
    """``held`` = ``active`` + ``silent`` (expired meters count as silent); ``flatlined`` may be
    active or silent; unreadable records are counted apart and nowhere else."""

    held: int = 0
    active: int = 0
    silent: int = 0
    flatlined: int = 0
    unreadable: int = 0


@dataclass(slots=True)
class HealthScan:
    status_events: list[StatusEvent] = field(default_factory=list)
    expired: list[HeldMeter] = field(default_factory=list)
    silent_now: set[str] = field(default_factory=set)
    counts: MeterCounts = field(default_factory=MeterCounts)


def scan_meter_health(
    meters: Iterable[HeldMeter],
    *,
    record: RecordConfig,
    at_ms: int,
    silent_after_ms: int,
    retention_ms: int,
    reported_silent: set[str],
) -> HealthScan:
    """Status events for meters newly silent (not in ``reported_silent``) and newly expired,
    and the counts of the meters held (``scan.counts``).

    ``silent_now`` is the set of meters silent at ``at_ms`` (the caller keeps it as the next
    ``reported_silent``, so that a silence is reported once, and again after the meter spoke).
    """
    scan = HealthScan()
    held: list[HeldMeter] = []
    arrivals: list[int] = []
    flat_after = record.window.flatline_slots
    flatlined = unreadable = 0
    for meter in meters:
        try:
            state = MeterRecord.state_from_bytes(meter.record_bytes, record)
        except StateDecodeError:
            unreadable += 1
            continue
        arrivals.append(state.last_arrival_ms)
        if state.flatline_run_slots(cap=flat_after) >= flat_after:
            flatlined += 1
        held.append(meter)
    if not held:
        scan.counts = MeterCounts(unreadable=unreadable)
        return scan
    last = np.array(arrivals, dtype=np.int64)
    silent = silent_meters(last, at_ms, silent_after_ms)
    expired = silent_meters(last, at_ms, retention_ms)
    silent_count = int(np.count_nonzero(silent | expired))
    scan.counts = MeterCounts(
        held=len(held),
        active=len(held) - silent_count,
        silent=silent_count,
        flatlined=flatlined,
        unreadable=unreadable,
    )
    for meter, arrival, is_silent, is_expired in zip(held, arrivals, silent, expired, strict=True):
        if is_expired:
            scan.expired.append(meter)
            scan.status_events.append(
                StatusEvent(
                    meter.meter_id,
                    MeterStatus.EXPIRED,
                    at_ms,
                    arrival,
                    f"state dropped after {retention_ms / 3_600_000:.0f} h of silence",
                )
            )
        elif is_silent:
            scan.silent_now.add(meter.meter_id)
            if meter.meter_id not in reported_silent:
                scan.status_events.append(
                    StatusEvent(
                        meter.meter_id,
                        MeterStatus.SILENT,
                        at_ms,
                        arrival,
                        f"no reading for {(at_ms - arrival) / 60000:.0f} minutes",
                    )
                )
    return scan

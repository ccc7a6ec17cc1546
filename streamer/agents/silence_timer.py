"""A timer that finds silent meters and drops expired ones.

Silence cannot be noticed by waiting for the next reading, so every
``STREAMER_SILENCE_CHECK_INTERVAL_SECONDS`` a timer scans the meters this worker holds: a meter
without a reading for ``STREAMER_SILENT_SLOTS`` slots (wall-clock, by Kafka message timestamp)
gets one ``silent`` status event; one silent for ``STREAMER_RETENTION_SECONDS`` is deleted from
the table (a tombstone to its changelog partition) with an ``expired`` event, so that per-meter
state does not grow without bound. The same scan sets the meter gauges (held, silent, active,
flatlined): one timer, one rule (:mod:`streamer.pipeline.meter_health`). It scans only the
meters of the readings partitions this worker owns, and skips its turn while a rebalance runs
(:mod:`streamer.faust_glue.ownership`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from streamer.agents.runtime import WorkerRuntime
from streamer.faust_glue.ownership import settled_partitions
from streamer.pipeline.config import PipelineConfig
from streamer.pipeline.meter_health import HealthScan, HeldMeter, scan_meter_health
from streamer.pipeline.meter_record import MeterRecord
from streamer.state.errors import StateDecodeError
from streamer.timeutil import now_ms
from streamer.typed_decorators import typed

log = logging.getLogger(__name__)


def held_meters(
    table: Any, unflushed: Mapping[str, bytes], owned: frozenset[int] | None = None
) -> list[HeldMeter]:
    """The meters in the state table, with the newer bytes of those whose records changed
    since their last write (coalesced state writes: ``unflushed``), so that a meter whose new
    readings are not written yet is not taken for silent or expired; only those of the
    ``owned`` readings partitions, when given."""
    meters: list[HeldMeter] = []
    newer = {meter_id.encode(): value for meter_id, value in unflushed.items()}
    for key, value in list(table.data.items()):
        if value is None:
            continue
        data = newer.pop(bytes(key), None) or bytes(value)
        try:
            partition = MeterRecord.partition_of(data)
        except StateDecodeError:
            continue
        meters.append(HeldMeter(bytes(key).decode(errors="replace"), partition, data))
    for key, data in newer.items():  # new meters, not written yet
        meters.append(HeldMeter(key.decode(errors="replace"), MeterRecord.partition_of(data), data))
    if owned is not None:
        meters = [meter for meter in meters if meter.partition in owned]
    return meters


def check_meter_health(runtime: WorkerRuntime, owned: frozenset[int] | None = None) -> HealthScan:
    """One scan of the meters held (those of the ``owned`` readings partitions, when given):
    status events, expiry, and the meter gauges."""
    settings = runtime.settings
    table = runtime.state_table
    scan = scan_meter_health(
        held_meters(table, runtime.processor.unflushed_values(), owned),
        record=PipelineConfig.from_settings(settings).record,
        at_ms=now_ms(),
        silent_after_ms=settings.silent_slots * settings.resolution_seconds * 1000,
        retention_ms=settings.retention_seconds * 1000,
        reported_silent=runtime.silent_reported,
    )
    runtime.core.silent_reported = scan.silent_now
    for meter in scan.expired:
        key = meter.meter_id.encode()
        table.send_changelog(meter.partition, key, None, value_serializer="raw")
        table.data.pop(key, None)
    for event in scan.status_events:
        runtime.topics.status.send_soon(key=event.meter_id.encode(), value=event.to_bytes())
        runtime.metrics.status_events.labels(status=event.status.value).inc()
    runtime.processor.prune_cache(lambda meter_id: table.data.get(meter_id.encode()))
    metrics = runtime.metrics
    counts = scan.counts
    metrics.meters_in_state.set(counts.held - len(scan.expired))
    metrics.silent_meters.set(len(scan.silent_now))
    metrics.active_meters.set(counts.active)
    metrics.flatlined_meters.set(counts.flatlined)
    if scan.expired:
        log.info("expired %d meters silent for %d s", len(scan.expired), settings.retention_seconds)
    return scan


def register_silence_timer(app: Any, runtime: WorkerRuntime) -> None:
    @typed(app.timer(runtime.settings.silence_check_interval_seconds, name="streamer.silence"))
    async def check_silence() -> None:
        async with runtime.core.batch_lock:  # expiry and the cache prune race a batch
            # not while a rebalance runs: the table still holds meters given to another
            # worker, whose expiry would write tombstones to the changelog it recovers from
            owned = settled_partitions(app, runtime.settings.readings_topic)
            if owned is not None:
                check_meter_health(runtime, owned)

"""A timer that finds meters gone silent (no reading for ``silent_slots`` slots of wall time).

Silence cannot be noticed by waiting for the next reading, so a timer scans the meters this
worker holds and publishes a ``silent`` status event once per silence.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from streamer.agents.runtime import WorkerRuntime
from streamer.contract.status_record import MeterStatus, StatusEvent
from streamer.pipeline.config import PipelineConfig
from streamer.state.errors import StateDecodeError
from streamer.state.expiry import silent_meters
from streamer.state.meter_state import MeterState
from streamer.timeutil import now_ms
from streamer.typed_decorators import typed

log = logging.getLogger(__name__)


def scan_silence(
    runtime: WorkerRuntime, items: list[tuple[str, bytes]], at_ms: int
) -> list[StatusEvent]:
    """Status events for meters that newly went silent; forgets meters that spoke again."""
    settings = runtime.settings
    window = PipelineConfig.from_settings(settings).window
    meter_ids: list[str] = []
    last_arrival: list[int] = []
    for meter_id, raw in items:
        try:
            state = MeterState.from_bytes(raw, window)
        except StateDecodeError:
            continue
        meter_ids.append(meter_id)
        last_arrival.append(state.last_arrival_ms)
    if not meter_ids:
        return []
    silent_after_ms = settings.silent_slots * settings.resolution_seconds * 1000
    silent = silent_meters(np.array(last_arrival, dtype=np.int64), at_ms, silent_after_ms)
    events: list[StatusEvent] = []
    for meter_id, arrival, is_silent in zip(meter_ids, last_arrival, silent, strict=True):
        if not is_silent:
            runtime.silent_reported.discard(meter_id)
        elif meter_id not in runtime.silent_reported:
            runtime.silent_reported.add(meter_id)
            minutes = (at_ms - arrival) / 60000
            events.append(
                StatusEvent(
                    meter_id,
                    MeterStatus.SILENT,
                    at_ms,
                    arrival,
                    f"no reading for {minutes:.0f} minutes",
                )
            )
    return events


def register_silence_timer(app: Any, runtime: WorkerRuntime) -> None:
    @typed(app.timer(runtime.settings.silence_check_interval_seconds, name="streamer.silence"))
    async def check_silence() -> None:
        table = runtime.state_table
        items = [
            (bytes(key).decode(errors="replace"), bytes(value))
            for key, value in table.items()
            if value is not None
        ]
        runtime.metrics.meters_in_state.set(len(items))
        for event in scan_silence(runtime, items, now_ms()):
            runtime.status_topic.send_soon(key=event.meter_id.encode(), value=event.to_bytes())
            runtime.metrics.status_events.labels(status=event.status.value).inc()

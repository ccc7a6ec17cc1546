"""The readings agent: micro-batches from ``meter-readings`` through the batch processor.

Per batch: one parse pass, one state write per meter, one forecaster call, and every output
queued with ``send_soon`` (no await per message). The batch ends by waiting until every output
and state write of the batch is delivered (one await per batch); only then are its messages
acknowledged, so a committed offset never covers an output still in a buffer. A crash replays,
never loses (at-least-once); the pipeline makes a replay idempotent (duplicates are recognised
per slot).

(faust's own flush before a commit gives up after 0.1 s without progress, so it cannot be
relied on to have sent everything under load; hence :mod:`streamer.agents.delivery`.)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from streamer.agents import table_value
from streamer.agents.batch_metrics import record_batch
from streamer.agents.delivery import deliver_outputs
from streamer.agents.drift_reporting import publish_batch_scores
from streamer.agents.runtime import WorkerRuntime
from streamer.pipeline.messages import InMessage
from streamer.state.errors import StateDecodeError
from streamer.timeutil import now_ms
from streamer.typed_decorators import typed

log = logging.getLogger(__name__)


def load_state(table: Any, meter_id: str) -> bytes | None:
    """The meter's state bytes from the table (None for a meter not seen or expired)."""
    value = table.get(meter_id.encode())
    if value is None:
        return None
    try:
        return table_value.unpack(value)[1]
    except StateDecodeError:
        log.warning("unreadable table value for meter %r; starting it afresh", meter_id)
        return None


def to_in_message(event: Any) -> InMessage:
    message = event.message
    timestamp = message.timestamp
    return InMessage(
        key=message.key,
        value=message.value,
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        timestamp_ms=None if timestamp is None else int(timestamp * 1000),
    )


async def handle_batch(runtime: WorkerRuntime, stream: Any, events: Sequence[Any]) -> None:
    """Process one batch of faust events and queue every output."""
    started = time.perf_counter()
    messages = [to_in_message(event) for event in events]
    table = runtime.state_table
    result = runtime.processor.process(
        messages, lambda meter_id: load_state(table, meter_id), now_ms()
    )

    # One write per meter, attributed to that meter's last event so that the changelog record
    # goes to the partition of the meter's readings (faust reads the partition from the
    # current event; take_events() leaves none set).
    latest = runtime.latest_forecast_table
    encoded = [(forecast.meter_id, forecast.to_bytes()) for forecast in result.forecasts]
    try:
        for meter_id, write in result.state_writes.items():
            event = events[write.message_index]
            stream._set_current_event(event)
            table[meter_id.encode()] = table_value.pack(event.message.partition, write.value)
        for meter_id, body in encoded:
            # a forecast follows a state change, so the meter has a write (and its event)
            stream._set_current_event(events[result.state_writes[meter_id].message_index])
            latest[meter_id.encode()] = body
    finally:
        stream._set_current_event(None)

    for letter in result.dead_letters:
        runtime.dlq_topic.send_soon(key=letter.key, value=letter.to_bytes())
    for meter_id, body in encoded:
        runtime.forecasts_topic.send_soon(key=meter_id.encode(), value=body)
    for status in result.status_events:
        runtime.status_topic.send_soon(key=status.meter_id.encode(), value=status.to_bytes())

    record_batch(runtime.metrics, messages, result)
    publish_batch_scores(runtime, result)
    await deliver_outputs(runtime.app.producer)
    runtime.metrics.batch_size.observe(len(messages))
    runtime.metrics.batch_duration.observe(time.perf_counter() - started)


def register_readings_agent(app: Any, runtime: WorkerRuntime) -> None:
    settings = runtime.settings

    @typed(app.agent(runtime.readings_topic, name="streamer.readings"))
    async def process_readings(stream: Any) -> None:
        async for events in stream.take_events(
            settings.batch_max_events, within=settings.batch_within_seconds
        ):
            await handle_batch(runtime, stream, events)

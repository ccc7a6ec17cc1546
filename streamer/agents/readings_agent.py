"""The readings agent: micro-batches from ``meter-readings`` through the batch processor.

Per batch: one parse pass, one state write per meter, one forecaster call, and every output
sent without an await per message: tables are updated in memory and their changelog records,
with every output, go out as one Kafka record batch per topic partition
(:class:`~streamer.agents.bulk_sender.BulkSender`; faust's ``send_soon`` costs a coroutine per
message). The batch ends once Kafka acknowledged all of it (outputs first, then state writes:
see :mod:`streamer.agents.delivery` for the semantics); only then are its messages
acknowledged, so a committed offset never covers an output still in a buffer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from streamer.agents.batch_metrics import record_batch
from streamer.agents.bulk_sender import BulkSender, OutRecord
from streamer.agents.delivery import deliver
from streamer.agents.drift_reporting import score_batch
from streamer.agents.exactly_once import deliver_exactly_once, next_offsets
from streamer.agents.runtime import WorkerRuntime
from streamer.contract.drift_record import DriftReport
from streamer.contract.forecast_record import encode_forecasts
from streamer.pipeline.batch_processor import BatchResult, StateWrite
from streamer.pipeline.messages import InMessage
from streamer.timeutil import now_ms
from streamer.typed_decorators import typed

log = logging.getLogger(__name__)


def state_loader(table: Any) -> Callable[[str], bytes | None]:
    """The stored record bytes of a meter (None for a meter not seen or expired).

    Returns the very object the table holds: the processor's decoded-record cache relies on it.
    """
    get = table.data.get

    def load(meter_id: str) -> bytes | None:
        value = get(meter_id.encode())
        return value if isinstance(value, bytes) else None

    return load


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


async def handle_batch(runtime: WorkerRuntime, events: Sequence[Any]) -> None:
    """Process one batch of faust events; return once its outputs are in Kafka."""
    started = time.perf_counter()
    messages = [to_in_message(event) for event in events]
    result = runtime.processor.process(messages, state_loader(runtime.state_table), now_ms())
    drifts = score_batch(runtime, result)
    outputs, state_writes = batch_records(runtime, result, drifts)
    published = lambda: record_batch(runtime.metrics, messages, result)  # noqa: E731
    if runtime.transactional_sender is not None:
        offsets = next_offsets((m.partition, m.offset) for m in messages)
        await deliver_exactly_once(
            runtime.transactional_sender, [*outputs, *state_writes], offsets, published=published
        )
    else:
        sender = runtime.bulk_sender
        if sender is None:
            # faust's producer wraps one aiokafka producer, started before any agent runs
            sender = runtime.bulk_sender = BulkSender(runtime.app.producer._ensure_producer())
        await deliver(sender, outputs, state_writes, published=published)
    runtime.metrics.batch_size.observe(len(messages))
    runtime.metrics.batch_duration.observe(time.perf_counter() - started)


def batch_records(
    runtime: WorkerRuntime, result: BatchResult, drifts: list[DriftReport]
) -> tuple[list[OutRecord], list[OutRecord]]:
    """The batch's outputs (with the latest-forecast changelog) and its state changelog
    records; both tables are updated in memory on the way."""
    settings = runtime.settings
    state = runtime.state_table
    latest = runtime.latest_forecast_table
    state_data = state.data
    latest_data = latest.data
    state_changelog = state.changelog_topic.get_topic_name()
    latest_changelog = latest.changelog_topic.get_topic_name()
    writes = result.state_writes
    outputs: list[OutRecord] = []
    forecasts_topic = settings.forecasts_topic
    # the batch's forecast JSON in one pass (the bytes of each record's to_bytes)
    bodies = encode_forecasts(result.forecasts)
    for forecast, body in zip(result.forecasts, bodies, strict=True):
        key = forecast.meter_id.encode()
        # a forecast follows a state change, so the meter has a write (and its partition)
        partition = writes[forecast.meter_id].partition
        outputs.append(OutRecord(forecasts_topic, None, key, body, partition))
        latest_data[key] = body
        outputs.append(OutRecord(latest_changelog, partition, key, body, partition))
    outputs.extend(
        OutRecord(settings.dlq_topic, None, letter.key, letter.to_bytes(), letter.source.partition)
        for letter in result.dead_letters
    )
    outputs.extend(
        OutRecord(
            settings.status_topic,
            None,
            s.meter_id.encode(),
            s.to_bytes(),
            _source(writes.get(s.meter_id)),
        )
        for s in result.status_events
    )
    outputs.extend(
        OutRecord(
            settings.drift_topic,
            None,
            d.key,
            d.to_bytes(),
            _source(None if d.meter_id is None else writes.get(d.meter_id)),
        )
        for d in drifts
    )
    state_writes: list[OutRecord] = []
    for meter_id, write in writes.items():
        key = meter_id.encode()
        state_data[key] = write.value
        state_writes.append(
            OutRecord(state_changelog, write.partition, key, write.value, write.partition)
        )
    return outputs, state_writes


def _source(write: StateWrite | None) -> int | None:
    return None if write is None else write.partition


def register_readings_agent(app: Any, runtime: WorkerRuntime) -> None:
    settings = runtime.settings

    @typed(app.agent(runtime.readings_topic, name="streamer.readings"))
    async def process_readings(stream: Any) -> None:
        async for events in stream.take_events(
            settings.batch_max_events, within=settings.batch_within_seconds
        ):
            await handle_batch(runtime, events)

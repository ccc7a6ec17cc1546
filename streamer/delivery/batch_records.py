"""A batch result as Kafka records: topic, partition, key, value, and the readings partition
each follows from (an exactly_once transaction's).

Forecasts, dead letters, status events and drift reports are the outputs; the state and
latest-forecast tables are updated in memory on the way and their changelog records returned
beside them. A forecast goes to ``meter-forecasts`` keyed by meter, on the partition of its
readings, as both changelog records of the meter do (co-partitioned with the readings topic);
the latest-forecast changelog holds a pointer to the forecast, not a copy
(:mod:`streamer.delivery.latest_forecast`).
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass

from streamer.contract.drift_record import DriftReport
from streamer.contract.forecast_record import encode_forecasts
from streamer.delivery.bulk_sender import OutRecord
from streamer.delivery.latest_forecast import pointer
from streamer.pipeline.batch_processor import BatchResult, MeterSource

#: ``OutRecord`` from its six fields as one tuple, without the named tuple's ``__new__`` call
#: (records are made per forecast and per meter written)
_record = tuple.__new__


@dataclass(frozen=True, slots=True)
class TableSink:
    """A table's in-memory data (key -> value bytes), the readings partition of each key, and
    its changelog topic."""

    data: MutableMapping[bytes, bytes]
    key_partition: MutableMapping[bytes, int]
    changelog: str


@dataclass(frozen=True, slots=True)
class OutputTopics:
    readings: str
    forecasts: str
    dlq: str
    status: str
    drift: str


def batch_records(
    topics: OutputTopics,
    state: TableSink,
    latest: TableSink,
    result: BatchResult,
    drifts: list[DriftReport],
) -> tuple[list[OutRecord], list[OutRecord]]:
    """The batch's outputs (with the latest-forecast changelog) and its state changelog
    records; both tables are updated in memory on the way."""
    sources = result.sources
    outputs: list[OutRecord] = []
    forecasts_topic = topics.forecasts
    latest_data = latest.data
    latest_partition = latest.key_partition
    latest_changelog = latest.changelog
    # the batch's forecast JSON (the bytes of each record's to_bytes): those not made ahead
    encode_new_forecasts(result)
    bodies = result.forecast_bodies
    for forecast, body in zip(result.forecasts, bodies, strict=True):
        key = forecast.meter_id.encode()
        # a forecast follows a state change, so the meter has a write (and its partition): the
        # forecast goes to that partition, stamped with its issue time, which the changelog
        # points at (streamer.delivery.latest_forecast); the table keeps the JSON in memory
        partition = sources[forecast.meter_id].partition
        issued_ms = forecast.issued_ms
        outputs.append(
            _record(OutRecord, (forecasts_topic, partition, key, body, partition, issued_ms))
        )
        latest_data[key] = body
        latest_partition[key] = partition
        outputs.append(
            _record(
                OutRecord,
                (latest_changelog, partition, key, pointer(partition, issued_ms), partition, None),
            )
        )
    outputs.extend(
        OutRecord(topics.dlq, None, letter.key, letter.to_bytes(), letter.source.partition)
        for letter in result.dead_letters
    )
    # readings that arrived away from their meter's home partition, sent on to it unchanged
    outputs.extend(
        OutRecord(topics.readings, r.partition, r.message.key, r.message.value, r.message.partition)
        for r in result.rerouted
    )
    outputs.extend(
        OutRecord(
            topics.status,
            None,
            s.meter_id.encode(),
            s.to_bytes(),
            _source(sources.get(s.meter_id)),
        )
        for s in result.status_events
    )
    outputs.extend(
        OutRecord(
            topics.drift,
            None,
            d.key,
            d.to_bytes(),
            _source(None if d.meter_id is None else sources.get(d.meter_id)),
        )
        for d in drifts
    )
    state_writes: list[OutRecord] = []
    state_data = state.data
    state_partition = state.key_partition
    state_changelog = state.changelog
    for meter_id, write in result.state_writes.items():
        key = meter_id.encode()
        state_data[key] = write.value
        state_partition[key] = write.partition
        state_writes.append(
            _record(
                OutRecord,
                (state_changelog, write.partition, key, write.value, write.partition, None),
            )
        )
    return outputs, state_writes


def encode_new_forecasts(result: BatchResult) -> None:
    """Make the JSON of ``result``'s forecasts that have none yet, in one pass (a forecast
    record is read-only once issued, so its bytes can be made as soon as its chunk is
    finished, while the later chunks' models run)."""
    made = len(result.forecast_bodies)
    if made < len(result.forecasts):
        result.forecast_bodies.extend(encode_forecasts(result.forecasts[made:]))


def _source(source: MeterSource | None) -> int | None:
    return None if source is None else source.partition

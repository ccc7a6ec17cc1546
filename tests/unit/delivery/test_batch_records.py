"""A batch result as Kafka records: rerouted readings go on to their home partition."""

from __future__ import annotations

from streamer.delivery.batch_records import OutputTopics, TableSink, batch_records
from streamer.pipeline.batch_processor import BatchResult, Reroute
from streamer.pipeline.messages import InMessage

TOPICS = OutputTopics("readings", "forecasts", "dlq", "status", "drift")


def sink(changelog: str) -> TableSink:
    return TableSink({}, {}, changelog)


def test_a_rerouted_reading_goes_unchanged_to_its_home_partition_in_its_sources_transaction() -> (
    None
):
    message = InMessage(b"m-1", b'{"meter_id": "m-1"}', "readings", 3, 17, 0)
    result = BatchResult()
    result.rerouted.append(Reroute(message, 1))
    outputs, state = batch_records(TOPICS, sink("state"), sink("latest"), result, [])
    assert state == []
    (record,) = outputs
    assert (record.topic, record.partition, record.key, record.value, record.source) == (
        "readings",
        1,
        b"m-1",
        b'{"meter_id": "m-1"}',
        3,
    )

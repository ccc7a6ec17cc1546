"""A batch result as Kafka records: rerouted readings go on to their home partition; forecasts
are written once, with JSON that may be made ahead, chunk by chunk."""

from __future__ import annotations

import numpy as np

from streamer.contract.forecast_record import ForecastRecord
from streamer.delivery.batch_records import (
    OutputTopics,
    TableSink,
    batch_records,
    encode_new_forecasts,
)
from streamer.pipeline.batch_processor import BatchResult, MeterSource, Reroute
from streamer.pipeline.messages import InMessage

TOPICS = OutputTopics("readings", "forecasts", "dlq", "status", "drift")


def sink(changelog: str) -> TableSink:
    return TableSink({}, {}, changelog)


def _forecast(meter_id: str, origin_ms: int, scale: float) -> ForecastRecord:
    res_ms = 1_800_000
    horizon = origin_ms + res_ms * np.arange(1, 4, dtype=np.int64)
    point = np.array([0.1, 0.2, 0.3]) * scale
    return ForecastRecord(
        meter_id,
        origin_ms + 61_000,
        origin_ms,
        "lstm",
        "2",
        False,
        1800,
        1.0,
        horizon,
        point,
        np.stack([point * 0.5, point, point * 1.5], axis=1),
        (0.1, 0.5, 0.9),
    )


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


def test_a_forecast_is_written_once_and_the_changelog_points_at_it() -> None:
    from streamer.delivery.latest_forecast import SIZE, read_pointer

    forecast = _forecast("m-1", 1_795_392_000_000, 1.0)
    issued_ms = forecast.issued_ms
    result = BatchResult()
    result.forecasts.append(forecast)
    result.sources["m-1"] = MeterSource(2, 0)  # the meter's readings partition
    latest = sink("latest")
    outputs, _ = batch_records(TOPICS, sink("state"), latest, result, [])
    published, changelog = outputs
    # the forecast: on the meter's partition, stamped with its issue time
    assert (published.topic, published.partition, published.key) == ("forecasts", 2, b"m-1")
    assert published.timestamp_ms == issued_ms and published.value == forecast.to_bytes()
    # the changelog: 13 bytes saying where it is; the table keeps the JSON in memory
    assert (changelog.topic, changelog.partition) == ("latest", 2)
    assert len(changelog.value or b"") == SIZE < len(published.value or b"") / 10
    assert read_pointer(changelog.value or b"") == (2, issued_ms)
    assert latest.data[b"m-1"] == published.value and latest.key_partition[b"m-1"] == 2
    assert read_pointer(published.value or b"") is None  # JSON is never taken for a pointer


def test_forecast_json_made_ahead_chunk_by_chunk_is_the_json_made_at_the_end() -> None:
    origin_ms = 1_795_392_000_000
    forecasts = [_forecast(f"m-{i}", origin_ms, 1.0 + i / 7) for i in range(5)]

    def result_with(ahead: list[int]) -> BatchResult:
        result = BatchResult()
        for i, forecast in enumerate(forecasts):
            result.sources[forecast.meter_id] = MeterSource(i % 3, i)
            result.forecasts.append(forecast)
            if i in ahead:  # a chunk ended here: its forecasts' JSON made then
                encode_new_forecasts(result)
        return result

    at_the_end = result_with([])
    chunked = result_with([1, 2])  # chunks [0, 1], [2], and [3, 4] left for batch_records
    assert len(chunked.forecast_bodies) == 3
    assert chunked.forecast_bodies == [f.to_bytes() for f in forecasts[:3]]
    made_at_the_end, _ = batch_records(TOPICS, sink("s"), sink("l"), at_the_end, [])
    made_ahead, _ = batch_records(TOPICS, sink("s"), sink("l"), chunked, [])
    assert made_ahead == made_at_the_end
    assert [r.value for r in made_ahead if r.topic == "forecasts"] == [
        f.to_bytes() for f in forecasts
    ]
    encode_new_forecasts(chunked)  # nothing new: nothing made twice
    assert len(chunked.forecast_bodies) == len(forecasts)

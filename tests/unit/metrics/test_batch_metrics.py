"""record_batch on real batch results: window updates, end-to-end latency, fleet energy."""

from __future__ import annotations

import math

import orjson
from prometheus_client import CollectorRegistry

from streamer.agents.batch_metrics import record_batch
from streamer.forecast.registry import make_forecaster
from streamer.metrics.pipeline_metrics import PipelineMetrics
from streamer.pipeline.batch_processor import BatchProcessor, BatchResult, FixedModels
from streamer.pipeline.config import PipelineConfig
from streamer.pipeline.messages import InMessage
from streamer.settings import load_settings

RES_MS = 1_800_000
T0 = 1_795_392_000_000  # a slot boundary
NOW = T0 + 10 * 86_400_000
TOPIC = "meter-readings"


def reading(meter: str, slot: int, kwh: float, offset: int, arrived_ms: int) -> InMessage:
    body = {"meter_id": meter, "ts": T0 + slot * RES_MS, "kwh": kwh, "meter_type": "net"}
    return InMessage(meter.encode(), orjson.dumps(body), TOPIC, offset % 2, offset, arrived_ms)


def load(slot: int, meter: str) -> float:
    """A daily shape; meter "pv" feeds in (negative) by day."""
    base = 0.2 + 0.1 * ((slot % 48) / 48)
    return round(-base if meter == "pv" else base, 3)


class Store(dict[str, bytes]):
    def load(self, meter_id: str) -> bytes | None:
        return self.get(meter_id)


def processor() -> BatchProcessor:
    settings = load_settings(min_observed_fraction=0.1)
    naive = make_forecaster("seasonal_naive_day", horizon_slots=48, resolution_seconds=1800)
    shadow = make_forecaster("seasonal_naive_day", horizon_slots=48, resolution_seconds=1800)
    return BatchProcessor(PipelineConfig.from_settings(settings), FixedModels(naive, shadow), naive)


def run(p: BatchProcessor, store: Store, messages: list[InMessage]) -> BatchResult:
    result = p.process(messages, store.load, NOW)
    for meter_id, write in result.state_writes.items():
        store[meter_id] = write.value
    return result


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    value = registry.get_sample_value(name, labels)
    assert value is not None, f"no sample {name}{labels}"
    return value


def test_a_batch_counts_window_updates_latency_offsets_and_energy() -> None:
    registry = CollectorRegistry()
    metrics = PipelineMetrics(registry, process_metrics=False)
    p, store = processor(), Store()
    meters = ("house", "pv")
    offset = 0
    results: list[BatchResult] = []
    for slots in (range(0, 120), range(120, 121), range(121, 122)):
        messages = []
        for slot in slots:
            for meter in meters:
                messages.append(reading(meter, slot, load(slot, meter), offset, NOW - 2000))
                offset += 1
        if slots.start == 121:  # and a duplicate of the last house reading
            messages.append(reading("house", 121, load(121, "house"), offset, NOW - 2000))
            offset += 1
        result = run(p, store, messages)
        record_batch(metrics, messages, result, published_at_ms=NOW)
        results.append(result)

    # the last batch: two actuals matched with the forecasts made one slot earlier
    assert {m.horizon_slots for m in result.matches} == {1}
    assert len(result.matches) == len(result.shadow_matches) == 2
    assert len(result.forecasts) == 2

    consumed = offset
    assert sample(registry, "streamer_readings_consumed_total") == consumed
    assert sample(registry, "streamer_window_updates_total") == consumed - 1  # not the duplicate
    assert sample(registry, "streamer_reading_outcomes_total", outcome="duplicate") == 1
    # every published forecast has its latency: 2 s from its reading's Kafka timestamp
    forecasts = sample(registry, "streamer_end_to_end_latency_seconds_count")
    assert (
        forecasts
        == sum(len(r.forecasts) for r in results)
        == sample(
            registry,
            "streamer_forecasts_total",
            model_name="seasonal_naive_day",
            model_version="1",
            fallback="false",
        )
    )
    assert math.isclose(
        sample(registry, "streamer_end_to_end_latency_seconds_sum"), forecasts * 2.0
    )
    assert sample(registry, "streamer_end_to_end_latency_seconds_bucket", le="2.5") == forecasts
    assert sample(registry, "streamer_end_to_end_latency_seconds_bucket", le="1.0") == 0

    # offsets processed: partitions 0 and 1 of the readings topic
    assert metrics.consumer_lag.next_offset(TOPIC, (consumed - 1) % 2) == consumed
    assert metrics.consumer_lag.next_offset(TOPIC, consumed % 2) == consumed - 1

    for role in ("live", "shadow"):
        matches = [m for r in results for m in (r.matches if role == "live" else r.shadow_matches)]
        assert {m.horizon_slots for m in matches} == {1} and len(matches) == 4
        labels = {"role": role, "horizon_slots": "1"}
        for name, value in (
            ("streamer_fleet_actual_energy_kwh_total", lambda m: m.actual),
            ("streamer_fleet_forecast_energy_kwh_total", lambda m: m.point),
        ):
            drawn = sum(value(m) for m in matches if value(m) >= 0)
            fed_in = -sum(value(m) for m in matches if value(m) < 0)
            assert drawn > 0 and fed_in > 0
            assert math.isclose(sample(registry, name, flow="import", **labels), drawn)
            assert math.isclose(sample(registry, name, flow="export", **labels), fed_in)


def test_readings_without_a_kafka_timestamp_add_no_latency() -> None:
    registry = CollectorRegistry()
    metrics = PipelineMetrics(registry, process_metrics=False)
    p, store = processor(), Store()
    messages = [
        InMessage(
            b"m",
            orjson.dumps({"meter_id": "m", "ts": T0 + s * RES_MS, "kwh": 0.5}),
            TOPIC,
            0,
            s,
            None,
        )
        for s in range(100)
    ]
    result = run(p, store, messages)
    assert result.forecasts
    record_batch(metrics, messages, result, published_at_ms=NOW)
    assert sample(registry, "streamer_end_to_end_latency_seconds_count") == 0
    assert sample(registry, "streamer_window_updates_total") == 100


def test_offsets_given_by_the_caller_stand_for_walking_the_messages() -> None:
    walked, given = (PipelineMetrics(CollectorRegistry(), process_metrics=False) for _ in "ab")
    messages = [reading("house", slot, 1.0, 10 + slot, NOW - 2000) for slot in range(3)]
    result = run(processor(), Store(), messages)
    record_batch(walked, messages, result, published_at_ms=NOW)
    last = messages[-1]
    record_batch(
        given,
        messages,
        result,
        published_at_ms=NOW,
        last_offsets=[(last.topic, last.partition, last.offset)],
    )
    for metrics in (walked, given):
        assert metrics.consumer_lag.next_offset(last.topic, last.partition) == 13

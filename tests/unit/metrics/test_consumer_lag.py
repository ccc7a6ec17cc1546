"""Consumer lag per partition: end offset minus the next offset the worker will process."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from streamer.metrics.pipeline_metrics import PipelineMetrics

TOPIC = "meter-readings"


def lag_samples(registry: CollectorRegistry) -> dict[tuple[str, str], float]:
    return {
        (s.labels["topic"], s.labels["partition"]): s.value
        for family in registry.collect()
        if family.name == "streamer_consumer_lag_messages"
        for s in family.samples
    }


def test_lag_counts_what_was_processed_not_what_was_fetched() -> None:
    registry = CollectorRegistry()
    metrics = PipelineMetrics(registry, process_metrics=False)
    lag = metrics.consumer_lag
    lag.processed([(TOPIC, 0, 9), (TOPIC, 0, 4), (TOPIC, 1, 99)])  # any order
    assert lag.next_offset(TOPIC, 0) == 10
    published = lag.update({(TOPIC, 0): 25, (TOPIC, 1): 100}, positions={(TOPIC, 0): 20})
    # partition 0: processed up to 9 -> 15 behind, although the consumer fetched up to 20
    assert published == {(TOPIC, 0): 15, (TOPIC, 1): 0}
    assert lag_samples(registry) == {(TOPIC, "0"): 15.0, (TOPIC, "1"): 0.0}


def test_position_stands_in_until_a_partition_is_processed_and_unknown_ones_are_left_out() -> None:
    registry = CollectorRegistry()
    lag = PipelineMetrics(registry, process_metrics=False).consumer_lag
    published = lag.update({(TOPIC, 2): 500, (TOPIC, 3): 10}, positions={(TOPIC, 2): 120})
    assert published == {(TOPIC, 2): 380}
    assert lag_samples(registry) == {(TOPIC, "2"): 380.0}


def test_revoked_partitions_lose_their_series_and_offsets() -> None:
    registry = CollectorRegistry()
    lag = PipelineMetrics(registry, process_metrics=False).consumer_lag
    lag.processed([(TOPIC, 0, 1), (TOPIC, 1, 1)])
    lag.update({(TOPIC, 0): 5, (TOPIC, 1): 5})
    assert set(lag_samples(registry)) == {(TOPIC, "0"), (TOPIC, "1")}
    lag.update({(TOPIC, 1): 7})  # partition 0 went to another worker
    assert lag_samples(registry) == {(TOPIC, "1"): 5.0}
    assert lag.next_offset(TOPIC, 0) is None
    lag.update({})
    assert lag_samples(registry) == {}


def test_lag_is_never_negative() -> None:
    registry = CollectorRegistry()
    lag = PipelineMetrics(registry, process_metrics=False).consumer_lag
    lag.processed([(TOPIC, 0, 50)])
    assert lag.update({(TOPIC, 0): 40}) == {(TOPIC, 0): 0}  # a stale end offset

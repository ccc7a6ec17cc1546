"""The metrics object: names with units, no per-meter labels, every name it can export."""

from __future__ import annotations

import re

import pytest
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.metrics import MetricWrapperBase

from streamer.metrics.names import exported_metric_names
from streamer.metrics.pipeline_metrics import PipelineMetrics

UNITS = ("_seconds", "_bytes", "_kwh", "_messages", "_percent", "_ratio", "_total")
# unit-less by nature: counts of things (meters, partitions), flags and info gauges, indices
UNITLESS = {
    "streamer_meters_in_state",
    "streamer_active_meters",
    "streamer_silent_meters",
    "streamer_flatlined_meters",
    "streamer_assigned_partitions",
    "streamer_model_info",
    "streamer_model_cpu_fallback",
    "streamer_data_drift_psi",
    "streamer_data_drift_ks",
    "streamer_grouped_meters",
}


def families(metrics: PipelineMetrics) -> dict[str, tuple[str, list[str]]]:
    """name -> (type, label names) of every metric the object holds."""
    return {
        metric._name: (metric._type, list(metric._labelnames))
        for metric in vars(metrics).values()
        if isinstance(metric, MetricWrapperBase)
    }


def test_names_carry_units_and_no_label_names_a_meter() -> None:
    metrics = PipelineMetrics(CollectorRegistry())
    found = families(metrics)
    assert len(found) >= 30
    for name, (kind, labels) in found.items():
        assert re.fullmatch(r"streamer_[a-z0-9_]+", name), name
        if kind == "counter":
            continue  # prometheus_client adds _total
        assert name in UNITLESS or name.endswith(UNITS), f"{name}: no unit in the name"
        assert not {"meter", "meter_id", "key"} & set(labels), f"{name}: per-meter label"
        if name != "streamer_watched_group_kwh":  # opt-in, at most 20 groups
            assert not {"group", "group_id"} & set(labels), f"{name}: per-group label"


def test_exported_names_include_every_sample_suffix() -> None:
    names = exported_metric_names(PipelineMetrics(CollectorRegistry()).registry)
    for expected in (
        "streamer_readings_consumed_total",
        "streamer_end_to_end_latency_seconds_bucket",
        "streamer_end_to_end_latency_seconds_count",
        "streamer_end_to_end_latency_seconds_sum",
        "streamer_consumer_lag_messages",
        "streamer_window_updates_total",
        "streamer_fleet_actual_energy_kwh_total",
        "streamer_fleet_forecast_energy_kwh_total",
        "streamer_model_cpu_fallback",
        "streamer_active_meters",
        "streamer_flatlined_meters",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
    ):
        assert expected in names
    assert "streamer_readings_consumed" not in names  # a counter is only seen with _total


def test_a_labelled_metric_without_children_is_still_exported() -> None:
    registry = CollectorRegistry()
    Counter("x_events_total", "help", ["kind"], registry=registry)
    assert {"x_events_total", "x_events_created"} <= exported_metric_names(registry)


def test_labels_known_in_advance_exist_before_anything_happens() -> None:
    """So that dashboards show zeros rather than "No data" on a quiet worker."""
    metrics = PipelineMetrics(CollectorRegistry(), process_metrics=False)
    text = {
        (s.name, tuple(sorted(s.labels.items())))
        for family in metrics.registry.collect()
        for s in family.samples
    }
    for sample in [
        ("streamer_forecasts_skipped_total", (("reason", "insufficient_history"),)),
        ("streamer_meter_status_events_total", (("status", "flatline"),)),
        ("streamer_concept_drift_events_total", (("direction", "up"),)),
        ("streamer_rollouts_total", (("result", "refused"),)),
        ("streamer_dead_letters_total", (("reason", "invalid_json"),)),
    ]:
        assert sample in text


@pytest.mark.parametrize("process_metrics", [True, False])
def test_process_metrics_are_optional(process_metrics: bool) -> None:
    names = exported_metric_names(
        PipelineMetrics(CollectorRegistry(), process_metrics=process_metrics).registry
    )
    assert ("process_cpu_seconds_total" in names) is process_metrics

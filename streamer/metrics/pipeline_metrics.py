"""The worker's Prometheus metrics. Aggregates only: per-meter detail goes to Kafka topics."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from streamer.contract.reasons import DlqReason

# Batch sizes in messages; durations in seconds with millisecond-scale buckets.
BATCH_SIZE_BUCKETS = (1, 5, 10, 50, 100, 250, 500, 1000, 2000, 5000, 10000)
FAST_SECONDS_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
)
OUTCOMES = ("applied", "corrected", "duplicate", "dead_lettered")


class PipelineMetrics:
    """Counters whose sum proves nothing was lost:

    ``streamer_readings_consumed_total`` == sum over outcome of
    ``streamer_reading_outcomes_total{outcome}``, and the ``dead_lettered`` outcome equals the sum
    of ``streamer_dead_letters_total{reason}``.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.readings_consumed = Counter(
            "streamer_readings_consumed_total",
            "Messages consumed from the readings topic.",
            registry=registry,
        )
        self.reading_outcomes = Counter(
            "streamer_reading_outcomes_total",
            "Final outcome of each consumed message (exactly one each).",
            ["outcome"],
            registry=registry,
        )
        self.dead_letters = Counter(
            "streamer_dead_letters_total",
            "Messages sent to the dead-letter topic, by reason.",
            ["reason"],
            registry=registry,
        )
        self.forecasts = Counter(
            "streamer_forecasts_total",
            "Forecasts published, by model and whether a fallback baseline made them.",
            ["model_name", "model_version", "fallback"],
            registry=registry,
        )
        self.forecasts_skipped = Counter(
            "streamer_forecasts_skipped_total",
            "Closed slots that got no forecast, by reason.",
            ["reason"],
            registry=registry,
        )
        self.status_events = Counter(
            "streamer_meter_status_events_total",
            "Meter status events published (silent, flatline, register resets...).",
            ["status"],
            registry=registry,
        )
        self.batch_size = Histogram(
            "streamer_batch_size_messages",
            "Messages per micro-batch.",
            buckets=BATCH_SIZE_BUCKETS,
            registry=registry,
        )
        self.batch_duration = Histogram(
            "streamer_batch_duration_seconds",
            "Time to process one micro-batch (state, forecasts, sends queued).",
            buckets=FAST_SECONDS_BUCKETS,
            registry=registry,
        )
        self.inference_duration = Histogram(
            "streamer_inference_duration_seconds",
            "Time of one batched forecaster call.",
            ["model_name"],
            buckets=FAST_SECONDS_BUCKETS,
            registry=registry,
        )
        self.state_writes = Counter(
            "streamer_state_writes_total",
            "Per-meter state writes to the changelog-backed table (one per meter per batch).",
            registry=registry,
        )
        self.meters_in_state = Gauge(
            "streamer_meters_in_state",
            "Meters whose window this worker holds.",
            registry=registry,
        )
        self.shadow_forecasts = Counter(
            "streamer_shadow_forecasts_total",
            "Forecasts made by the shadow model (not published).",
            ["model_name", "model_version"],
            registry=registry,
        )
        self.model_info = Gauge(
            "streamer_model_info",
            "1 for each model this worker runs, by role (live, shadow, fallback).",
            ["role", "model_name", "model_version", "provider"],
            registry=registry,
        )
        self.rollouts = Counter(
            "streamer_rollouts_total",
            "Model assignments from the control topic, applied or refused.",
            ["result"],
            registry=registry,
        )
        self.concept_drifts = Counter(
            "streamer_concept_drift_events_total",
            "Meters whose one-slot-ahead residuals drifted (Page-Hinkley), by direction.",
            ["direction"],
            registry=registry,
        )
        self.accuracy_pairs = Counter(
            "streamer_accuracy_pairs_total",
            "Actuals matched with the forecast issued for them, by model role and horizon.",
            ["role", "horizon_slots"],
            registry=registry,
        )
        self.fleet_mae = Gauge(
            "streamer_fleet_mae_kwh",
            "Fleet MAE of the point forecast over the last report interval.",
            ["role", "horizon_slots"],
            registry=registry,
        )
        self.fleet_smape = Gauge(
            "streamer_fleet_smape_percent",
            "Fleet sMAPE (0-200) over the last report interval.",
            ["role", "horizon_slots"],
            registry=registry,
        )
        self.fleet_pinball = Gauge(
            "streamer_fleet_pinball_kwh",
            "Fleet mean pinball loss of p10/p50/p90 over the last report interval.",
            ["role", "horizon_slots"],
            registry=registry,
        )
        self.fleet_coverage = Gauge(
            "streamer_fleet_interval_coverage_ratio",
            "Share of actuals inside p10..p90 over the last report interval (nominal 0.8).",
            ["role", "horizon_slots"],
            registry=registry,
        )
        self.data_drift_psi = Gauge(
            "streamer_data_drift_psi",
            "Population stability index of a model input against the model card's reference.",
            ["feature"],
            registry=registry,
        )
        self.data_drift_ks = Gauge(
            "streamer_data_drift_ks",
            "Kolmogorov-Smirnov distance of a model input from the card's reference.",
            ["feature"],
            registry=registry,
        )
        self.silent_meters = Gauge(
            "streamer_silent_meters",
            "Meters held by this worker with no reading for STREAMER_SILENT_SLOTS slots.",
            registry=registry,
        )
        for outcome in OUTCOMES:
            self.reading_outcomes.labels(outcome=outcome)
        for reason in DlqReason:
            self.dead_letters.labels(reason=reason.value)

"""The worker's Prometheus metrics. Aggregates only: per-meter detail goes to Kafka topics."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector

from streamer.contract.reasons import DlqReason
from streamer.contract.status_record import MeterStatus
from streamer.metrics.consumer_lag import ConsumerLag

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
# From a reading's Kafka timestamp to its forecast's publish: tens of milliseconds when the
# worker keeps up, minutes while it catches up with a backlog.
END_TO_END_SECONDS_BUCKETS = (
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
    300.0,
    600.0,
    1800.0,
)
OUTCOMES = ("applied", "corrected", "duplicate", "dead_lettered", "rerouted")
# Outcomes that change a meter's window (``duplicate`` leaves it as it was).
WINDOW_UPDATE_OUTCOMES = ("applied", "corrected")
# Why a closed slot got no forecast (streamer.pipeline.batch_processor).
SKIP_REASONS = ("cadence", "insufficient_history", "no_valid_forecast")
DRIFT_DIRECTIONS = ("up", "down")
ROLLOUT_RESULTS = ("applied", "refused")


class PipelineMetrics:
    """Counters whose sum proves nothing was lost:

    ``streamer_readings_consumed_total`` == sum over outcome of
    ``streamer_reading_outcomes_total{outcome}``, and the ``dead_lettered`` outcome equals the sum
    of ``streamer_dead_letters_total{reason}``.
    """

    def __init__(self, registry: CollectorRegistry, *, process_metrics: bool = True) -> None:
        self.registry = registry
        if process_metrics:  # process_cpu_seconds_total, process_resident_memory_bytes, ...
            ProcessCollector(registry=registry)
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
        self.commit_stalls = Counter(
            "streamer_commit_stalls_total",
            "Readings partitions found with offset commits stalled on a hole in faust's "
            "bookkeeping (streamer.faust_glue.consumer_fixes) and read again from the "
            "committed offset.",
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
        self.fleet_calibrated_coverage = Gauge(
            "streamer_fleet_calibrated_coverage_ratio",
            "Share of actuals inside the published (calibrated) p10..p90 over the last report "
            "interval (target 0.8; streamer_fleet_interval_coverage_ratio is the model's own).",
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
        self.window_updates = Counter(
            "streamer_window_updates_total",
            "Readings that changed a meter's window (outcome applied or corrected).",
            registry=registry,
        )
        self.end_to_end_latency = Histogram(
            "streamer_end_to_end_latency_seconds",
            "From the Kafka timestamp of a meter's newest reading in a batch to its forecast "
            "being published (delivered to Kafka with the batch's other outputs).",
            buckets=END_TO_END_SECONDS_BUCKETS,
            registry=registry,
        )
        self.consumer_lag_messages = Gauge(
            "streamer_consumer_lag_messages",
            "Messages of an assigned readings partition not yet processed by this worker.",
            ["topic", "partition"],
            registry=registry,
        )
        self.assigned_partitions = Gauge(
            "streamer_assigned_partitions",
            "Readings-topic partitions assigned to this worker.",
            registry=registry,
        )
        self.active_meters = Gauge(
            "streamer_active_meters",
            "Meters held by this worker that sent a reading within STREAMER_SILENT_SLOTS slots.",
            registry=registry,
        )
        self.flatlined_meters = Gauge(
            "streamer_flatlined_meters",
            "Meters held by this worker whose newest STREAMER_FLATLINE_SLOTS observed values are "
            "all the same.",
            registry=registry,
        )
        self.model_cpu_fallback = Gauge(
            "streamer_model_cpu_fallback",
            "1 when a model's ONNX session was asked for a GPU provider but runs on CPU.",
            ["role", "model_name", "model_version"],
            registry=registry,
        )
        self.fleet_actual_energy = Counter(
            "streamer_fleet_actual_energy_kwh_total",
            "Actual energy of the slots matched with a forecast, by model role, horizon and "
            "flow (import: drawn; export: fed in by net meters, counted positive).",
            ["role", "horizon_slots", "flow"],
            registry=registry,
        )
        self.fleet_forecast_energy = Counter(
            "streamer_fleet_forecast_energy_kwh_total",
            "Point forecasts of the same matched slots, by model role, horizon and flow.",
            ["role", "horizon_slots", "flow"],
            registry=registry,
        )
        self.consumer_lag = ConsumerLag(self.consumer_lag_messages)
        # groups: labelled by kind (feeder, substation...), never by group
        self.group_membership_meters = Gauge(
            "streamer_grouped_meters",
            "Meters in at least one group (the meter-groups topic as this worker read it).",
            registry=registry,
        )
        self.group_contributions = Counter(
            "streamer_group_contributions_total",
            "Member forecasts and readings received by this worker's groups; counted=false: "
            "too late for an issued origin or slot, or from a meter no longer a member.",
            ["kind", "counted"],
            registry=registry,
        )
        self.group_forecasts = Counter(
            "streamer_group_forecasts_total",
            "Group forecasts issued, by group kind.",
            ["kind"],
            registry=registry,
        )
        self.group_members = Counter(
            "streamer_group_forecast_members_total",
            "Members of issued group forecasts: reported, filled from an earlier forecast, "
            "or missing.",
            ["kind", "status"],
            registry=registry,
        )
        self.group_totals = Counter(
            "streamer_group_realised_totals_total",
            "Slots whose group total was realised; complete=false: some member never read it.",
            ["kind", "complete"],
            registry=registry,
        )
        self.group_abs_error_kwh = Counter(
            "streamer_group_abs_error_kwh_total",
            "Sum of |group forecast - realised total| (kWh) at horizons 1 and the last.",
            ["kind", "horizon"],
            registry=registry,
        )
        self.watched_group_kwh = Gauge(
            "streamer_watched_group_kwh",
            "The groups of STREAMER_WATCHED_GROUPS only (bounded: at most 20): the realised "
            "total of the newest slot closed (series=actual) and the group forecast made one "
            "slot before for it (mean_h1, p10_h1, p90_h1), kWh per slot.",
            ["group_id", "series"],
            registry=registry,
        )
        self.group_pairs = Counter(
            "streamer_group_scored_pairs_total",
            "Group forecasts matched with a complete realised total, by horizon.",
            ["kind", "horizon"],
            registry=registry,
        )

        for outcome in OUTCOMES:
            self.reading_outcomes.labels(outcome=outcome)
        for reason in DlqReason:
            self.dead_letters.labels(reason=reason.value)
        for skip in SKIP_REASONS:
            self.forecasts_skipped.labels(reason=skip)
        for status in MeterStatus:
            self.status_events.labels(status=status.value)
        for direction in DRIFT_DIRECTIONS:
            self.concept_drifts.labels(direction=direction)
        for result in ROLLOUT_RESULTS:
            self.rollouts.labels(result=result)

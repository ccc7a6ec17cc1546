"""Writes the three Grafana dashboards in grafana/dashboards/ (and prints their docs text).

    .venv/bin/python grafana/build_dashboards.py            # rewrite the JSON files
    .venv/bin/python grafana/build_dashboards.py --markdown # the panel list of docs/operations.md

The JSON files are committed (Grafana provisions them as they are); a unit test checks that they
are what this script writes, and an e2e test that every expression in them returns data from a
real Prometheus scraping a real worker. Each panel carries its description: what it shows and
what to do when it turns red.
"""

from __future__ import annotations

import json
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DASHBOARD_DIR = Path(__file__).resolve().parent / "dashboards"
DATASOURCE = {"type": "prometheus", "uid": "prometheus"}
INST = 'instance=~"$instance"'  # the worker matcher every query carries
MV = 'model_version=~"$model_version"'
RATE = "[$__rate_interval]"


@dataclass(frozen=True)
class Target:
    expr: str
    legend: str = ""
    instant: bool = False


@dataclass(frozen=True)
class Panel:
    title: str
    description: str
    targets: tuple[Target, ...]
    unit: str = "short"
    kind: str = "timeseries"  # timeseries, stat, table
    red_above: float | None = None  # red at or above this value
    red_below: float | None = None  # red below this value
    width: int = 12
    min_zero: bool = True


@dataclass(frozen=True)
class Row:
    title: str
    panels: tuple[Panel, ...]


@dataclass(frozen=True)
class Variable:
    name: str
    label: str
    query: str
    multi: bool = True
    default: str | None = None  # None: All


@dataclass
class Dashboard:
    uid: str
    title: str
    description: str
    rows: tuple[Row, ...]
    variables: tuple[Variable, ...] = field(default_factory=tuple)


INSTANCE = Variable(
    "instance", "worker", "label_values(streamer_readings_consumed_total, instance)"
)
MODEL_VERSION = Variable(
    "model_version", "model version", "label_values(streamer_forecasts_total, model_version)"
)
GROUP = Variable(
    "group", "watched group", "label_values(streamer_watched_group_kwh, group_id)", multi=False
)
HORIZON = Variable(
    "horizon",
    "horizon (slots)",
    "label_values(streamer_fleet_actual_energy_kwh_total, horizon_slots)",
    multi=False,
    default="1",
)


def quantiles(
    metric: str, by: str = "", levels: tuple[float, ...] = (0.5, 0.95, 0.99)
) -> tuple[Target, ...]:
    """histogram_quantile targets of ``metric`` (a ``_bucket`` series) at ``levels``."""
    group = f"le, {by}" if by else "le"
    suffix = f" {{{{{by}}}}}" if by else ""
    return tuple(
        Target(
            f"histogram_quantile({q}, sum by ({group}) (rate({metric}{{{INST}}}{RATE})))",
            f"p{round(q * 100)}{suffix}",
        )
        for q in levels
    )


def net(metric: str, selector: str, window: str, by: str = "") -> str:
    """Net energy rate (import minus export) of a fleet energy counter, in kWh/s."""
    grouping = f" by ({by})" if by else ""
    return (
        f'sum{grouping} (rate({metric}{{{selector}, flow="import"}}{window})) - '
        f'sum{grouping} (rate({metric}{{{selector}, flow="export"}}{window}))'
    )


ACTUAL = "streamer_fleet_actual_energy_kwh_total"
LIVE_AT_HORIZON = f'{INST}, role="live", horizon_slots="$horizon"'
FORECAST = "streamer_fleet_forecast_energy_kwh_total"

PIPELINE = Dashboard(
    uid="streamer-pipeline",
    title="streamer / pipeline health",
    description="Throughput, consumer lag, latency, dead letters, micro-batches and workers.",
    variables=(INSTANCE, MODEL_VERSION),
    rows=(
        Row(
            "Throughput",
            (
                Panel(
                    "Readings consumed per second",
                    "Messages read from the readings topic, per worker. A worker at zero while "
                    "the others consume has lost its partitions or hangs: check its log and "
                    "/ready.",
                    (
                        Target(
                            f"sum by (instance) (rate(streamer_readings_consumed_total{{{INST}}}"
                            f"{RATE}))",
                            "{{instance}}",
                        ),
                    ),
                    unit="cps",
                ),
                Panel(
                    "Reading outcomes per second",
                    "Every consumed message ends in exactly one outcome: applied, corrected, "
                    "duplicate, dead_lettered or rerouted. Many duplicates mean a replay (a worker "
                    "restarted) or a producer that repeats itself; many corrections, meters that "
                    "resend changed values; rerouted readings, a producer whose partitioner is "
                    "not murmur2 (librdkafka's default).",
                    (
                        Target(
                            f"sum by (outcome) (rate(streamer_reading_outcomes_total{{{INST}}}"
                            f"{RATE}))",
                            "{{outcome}}",
                        ),
                    ),
                    unit="cps",
                ),
                Panel(
                    "Window updates and state writes per second",
                    "Readings that changed a meter's window, and per-meter state writes to the "
                    "changelog-backed table (one per meter per micro-batch). Writes close to "
                    "updates mean batches hold one reading per meter: larger batches "
                    "(STREAMER_BATCH_MAX_EVENTS) write less.",
                    (
                        Target(
                            f"sum(rate(streamer_window_updates_total{{{INST}}}{RATE}))",
                            "window updates",
                        ),
                        Target(
                            f"sum(rate(streamer_state_writes_total{{{INST}}}{RATE}))",
                            "state writes",
                        ),
                    ),
                    unit="cps",
                ),
                Panel(
                    "Forecasts published per second, by model",
                    "Forecasts sent to the forecasts topic by model, version and whether the "
                    "fallback baseline made them (meters with too little history).",
                    (
                        Target(
                            "sum by (model_name, model_version, fallback) "
                            f"(rate(streamer_forecasts_total{{{INST}, {MV}}}{RATE}))",
                            "{{model_name}}:{{model_version}} fallback={{fallback}}",
                        ),
                    ),
                    unit="cps",
                ),
                Panel(
                    "Forecasts skipped per second, by reason",
                    "Closed slots that got no forecast: cadence (STREAMER_FORECAST_EVERY_SLOTS), "
                    "insufficient_history (below STREAMER_MIN_OBSERVED_FRACTION) or "
                    "no_valid_forecast (the model returned NaN: check the model and its input).",
                    (
                        Target(
                            f"sum by (reason) (rate(streamer_forecasts_skipped_total{{{INST}}}"
                            f"{RATE}))",
                            "{{reason}}",
                        ),
                    ),
                    unit="cps",
                ),
                Panel(
                    "Meter status events per second",
                    "silent, flatline, register_reset, register_rollover and expired events "
                    "published to the status topic.",
                    (
                        Target(
                            f"sum by (status) (rate(streamer_meter_status_events_total{{{INST}}}"
                            f"{RATE}))",
                            "{{status}}",
                        ),
                    ),
                    unit="cps",
                ),
            ),
        ),
        Row(
            "Lag and latency",
            (
                Panel(
                    "Consumer lag by partition",
                    "Readings not yet processed, per readings-topic partition (end offset minus "
                    "the next offset to process). Red above 10,000: the workers fall behind. If "
                    "every partition grows, add workers (up to the partition count) or a GPU; "
                    "if one grows, that partition's worker is stuck or its meters are "
                    "unusually many.",
                    (
                        Target(
                            f"sum by (topic, partition) (streamer_consumer_lag_messages{{{INST}}})",
                            "{{topic}}/{{partition}}",
                        ),
                    ),
                    red_above=10000,
                ),
                Panel(
                    "Time to drain the backlog",
                    "Lag divided by the consume rate of the last 5 minutes: how long a worker "
                    "needs to catch up. Red above 5 minutes: the forecasts are late by as much. "
                    "Scale out or find what slows the batches (panels below).",
                    (
                        Target(
                            f"sum by (instance) (streamer_consumer_lag_messages{{{INST}}}) / "
                            "clamp_min(sum by (instance) "
                            f"(rate(streamer_readings_consumed_total{{{INST}}}[5m])), 1)",
                            "{{instance}}",
                        ),
                    ),
                    unit="s",
                    red_above=300,
                ),
                Panel(
                    "End-to-end latency: reading to published forecast",
                    "From a reading's Kafka timestamp to its forecast being delivered to "
                    "Kafka. Red above 60 s: the workers lag (see above) or a batch takes long "
                    "(inference, broker acknowledgements).",
                    quantiles("streamer_end_to_end_latency_seconds_bucket"),
                    unit="s",
                    red_above=60,
                ),
                Panel(
                    "Inference latency per batch, by model",
                    "One batched forecaster call (ONNX Runtime for the LSTM). Red above 1 s: "
                    "the model runs on CPU where a GPU was wanted (see the quality dashboard) or "
                    "the batches are very large.",
                    quantiles(
                        "streamer_inference_duration_seconds_bucket",
                        by="model_name",
                        levels=(0.5, 0.99),
                    ),
                    unit="s",
                    red_above=1,
                ),
                Panel(
                    "Micro-batch processing time",
                    "Parse, state, forecasts and delivery of one micro-batch. Red above 5 s: "
                    "the broker is slow to acknowledge or inference is slow.",
                    quantiles("streamer_batch_duration_seconds_bucket", levels=(0.5, 0.99)),
                    unit="s",
                    red_above=5,
                ),
                Panel(
                    "Micro-batch size",
                    "Messages per micro-batch (median, p99 and mean). Batches at "
                    "STREAMER_BATCH_MAX_EVENTS mean the worker is busy catching up; batches of "
                    "a few messages, that it keeps up easily.",
                    (
                        *quantiles("streamer_batch_size_messages_bucket", levels=(0.5, 0.99)),
                        Target(
                            f"sum(rate(streamer_batch_size_messages_sum{{{INST}}}{RATE})) / "
                            f"sum(rate(streamer_batch_size_messages_count{{{INST}}}{RATE}))",
                            "mean",
                        ),
                    ),
                ),
            ),
        ),
        Row(
            "Dead letters",
            (
                Panel(
                    "Dead letters per second, by reason",
                    "Messages refused to the dead-letter topic. Read a few of them "
                    "(meter-readings-dlq carries the reason, detail and original bytes): "
                    "invalid_json or wrong_type point at a producer, too_late at a head-end "
                    "that resends old data, future_timestamp at a clock.",
                    (
                        Target(
                            f"sum by (reason) (rate(streamer_dead_letters_total{{{INST}}}{RATE}))",
                            "{{reason}}",
                        ),
                    ),
                    unit="cps",
                ),
                Panel(
                    "Dead-letter share of consumed readings",
                    "Dead letters over messages consumed, last 5 minutes. Red above 5%: a "
                    "producer sends bad data; the reason panel says which kind.",
                    (
                        Target(
                            f"sum(rate(streamer_dead_letters_total{{{INST}}}[5m])) / "
                            f"sum(rate(streamer_readings_consumed_total{{{INST}}}[5m]))",
                            "dead-letter share",
                        ),
                    ),
                    unit="percentunit",
                    kind="stat",
                    red_above=0.05,
                    width=6,
                ),
                Panel(
                    "Accounting gap",
                    "Messages consumed minus outcomes counted: always 0, since every message "
                    "ends in exactly one outcome. Red when not: a bug; the worker logs an "
                    "'accounting mismatch' error with the batch.",
                    (
                        Target(
                            f"sum(streamer_readings_consumed_total{{{INST}}}) - "
                            f"sum(streamer_reading_outcomes_total{{{INST}}})",
                            "consumed - outcomes",
                        ),
                    ),
                    kind="stat",
                    red_above=1,
                    width=6,
                ),
            ),
        ),
        Row(
            "Workers",
            (
                Panel(
                    "Assigned partitions per worker",
                    "Readings partitions each worker holds. Red at 0: a worker without work "
                    "(more workers than partitions, or a rebalance that does not end).",
                    (
                        Target(
                            f"sum by (instance) (streamer_assigned_partitions{{{INST}}})",
                            "{{instance}}",
                        ),
                    ),
                    kind="stat",
                    red_below=1,
                ),
                Panel(
                    "Worker CPU",
                    "CPU time per second of each worker process (1 = one core). Red above "
                    "0.9: the worker is bound by its single event loop; add workers (up to the "
                    "partition count).",
                    (
                        Target(
                            f"sum by (instance) (rate(process_cpu_seconds_total{{{INST}}}{RATE}))",
                            "{{instance}}",
                        ),
                    ),
                    unit="percentunit",
                    red_above=0.9,
                ),
                Panel(
                    "Worker memory (resident)",
                    "Resident memory of each worker. It grows with the meters held (about "
                    "2.6 KB each plus the latest forecast), standby copies of other workers' "
                    "meters included (STREAMER_TABLE_STANDBY_REPLICAS); steady growth with a "
                    "steady fleet is a leak.",
                    (
                        Target(
                            f"sum by (instance) (process_resident_memory_bytes{{{INST}}})",
                            "{{instance}}",
                        ),
                    ),
                    unit="bytes",
                ),
                Panel(
                    "Worker uptime",
                    "Time since each worker started. A saw-tooth means restarts: look for "
                    "crashes in the worker's log.",
                    (
                        Target(
                            f"time() - max by (instance) (process_start_time_seconds{{{INST}}})",
                            "{{instance}}",
                        ),
                    ),
                    unit="s",
                ),
            ),
        ),
    ),
)

QUALITY = Dashboard(
    uid="streamer-quality",
    title="streamer / forecast quality and drift",
    description="Fleet accuracy by horizon, shadow against live, data and concept drift, models.",
    variables=(INSTANCE, MODEL_VERSION),
    rows=(
        Row(
            "Accuracy of the live model, by horizon",
            (
                Panel(
                    "Fleet MAE by horizon",
                    "Mean absolute error of the point forecast over the last report interval "
                    "(STREAMER_DRIFT_REPORT_INTERVAL_SECONDS), per horizon in slots. Compare "
                    "with the backtest in the model's BACKTEST.md; a rise at every horizon "
                    "together with data drift calls for retraining.",
                    (
                        Target(
                            "avg by (horizon_slots) "
                            f'(streamer_fleet_mae_kwh{{{INST}, role="live"}})',
                            "h={{horizon_slots}}",
                        ),
                    ),
                    unit="kwatth",
                ),
                Panel(
                    "Fleet sMAPE by horizon",
                    "Symmetric MAPE (0-200%) per horizon. High for meters near zero load "
                    "(PV at night); use it for trends, MAE for size.",
                    (
                        Target(
                            "avg by (horizon_slots) "
                            f'(streamer_fleet_smape_percent{{{INST}, role="live"}})',
                            "h={{horizon_slots}}",
                        ),
                    ),
                    unit="percent",
                ),
                Panel(
                    "Fleet pinball loss by horizon",
                    "Mean pinball loss of p10, p50 and p90: how good the whole predicted "
                    "distribution is, not just the point.",
                    (
                        Target(
                            "avg by (horizon_slots) "
                            f'(streamer_fleet_pinball_kwh{{{INST}, role="live"}})',
                            "h={{horizon_slots}}",
                        ),
                    ),
                    unit="kwatth",
                ),
                Panel(
                    "p10-p90 coverage by horizon",
                    "Share of actuals inside the p10-p90 band; nominal 80%. Red below 70% "
                    "(intervals too narrow: the model is over-confident, often after a change "
                    "in the fleet) or above 90% (too wide). Retrain or recalibrate.",
                    (
                        Target(
                            "avg by (horizon_slots) "
                            f'(streamer_fleet_interval_coverage_ratio{{{INST}, role="live"}})',
                            "h={{horizon_slots}}",
                        ),
                    ),
                    unit="percentunit",
                    red_below=0.7,
                    red_above=0.9,
                    min_zero=False,
                ),
                Panel(
                    "Fleet bias by horizon",
                    "Mean of forecast minus actual per matched slot (kWh), last 30 minutes. "
                    "Far from zero: the model systematically over- (positive) or under-"
                    "forecasts; check for a change in the fleet (new PV, a tariff) and retrain.",
                    (
                        Target(
                            "("
                            + net(FORECAST, f'{INST}, role="live"', "[30m]", by="horizon_slots")
                            + " - ("
                            + net(ACTUAL, f'{INST}, role="live"', "[30m]", by="horizon_slots")
                            + ")) / sum by (horizon_slots) "
                            f'(rate(streamer_accuracy_pairs_total{{{INST}, role="live"}}[30m]))',
                            "h={{horizon_slots}}",
                        ),
                    ),
                    unit="kwatth",
                    min_zero=False,
                ),
                Panel(
                    "Matched forecast-actual pairs per second",
                    "Actuals matched with the forecasts issued for them, by model role. Zero "
                    "while forecasts flow means actuals stopped arriving (silent meters) or "
                    "arrive too late to match.",
                    (
                        Target(
                            f"sum by (role) (rate(streamer_accuracy_pairs_total{{{INST}}}{RATE}))",
                            "{{role}}",
                        ),
                    ),
                    unit="cps",
                ),
            ),
        ),
        Row(
            "Shadow against live",
            (
                Panel(
                    "MAE, shadow and live",
                    "Fleet MAE of the live model and of the shadow model (set with `streamer "
                    "rollout SPEC --shadow`) on the same actuals, one slot and one day ahead. "
                    "Empty without a shadow model.",
                    (
                        Target(
                            "avg by (role, horizon_slots) "
                            f'(streamer_fleet_mae_kwh{{{INST}, horizon_slots=~"1|48"}})',
                            "{{role}} h={{horizon_slots}}",
                        ),
                    ),
                    unit="kwatth",
                ),
                Panel(
                    "Shadow / live MAE by horizon",
                    "Below 1 the shadow model is more accurate at that horizon: with enough "
                    "intervals below 1 at every horizon, `streamer promote` makes it live.",
                    (
                        Target(
                            "avg by (horizon_slots) "
                            f'(streamer_fleet_mae_kwh{{{INST}, role="shadow"}}) / '
                            "avg by (horizon_slots) "
                            f'(streamer_fleet_mae_kwh{{{INST}, role="live"}})',
                            "h={{horizon_slots}}",
                        ),
                    ),
                    min_zero=False,
                ),
                Panel(
                    "Coverage, shadow and live",
                    "p10-p90 coverage of both models (nominal 80%), averaged over horizons. "
                    "Red outside 70-90%: that model's intervals are miscalibrated; do not "
                    "promote a shadow that is red here.",
                    (
                        Target(
                            f"avg by (role) (streamer_fleet_interval_coverage_ratio{{{INST}}})",
                            "{{role}}",
                        ),
                    ),
                    unit="percentunit",
                    red_below=0.7,
                    red_above=0.9,
                    min_zero=False,
                ),
                Panel(
                    "Shadow forecasts per second",
                    "Forecasts made by the shadow model (scored, not published).",
                    (
                        Target(
                            "sum by (model_name, model_version) "
                            f"(rate(streamer_shadow_forecasts_total{{{INST}}}{RATE}))",
                            "{{model_name}}:{{model_version}}",
                        ),
                    ),
                    unit="cps",
                ),
            ),
        ),
        Row(
            "Drift",
            (
                Panel(
                    "Data drift: PSI of model inputs",
                    "Population stability index of the model's inputs against the histograms "
                    "in its model card, per report interval. Red at 0.2 "
                    "(STREAMER_DRIFT_PSI_THRESHOLD): the load the model sees no longer looks "
                    "like its training data; watch the accuracy panels and plan a retraining "
                    "on recent history.",
                    (
                        Target(
                            f"max by (feature) (streamer_data_drift_psi{{{INST}}})",
                            "{{feature}}",
                        ),
                    ),
                    red_above=0.2,
                ),
                Panel(
                    "Data drift: Kolmogorov-Smirnov distance",
                    "Largest gap between the inputs' distribution and the card's reference. "
                    "Red at 0.1 (STREAMER_DRIFT_KS_THRESHOLD); read with the PSI panel.",
                    (
                        Target(
                            f"max by (feature) (streamer_data_drift_ks{{{INST}}})",
                            "{{feature}}",
                        ),
                    ),
                    red_above=0.1,
                ),
                Panel(
                    "Concept-drift events in the last hour",
                    "Meters whose one-slot-ahead residuals drifted (Page-Hinkley), by "
                    "direction (up: actuals above the forecasts). The meters are in the "
                    "forecast-drift topic (kind concept_drift).",
                    (
                        Target(
                            "sum by (direction) "
                            f"(increase(streamer_concept_drift_events_total{{{INST}}}[1h]))",
                            "{{direction}}",
                        ),
                    ),
                ),
                Panel(
                    "Share of meters with concept drift in the last hour",
                    "Concept-drift events over meters held. Red above 5%: not single meters "
                    "but the fleet changed (weather, a holiday, a tariff); if it lasts, "
                    "retrain.",
                    (
                        Target(
                            f"sum(increase(streamer_concept_drift_events_total{{{INST}}}[1h])) / "
                            f"sum(streamer_meters_in_state{{{INST}}})",
                            "drifted share",
                        ),
                    ),
                    unit="percentunit",
                    kind="stat",
                    red_above=0.05,
                ),
            ),
        ),
        Row(
            "Models",
            (
                Panel(
                    "Models in service",
                    "The live, shadow and fallback model of each worker with the execution "
                    "provider in use. Workers on different versions after a rollout mean one "
                    "did not apply it: see its log (rollout refused?).",
                    (
                        Target(
                            "max by (instance, role, model_name, model_version, provider) "
                            f"(streamer_model_info{{{INST}, {MV}}})",
                            "",
                            instant=True,
                        ),
                    ),
                    kind="table",
                    width=24,
                ),
                Panel(
                    "Forecasts per second, by model version",
                    "Live forecasts by model and version: a rollout shows as one line handing "
                    "over to the next.",
                    (
                        Target(
                            "sum by (model_name, model_version) "
                            f"(rate(streamer_forecasts_total{{{INST}, {MV}}}{RATE}))",
                            "{{model_name}}:{{model_version}}",
                        ),
                    ),
                    unit="cps",
                ),
                Panel(
                    "Rollouts in the last hour",
                    "Model assignments from the control topic, applied or refused. Red when "
                    "one was refused: the worker could not load the spec (its log says why); "
                    "the previous model stays live.",
                    (
                        Target(
                            f"sum by (result) (increase(streamer_rollouts_total{{{INST}}}[1h]))",
                            "{{result}}",
                        ),
                    ),
                    kind="stat",
                    red_above=1,
                    width=6,
                ),
                Panel(
                    "GPU asked for, running on CPU",
                    "1 when a model's ONNX session asked for CUDA but runs on CPU (missing "
                    "CUDA libraries, no device in the container). Red at 1: check the "
                    "worker's log for the providers asked for and in use, and the container's "
                    "GPU reservation.",
                    (
                        Target(
                            "max by (instance, role, model_name, model_version) "
                            f"(streamer_model_cpu_fallback{{{INST}}})",
                            "{{instance}} {{role}} {{model_name}}:{{model_version}}",
                        ),
                    ),
                    kind="stat",
                    red_above=1,
                    width=6,
                ),
            ),
        ),
    ),
)

FLEET = Dashboard(
    uid="streamer-fleet",
    title="streamer / fleet",
    description="Actual against forecast fleet load, and the meters: active, silent, flatlined.",
    variables=(INSTANCE, MODEL_VERSION, HORIZON, GROUP),
    rows=(
        Row(
            "Load",
            (
                Panel(
                    "Fleet load: actual and forecast",
                    "Mean power (kW, net of exports) over the last hour of the slots whose "
                    "actual arrived, and what the live model forecast for those very slots "
                    "$horizon slots ahead. While workers catch up with a backlog both count "
                    "the replayed slots too.",
                    (
                        Target(
                            "3600 * (" + net(ACTUAL, LIVE_AT_HORIZON, "[1h]") + ")",
                            "actual",
                        ),
                        Target(
                            "3600 * (" + net(FORECAST, LIVE_AT_HORIZON, "[1h]") + ")",
                            "forecast",
                        ),
                    ),
                    unit="kwatt",
                    width=24,
                    min_zero=False,
                ),
                Panel(
                    "Forecast / actual energy by horizon",
                    "Net forecast energy over net actual energy of the same slots, last hour. "
                    "Red outside 0.9-1.1: the fleet total is off by more than 10%; see the "
                    "bias panel of the quality dashboard.",
                    (
                        Target(
                            "("
                            + net(FORECAST, f'{INST}, role="live"', "[1h]", by="horizon_slots")
                            + ") / ("
                            + net(ACTUAL, f'{INST}, role="live"', "[1h]", by="horizon_slots")
                            + ")",
                            "h={{horizon_slots}}",
                        ),
                    ),
                    red_below=0.9,
                    red_above=1.1,
                    min_zero=False,
                ),
                Panel(
                    "Energy drawn and fed in",
                    "Actual import and export (rooftop PV on net meters) as mean power over "
                    "the last hour.",
                    (
                        Target(
                            f"3600 * sum by (flow) (rate({ACTUAL}{{{LIVE_AT_HORIZON}}}[1h]))",
                            "{{flow}}",
                        ),
                    ),
                    unit="kwatt",
                ),
                Panel(
                    "Share of forecasts from the fallback baseline",
                    "Forecasts made by STREAMER_FALLBACK_FORECASTER because a meter has too "
                    "little history for the model. High after a fleet grew or state was "
                    "reset; it falls as history builds up (84 slots for the LSTM).",
                    (
                        Target(
                            "(sum(rate(streamer_forecasts_total"
                            f'{{{INST}, {MV}, fallback="true"}}[5m])) or vector(0)) / '
                            f"sum(rate(streamer_forecasts_total{{{INST}, {MV}}}[5m]))",
                            "fallback share",
                        ),
                    ),
                    unit="percentunit",
                ),
            ),
        ),
        Row(
            "Meters",
            (
                Panel(
                    "Meters held, active, silent and flatlined",
                    "Meters whose window the workers hold; active: a reading within "
                    "STREAMER_SILENT_SLOTS slots; silent: none since; flatlined: the same value "
                    "for STREAMER_FLATLINE_SLOTS slots (a stuck register or a meter that "
                    "reports zeros). Held drops when silent meters expire "
                    "(STREAMER_RETENTION_SECONDS).",
                    (
                        Target(f"sum(streamer_meters_in_state{{{INST}}})", "held"),
                        Target(f"sum(streamer_active_meters{{{INST}}})", "active"),
                        Target(f"sum(streamer_silent_meters{{{INST}}})", "silent"),
                        Target(f"sum(streamer_flatlined_meters{{{INST}}})", "flatlined"),
                    ),
                    width=24,
                ),
                Panel(
                    "Silent share",
                    "Silent meters over meters held. Red above 10%: a head-end system, a "
                    "region's network or the producer stopped; the meter-status topic lists "
                    "the meters.",
                    (
                        Target(
                            f"sum(streamer_silent_meters{{{INST}}}) / "
                            f"sum(streamer_meters_in_state{{{INST}}})",
                            "silent",
                        ),
                    ),
                    unit="percentunit",
                    kind="stat",
                    red_above=0.1,
                    width=6,
                ),
                Panel(
                    "Flatlined share",
                    "Flatlined meters over meters held. Red above 20%: more than PV meters at "
                    "night; look for a head-end that repeats a last value.",
                    (
                        Target(
                            f"sum(streamer_flatlined_meters{{{INST}}}) / "
                            f"sum(streamer_meters_in_state{{{INST}}})",
                            "flatlined",
                        ),
                    ),
                    unit="percentunit",
                    kind="stat",
                    red_above=0.2,
                    width=6,
                ),
                Panel(
                    "Meters per worker",
                    "Meters held by each worker: roughly equal with a fair spread of meters "
                    "over partitions.",
                    (
                        Target(
                            f"sum by (instance) (streamer_meters_in_state{{{INST}}})",
                            "{{instance}}",
                        ),
                    ),
                ),
                Panel(
                    "Meter status events in the last hour",
                    "silent, flatline, register_reset, register_rollover and expired events. "
                    "Register resets come from meter exchanges; many at once, from a head-end "
                    "that lost its registers.",
                    (
                        Target(
                            "sum by (status) "
                            f"(increase(streamer_meter_status_events_total{{{INST}}}[1h]))",
                            "{{status}}",
                        ),
                    ),
                ),
            ),
        ),
        Row(
            "Groups",
            (
                Panel(
                    "Group load: realised and forecast one slot ahead",
                    "A watched group's (STREAMER_WATCHED_GROUPS, chosen with the group variable) "
                    "realised total of each slot as it closes, and the group forecast made one "
                    "slot before for that very slot: its centre and its p10-p90 band, kWh per "
                    "slot. The realised total leaving the band one slot in five is as promised; "
                    "far more often, the band is miscalibrated (the group is new, or its members "
                    "changed): it recalibrates from the realised totals.",
                    tuple(
                        Target(
                            f'streamer_watched_group_kwh{{{INST}, group_id=~"$group", '
                            f'series="{series}"}}',
                            "{{group_id}} " + legend,
                        )
                        for series, legend in (
                            ("actual", "realised"),
                            ("mean_h1", "forecast"),
                            ("p10_h1", "p10"),
                            ("p90_h1", "p90"),
                        )
                    ),
                    unit="kwatth",
                    min_zero=False,
                ),
                Panel(
                    "Group forecast error by kind, one slot ahead",
                    "Mean absolute error (kWh per slot) of the group forecasts against the "
                    "complete realised totals, by group kind (feeder, substation, portfolio), "
                    "one slot ahead. Per group: the group_accuracy records of forecast-drift.",
                    (
                        Target(
                            "sum by (kind) (rate(streamer_group_abs_error_kwh_total"
                            f'{{{INST}, horizon="h1"}}{RATE})) / sum by (kind) '
                            f'(rate(streamer_group_scored_pairs_total{{{INST}, horizon="h1"}}'
                            f"{RATE}))",
                            "{{kind}}",
                        ),
                    ),
                    unit="kwatth",
                ),
                Panel(
                    "Group forecast members, by status",
                    "Members of the group forecasts issued per second: reported (a forecast "
                    "from the origin), filled (from an earlier forecast: late or silent) and "
                    "missing (none in the last week). Filled and missing are the meters the "
                    "group waits for (STREAMER_GROUP_LATENESS_SECONDS) and then does without.",
                    (
                        Target(
                            "sum by (kind, status) (rate(streamer_group_forecast_members_total"
                            f"{{{INST}}}{RATE}))",
                            "{{kind}} {{status}}",
                        ),
                    ),
                ),
            ),
        ),
    ),
)

DASHBOARDS = (PIPELINE, QUALITY, FLEET)


def _thresholds(panel: Panel) -> dict[str, Any]:
    steps: list[dict[str, Any]] = []
    if panel.red_below is not None:
        steps += [
            {"color": "red", "value": None},
            {"color": "green", "value": panel.red_below},
        ]
    else:
        steps.append({"color": "green", "value": None})
    if panel.red_above is not None:
        steps.append({"color": "red", "value": panel.red_above})
    return {"mode": "absolute", "steps": steps}


def _panel_json(panel: Panel, panel_id: int, x: int, y: int) -> dict[str, Any]:
    height = 5 if panel.kind == "stat" else 8
    defaults: dict[str, Any] = {"unit": panel.unit, "thresholds": _thresholds(panel)}
    if panel.kind == "timeseries":
        if panel.min_zero:
            defaults["min"] = 0
        red = panel.red_above is not None or panel.red_below is not None
        defaults["custom"] = {
            "drawStyle": "line",
            "lineWidth": 1,
            "fillOpacity": 10,
            "showPoints": "never",
            "spanNulls": True,
            "thresholdsStyle": {"mode": "line+area" if red else "off"},
        }
        defaults["color"] = {"mode": "palette-classic"}
        options: dict[str, Any] = {
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "desc"},
        }
    elif panel.kind == "stat":
        defaults["color"] = {"mode": "thresholds"}
        options = {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "background",
            "graphMode": "area",
            "textMode": "auto",
        }
    else:
        options = {"showHeader": True}
    targets = []
    for index, target in enumerate(panel.targets):
        entry: dict[str, Any] = {
            "refId": chr(ord("A") + index),
            "datasource": DATASOURCE,
            "expr": target.expr,
            "legendFormat": target.legend,
            "range": not target.instant,
            "instant": target.instant,
        }
        if panel.kind == "table":
            entry["format"] = "table"
        targets.append(entry)
    body: dict[str, Any] = {
        "id": panel_id,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": {"h": height, "w": panel.width, "x": x, "y": y},
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": options,
        "targets": targets,
    }
    if panel.kind == "table":
        body["transformations"] = [
            {
                "id": "organize",
                "options": {"excludeByName": {"Time": True, "Value": True}},
            }
        ]
    return body


def _variable_json(variable: Variable) -> dict[str, Any]:
    current: dict[str, Any]
    if variable.default is None:
        current = {"selected": True, "text": ["All"], "value": ["$__all"]}
    else:
        current = {"selected": True, "text": variable.default, "value": variable.default}
    return {
        "name": variable.name,
        "label": variable.label,
        "type": "query",
        "datasource": DATASOURCE,
        "definition": variable.query,
        "query": {"query": variable.query, "refId": f"{variable.name}-query"},
        "refresh": 2,  # on time range change
        "regex": "",
        "sort": 1,
        "multi": variable.multi,
        "includeAll": variable.multi,
        "current": current,
        "hide": 0,
    }


def dashboard_json(dashboard: Dashboard) -> dict[str, Any]:
    panels: list[dict[str, Any]] = []
    panel_id = 1
    y = 0
    for row in dashboard.rows:
        panels.append(
            {
                "id": panel_id,
                "type": "row",
                "title": row.title,
                "collapsed": False,
                "gridPos": {"h": 1, "w": 24, "x": 0, "y": y},
                "panels": [],
            }
        )
        panel_id += 1
        y += 1
        x = 0
        line_height = 0
        for panel in row.panels:
            if x + panel.width > 24:
                x = 0
                y += line_height
                line_height = 0
            body = _panel_json(panel, panel_id, x, y)
            panels.append(body)
            panel_id += 1
            x += panel.width
            line_height = max(line_height, body["gridPos"]["h"])
        y += line_height
    return {
        "uid": dashboard.uid,
        "title": dashboard.title,
        "description": dashboard.description,
        "tags": ["streamer"],
        "timezone": "browser",
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "10s",
        "time": {"from": "now-1h", "to": "now"},
        "annotations": {"list": []},
        "links": [
            {
                "type": "dashboards",
                "tags": ["streamer"],
                "asDropdown": True,
                "title": "streamer dashboards",
                "icon": "external link",
            }
        ],
        "templating": {"list": [_variable_json(v) for v in dashboard.variables]},
        "panels": panels,
    }


def file_name(dashboard: Dashboard) -> str:
    return f"{dashboard.uid}.json"


def render(dashboard: Dashboard) -> str:
    return json.dumps(dashboard_json(dashboard), indent=2, ensure_ascii=False) + "\n"


def markdown() -> str:
    """The panel-by-panel description in docs/operations.md (one list per dashboard)."""
    wrap = textwrap.TextWrapper(width=100, break_long_words=False, break_on_hyphens=False)
    lines: list[str] = []
    for dashboard in DASHBOARDS:
        head = f"**{dashboard.title}** (`grafana/dashboards/{file_name(dashboard)}`): "
        lines += wrap.wrap(head + dashboard.description)
        lines.append("")
        for row in dashboard.rows:
            for panel in row.panels:
                wrap.subsequent_indent = "  "
                lines += wrap.wrap(f"- *{panel.title}*: {panel.description}")
                wrap.subsequent_indent = ""
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if "--markdown" in argv:
        sys.stdout.write(markdown())
        return 0
    DASHBOARD_DIR.mkdir(parents=True, exist_ok=True)
    for dashboard in DASHBOARDS:
        path = DASHBOARD_DIR / file_name(dashboard)
        path.write_text(render(dashboard))
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

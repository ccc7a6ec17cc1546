"""Prometheus aggregates of one processed micro-batch (no per-meter labels)."""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Iterable, Sequence

from streamer.accuracy.match import Match
from streamer.metrics.pipeline_metrics import WINDOW_UPDATE_OUTCOMES, PipelineMetrics
from streamer.pipeline.batch_processor import BatchResult
from streamer.pipeline.messages import InMessage
from streamer.timeutil import now_ms

log = logging.getLogger(__name__)


def record_batch(
    metrics: PipelineMetrics,
    messages: Sequence[InMessage],
    result: BatchResult,
    *,
    published_at_ms: int | None = None,
    last_offsets: Iterable[tuple[str, int, int]] | None = None,
) -> None:
    """Count a batch's messages, outcomes, forecasts and inference time.

    Also: the offsets processed (for consumer lag), window updates, the end-to-end latency of
    each forecast (from the Kafka timestamp of its meter's newest reading in the batch to
    ``published_at_ms``; default now, as the agent records a batch once its outputs are
    delivered) and the fleet's matched actual and forecast energy. ``last_offsets``: the
    newest ``(topic, partition, offset)`` of each partition's messages, when the caller knows
    them (the messages are not walked for them then).
    """
    if result.accounted != len(messages):  # a bug, not bad input: say so loudly
        log.error("accounting mismatch: %d messages, %d outcomes", len(messages), result.accounted)
    metrics.readings_consumed.inc(len(messages))
    metrics.consumer_lag.processed(
        ((m.topic, m.partition, m.offset) for m in messages)
        if last_offsets is None
        else last_offsets
    )
    for outcome, count in result.outcomes.items():
        metrics.reading_outcomes.labels(outcome=outcome).inc(count)
    metrics.window_updates.inc(sum(result.outcomes.get(o, 0) for o in WINDOW_UPDATE_OUTCOMES))
    for reason, count in result.dlq_reasons.items():
        metrics.dead_letters.labels(reason=reason).inc(count)
    # counted first, each series incremented once (a labels() lookup costs more than a count)
    for status, count in Counter(s.status.value for s in result.status_events).items():
        metrics.status_events.labels(status=status).inc(count)
    forecasts = Counter((f.model_name, f.model_version, f.fallback) for f in result.forecasts)
    for (name, version, fallback), count in forecasts.items():
        metrics.forecasts.labels(
            model_name=name, model_version=version, fallback=str(fallback).lower()
        ).inc(count)
    shadows = Counter((f.model_name, f.model_version) for f in result.shadow_forecasts)
    for (name, version), count in shadows.items():
        metrics.shadow_forecasts.labels(model_name=name, model_version=version).inc(count)
    for reason, count in result.skipped.items():
        metrics.forecasts_skipped.labels(reason=reason).inc(count)
    for model_name, seconds in result.inference_seconds.items():
        metrics.inference_duration.labels(model_name=model_name).observe(seconds)
    metrics.state_writes.inc(len(result.state_writes))
    at_ms = now_ms() if published_at_ms is None else published_at_ms
    _record_latency(metrics, messages, result, at_ms)
    _record_energy(metrics, "live", result.matches)
    _record_energy(metrics, "shadow", result.shadow_matches)


def _record_latency(
    metrics: PipelineMetrics, messages: Sequence[InMessage], result: BatchResult, at_ms: int
) -> None:
    histogram = metrics.end_to_end_latency
    for forecast in result.forecasts:
        source = result.sources.get(forecast.meter_id)
        if source is None:
            continue
        timestamp_ms = messages[source.message_index].timestamp_ms
        if timestamp_ms is not None:
            histogram.observe(max(0, at_ms - timestamp_ms) / 1000.0)


def _record_energy(metrics: PipelineMetrics, role: str, matches: Sequence[Match]) -> None:
    """Sums per horizon of the actuals and point forecasts of finite pairs, by flow.

    Counters only go up, so energy drawn (``import``) and energy fed in by net meters
    (``export``, counted positive) are summed apart; net = import - export. Both flows are
    always incremented together, so both series exist for every role and horizon.
    """
    sums: dict[int, list[float]] = {}  # horizon -> actual import, export, forecast import, export
    for match in matches:
        if not (math.isfinite(match.actual) and math.isfinite(match.point)):
            continue
        acc = sums.setdefault(match.horizon_slots, [0.0, 0.0, 0.0, 0.0])
        acc[0 if match.actual >= 0 else 1] += abs(match.actual)
        acc[2 if match.point >= 0 else 3] += abs(match.point)
    for h, (actual_in, actual_out, forecast_in, forecast_out) in sums.items():
        horizon = str(h)
        actual, forecast = metrics.fleet_actual_energy, metrics.fleet_forecast_energy
        actual.labels(role=role, horizon_slots=horizon, flow="import").inc(actual_in)
        actual.labels(role=role, horizon_slots=horizon, flow="export").inc(actual_out)
        forecast.labels(role=role, horizon_slots=horizon, flow="import").inc(forecast_in)
        forecast.labels(role=role, horizon_slots=horizon, flow="export").inc(forecast_out)

"""Prometheus aggregates of one processed micro-batch (no per-meter labels)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from streamer.metrics.pipeline_metrics import PipelineMetrics
from streamer.pipeline.batch_processor import BatchResult
from streamer.pipeline.messages import InMessage

log = logging.getLogger(__name__)


def record_batch(
    metrics: PipelineMetrics, messages: Sequence[InMessage], result: BatchResult
) -> None:
    """Count a batch's messages, outcomes, forecasts and inference time."""
    if result.accounted != len(messages):  # a bug, not bad input: say so loudly
        log.error("accounting mismatch: %d messages, %d outcomes", len(messages), result.accounted)
    metrics.readings_consumed.inc(len(messages))
    for outcome, count in result.outcomes.items():
        metrics.reading_outcomes.labels(outcome=outcome).inc(count)
    for reason, count in result.dlq_reasons.items():
        metrics.dead_letters.labels(reason=reason).inc(count)
    for status in result.status_events:
        metrics.status_events.labels(status=status.status.value).inc()
    for forecast in result.forecasts:
        metrics.forecasts.labels(
            model_name=forecast.model_name,
            model_version=forecast.model_version,
            fallback=str(forecast.fallback).lower(),
        ).inc()
    for shadow in result.shadow_forecasts:
        metrics.shadow_forecasts.labels(
            model_name=shadow.model_name, model_version=shadow.model_version
        ).inc()
    for reason, count in result.skipped.items():
        metrics.forecasts_skipped.labels(reason=reason).inc(count)
    for model_name, seconds in result.inference_seconds.items():
        metrics.inference_duration.labels(model_name=model_name).observe(seconds)
    metrics.state_writes.inc(len(result.state_writes))

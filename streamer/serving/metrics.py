"""Metrics of the HTTP API: one object over an injected registry, no per-meter labels.

Labels are bounded: ``route`` is a route pattern, ``key`` the name of an API key (keys are few;
``anonymous`` when no key is configured or none was sent), ``code`` an HTTP status and
``reason`` one of :data:`~streamer.serving.errors.REJECTION_REASONS`.
"""

from __future__ import annotations

from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from streamer.serving.errors import REJECTION_REASONS

_LATENCY_BUCKETS_MS: Final = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 30000)
_BATCH_BUCKETS: Final = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)


class ServingMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "streamer_http_requests",
            "HTTP requests answered, by route pattern, API key name and status code.",
            ["route", "key", "code"],
            registry=registry,
        )
        self.request_duration_ms = Histogram(
            "streamer_http_request_duration_ms",
            "Time from a request's arrival to its answer, by route pattern (milliseconds).",
            ["route"],
            buckets=_LATENCY_BUCKETS_MS,
            registry=registry,
        )
        self.rejections = Counter(
            "streamer_http_rejections",
            "Requests refused, by reason (unauthorized, too_short, overloaded...).",
            ["reason"],
            registry=registry,
        )
        for reason in REJECTION_REASONS:
            self.rejections.labels(reason=reason)
        self.batch_series = Histogram(
            "streamer_serving_batch_series",
            "Series in each model run of POST /v1/forecast (dynamic batching).",
            buckets=_BATCH_BUCKETS,
            registry=registry,
        )
        self.series = Counter(
            "streamer_serving_series",
            "Series forecast over POST /v1/forecast, by the model that answered.",
            ["model"],
            registry=registry,
        )
        self.queued_series = Gauge(
            "streamer_serving_queued_series",
            "Series of POST /v1/forecast waiting for the model.",
            registry=registry,
        )
        self.forecast_lookups = Counter(
            "streamer_forecast_lookups",
            "Newest forecasts read back from the forecasts topic for GET /meters/{id}/forecast "
            "(the table held a pointer, recovered from its changelog), by outcome: found, "
            "expired (no longer in the topic), error (Kafka unavailable).",
            ["outcome"],
            registry=registry,
        )

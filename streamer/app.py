"""Build the faust application of a worker from the settings: topics, table, agents, views."""

from __future__ import annotations

import ssl
from typing import Any

import faust
from prometheus_client import CollectorRegistry

from streamer.agents.broker_health import register_broker_health
from streamer.agents.commit_watchdog import register_commit_watchdog
from streamer.agents.control_task import register_control_task
from streamer.agents.drift_reporting import register_drift_report_timer
from streamer.agents.exactly_once import make_transactional_sender
from streamer.agents.groups_agent import register_group_agents
from streamer.agents.heap_freeze import register_heap_freeze
from streamer.agents.metrics_task import register_metrics_timers
from streamer.agents.readings_agent import register_readings_agent
from streamer.agents.runtime import WorkerCore, WorkerRuntime, WorkerTopics
from streamer.agents.silence_timer import register_silence_timer
from streamer.delivery.offset_commits import COMMIT_EVERY_BATCHES
from streamer.faust_glue.bulk_readings import ReadingsFeed, attach_feed
from streamer.faust_glue.compression import set_zstd_level
from streamer.faust_glue.consumer_fixes import fix_faust_consumer
from streamer.faust_glue.version_check import check_faust_version
from streamer.forecast.protocol import Forecaster
from streamer.forecast.registry import builtin_factories, make_forecaster
from streamer.inference.providers import parse_providers
from streamer.inference.registration import register_lstm
from streamer.inference.throttle import throttled
from streamer.kafka_admin import changelog_configs
from streamer.kafka_security import faust_credentials
from streamer.metrics.pipeline_metrics import PipelineMetrics
from streamer.pipeline.batch_processor import BatchProcessor
from streamer.pipeline.config import PipelineConfig
from streamer.rollout.model_router import ModelRouter
from streamer.serving.auth import load_api_keys
from streamer.settings import Settings
from streamer.tables import (
    GROUP_LATEST_TABLE,
    GROUP_STATE_TABLE,
    LATEST_FORECAST_TABLE,
    STATE_TABLE,
)
from streamer.web.views import register_views


def _raw_topic(app: Any, name: str, settings: Settings) -> Any:
    return app.topic(
        name,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=settings.topic_partitions,
    )


def _bytes_table(app: Any, name: str, settings: Settings, help_text: str) -> Any:
    """A table of raw bytes keys and values (bytes types make faust use the raw codec for the
    table and its changelog), its changelog compacted with streamer's segment settings."""
    return app.Table(
        name,
        default=None,
        key_type=bytes,
        value_type=bytes,
        partitions=settings.topic_partitions,
        extra_topic_configs=changelog_configs(settings),
        help=help_text,
    )


def _web_ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """HTTPS for the worker's web server when a certificate is given."""
    if settings.web_tls_certfile is None or settings.web_tls_keyfile is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(settings.web_tls_certfile, settings.web_tls_keyfile)
    return context


def build_core(settings: Settings, registry: CollectorRegistry | None = None) -> WorkerCore:
    """The pure parts of a worker (no faust): processor, forecasters, metrics."""
    registry = registry or CollectorRegistry()
    factories = builtin_factories()  # this worker's registry, passed to every build
    register_lstm(
        settings.models_dir,
        parse_providers(settings.onnx_providers),
        intra_op_threads=settings.onnx_intra_op_threads,
        factories=factories,
    )

    def build(spec: str) -> Forecaster:
        forecaster = make_forecaster(
            spec,
            horizon_slots=settings.horizon_slots,
            resolution_seconds=settings.resolution_seconds,
            factories=factories,
        )
        return throttled(forecaster, settings.debug_inference_delay_ms)

    router = ModelRouter(build, settings.forecaster)
    fallback = build(settings.fallback_forecaster)
    processor = BatchProcessor(
        PipelineConfig.from_settings(settings),
        router,
        fallback,
        cache_meters=settings.state_cache_meters,
        home_partitions=settings.topic_partitions,
    )
    return WorkerCore(
        settings=settings,
        processor=processor,
        metrics=PipelineMetrics(registry),
        registry=registry,
        router=router,
        fallback=fallback,
    )


def create_app(settings: Settings, *, serving: bool = True) -> tuple[Any, WorkerRuntime]:
    """The faust app with streamer's topics, state table, agents, timers and web views.

    ``serving``: the app will run a worker (its HTTP routes): then it refuses to start bound
    beyond loopback without API keys. Commands that only use the app's topics pass False.
    """
    check_faust_version()
    keys = load_api_keys(settings, refuse_open=serving)
    fix_faust_consumer()
    if settings.kafka_compression == "zstd":
        set_zstd_level(settings.kafka_zstd_level)
    app = faust.App(
        settings.app_id,
        broker=[f"kafka://{server.strip()}" for server in settings.kafka_bootstrap.split(",")],
        broker_credentials=faust_credentials(settings),
        store="memory://",
        datadir=str(settings.worker_dir),
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=1,
        table_standby_replicas=settings.table_standby_replicas,
        # faust's own transactions are not used: exactly_once is streamer's
        # (streamer.delivery.exactly_once)
        processing_guarantee="at_least_once",
        web_host=settings.web_host,
        web_port=settings.web_port,
        web_bind=settings.web_host,
        web_ssl_context=_web_ssl_context(settings),
        canonical_url=f"{'https' if settings.web_tls_certfile else 'http'}://"
        f"{settings.web_host}:{settings.web_port}",
        consumer_auto_offset_reset="earliest",
        producer_linger_ms=5,
        producer_compression_type=settings.compression_type,
        producer_max_batch_size=settings.producer_batch_bytes,
        stream_buffer_maxsize=max(settings.stream_buffer_events, settings.batch_max_events * 2),
        # through a backlog, a commit every few batches (a caught-up worker commits each
        # batch it delivers: streamer.agents.readings_agent) or every interval
        broker_commit_every=COMMIT_EVERY_BATCHES * max(1000, settings.batch_max_events),
        broker_commit_interval=1.0,
        broker_session_timeout=settings.consumer_session_timeout_seconds,
        broker_heartbeat_interval=max(1.0, settings.consumer_session_timeout_seconds / 10),
        # static membership (KIP-345) when set: a restarted worker takes its partitions back
        consumer_group_instance_id=settings.group_instance_id,
        autodiscover=False,
    )
    core = build_core(settings)
    topics = WorkerTopics(
        readings=_raw_topic(app, settings.readings_topic, settings),
        forecasts=_raw_topic(app, settings.forecasts_topic, settings),
        dlq=_raw_topic(app, settings.dlq_topic, settings),
        status=_raw_topic(app, settings.status_topic, settings),
        drift=_raw_topic(app, settings.drift_topic, settings),
        group_contributions=_raw_topic(app, settings.group_contributions_topic, settings),
        group_forecasts=_raw_topic(app, settings.group_forecasts_topic, settings),
    )
    state_table = _bytes_table(
        app, STATE_TABLE, settings, "Per-meter window state (streamer.state.MeterState bytes)."
    )
    latest_forecast_table = _bytes_table(
        app,
        LATEST_FORECAST_TABLE,
        settings,
        "The newest forecast of each meter (forecast JSON), served over HTTP.",
    )
    group_state_table = _bytes_table(
        app, GROUP_STATE_TABLE, settings, "Per-group state (streamer.groups.GroupState bytes)."
    )
    group_latest_table = _bytes_table(
        app, GROUP_LATEST_TABLE, settings, "The newest forecast of each group (JSON)."
    )
    runtime = WorkerRuntime(
        core=core,
        app=app,
        topics=topics,
        state_table=state_table,
        latest_forecast_table=latest_forecast_table,
        transactional_sender=make_transactional_sender(app, settings)
        if settings.processing_guarantee == "exactly_once"
        else None,
        group_state_table=group_state_table,
        group_latest_table=group_latest_table,
    )
    feed = ReadingsFeed(
        settings.readings_topic,
        max_events=settings.batch_max_events,
        capacity_events=max(settings.stream_buffer_events, settings.batch_max_events * 2),
        linger_seconds=settings.batch_linger_ms / 1000,
        fetch_max_wait_ms=settings.kafka_fetch_max_wait_ms,
    )
    attach_feed(app, feed)
    register_readings_agent(app, runtime, feed)
    register_group_agents(app, runtime)
    register_commit_watchdog(app, runtime)
    register_silence_timer(app, runtime)
    register_views(app, runtime, register_broker_health(app, settings), keys)
    register_control_task(app, runtime)
    register_drift_report_timer(app, runtime)
    register_metrics_timers(app, runtime)
    register_heap_freeze(app)
    return app, runtime

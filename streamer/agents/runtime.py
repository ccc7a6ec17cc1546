"""Everything the agents share in one worker process, built once from the settings.

:class:`WorkerCore` holds the pure parts (no faust: tests and benchmarks build it alone);
:class:`WorkerRuntime` adds the faust app, its topics and tables, and the exactly_once sender,
and is built complete by :func:`streamer.app.create_app` before any agent is registered.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry

from streamer.accuracy.fleet_accuracy import FleetAccuracy
from streamer.delivery.transactional_sender import TransactionalSender
from streamer.drift.input_drift import InputDriftMonitor
from streamer.forecast.protocol import Forecaster
from streamer.groups.membership_view import MembershipView
from streamer.metrics.pipeline_metrics import PipelineMetrics
from streamer.pipeline.batch_processor import BatchProcessor
from streamer.rollout.model_router import ModelRouter
from streamer.settings import Settings


@dataclass(slots=True)
class WorkerCore:
    """The pure parts of a worker: processor, models, metrics and fleet-level monitors."""

    settings: Settings
    processor: BatchProcessor
    metrics: PipelineMetrics
    registry: CollectorRegistry
    router: ModelRouter
    fallback: Forecaster
    silent_reported: set[str] = field(default_factory=set)
    fleet_live: FleetAccuracy = field(default_factory=FleetAccuracy)
    fleet_shadow: FleetAccuracy = field(default_factory=FleetAccuracy)
    data_drift: InputDriftMonitor | None = None
    #: held while a batch is processed (in the batch thread) and by every task that touches
    #: the processor, the models or the monitors the batch updates (timers, the control task)
    batch_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    #: group membership (the meter-groups topic, read whole by every worker)
    membership: MembershipView = field(default_factory=MembershipView)


@dataclass(frozen=True, slots=True)
class WorkerTopics:
    """faust topics the worker consumes or sends to (untyped library objects)."""

    readings: Any
    forecasts: Any
    dlq: Any
    status: Any
    drift: Any
    group_contributions: Any = None
    group_forecasts: Any = None


@dataclass(frozen=True, slots=True)
class WorkerRuntime:
    """A worker complete: its core, the faust app, topics, tables and (exactly_once) sender."""

    core: WorkerCore
    app: Any
    topics: WorkerTopics
    state_table: Any
    latest_forecast_table: Any
    # exactly_once: one transaction per readings partition and batch; None for at_least_once
    transactional_sender: TransactionalSender | None
    group_state_table: Any = None
    group_latest_table: Any = None

    @property
    def settings(self) -> Settings:
        return self.core.settings

    @property
    def processor(self) -> BatchProcessor:
        return self.core.processor

    @property
    def metrics(self) -> PipelineMetrics:
        return self.core.metrics

    @property
    def registry(self) -> CollectorRegistry:
        return self.core.registry

    @property
    def router(self) -> ModelRouter:
        return self.core.router

    @property
    def fallback(self) -> Forecaster:
        return self.core.fallback

    @property
    def fleet_live(self) -> FleetAccuracy:
        return self.core.fleet_live

    @property
    def fleet_shadow(self) -> FleetAccuracy:
        return self.core.fleet_shadow

    @property
    def silent_reported(self) -> set[str]:
        return self.core.silent_reported

    @property
    def data_drift(self) -> InputDriftMonitor | None:
        return self.core.data_drift

    @property
    def forecaster(self) -> Forecaster:
        """The live forecaster."""
        return self.core.router.live

"""Everything the agents share in one worker process, built once from the settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry

from streamer.accuracy.fleet_accuracy import FleetAccuracy
from streamer.agents.bulk_sender import BulkSender
from streamer.agents.transactional_sender import TransactionalSender
from streamer.drift.input_drift import InputDriftMonitor
from streamer.forecast.protocol import Forecaster
from streamer.metrics.pipeline_metrics import PipelineMetrics
from streamer.pipeline.batch_processor import BatchProcessor
from streamer.rollout.model_router import ModelRouter
from streamer.settings import Settings


@dataclass(slots=True)
class WorkerRuntime:
    settings: Settings
    processor: BatchProcessor
    metrics: PipelineMetrics
    registry: CollectorRegistry
    router: ModelRouter
    fallback: Forecaster
    # faust objects (untyped library)
    app: Any = None
    readings_topic: Any = None
    forecasts_topic: Any = None
    dlq_topic: Any = None
    status_topic: Any = None
    drift_topic: Any = None
    state_table: Any = None
    latest_forecast_table: Any = None
    # at_least_once: record batches through faust's producer (made at the first batch)
    bulk_sender: BulkSender | None = None
    # exactly_once: one transaction per readings partition and batch
    transactional_sender: TransactionalSender | None = None
    silent_reported: set[str] = field(default_factory=set)
    fleet_live: FleetAccuracy = field(default_factory=FleetAccuracy)
    fleet_shadow: FleetAccuracy = field(default_factory=FleetAccuracy)
    data_drift: InputDriftMonitor | None = None

    @property
    def forecaster(self) -> Forecaster:
        """The live forecaster."""
        return self.router.live

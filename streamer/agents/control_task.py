"""Follow the control topic and swap models between micro-batches.

Every worker reads the whole (compacted, one-partition) control topic with its own consumer and
no group, so every worker applies every rollout. Applying happens on the event loop while no
batch is being processed (a batch is handled without awaiting), so each reading is forecast by
exactly one live model.
"""

from __future__ import annotations

import logging
from typing import Any

from streamer.accuracy.fleet_accuracy import FleetAccuracy
from streamer.agents.drift_reporting import attach_data_drift_monitor
from streamer.agents.runtime import WorkerRuntime
from streamer.rollout.assignment import ControlMessageError, ModelAssignment
from streamer.whole_topic import following

log = logging.getLogger(__name__)


def apply_assignment(runtime: WorkerRuntime, assignment: ModelAssignment) -> None:
    change = runtime.router.apply(assignment)
    if change.error is not None:
        runtime.metrics.rollouts.labels(result="refused").inc()
        return
    if not change.applied:
        return
    runtime.metrics.rollouts.labels(result="applied").inc()
    publish_model_info(runtime)
    attach_data_drift_monitor(runtime.core)
    # accuracy intervals must not mix models: start them again
    runtime.core.fleet_live = FleetAccuracy()
    runtime.core.fleet_shadow = FleetAccuracy()


def publish_model_info(runtime: WorkerRuntime) -> None:
    """``streamer_model_info`` for the live, shadow and fallback models."""
    from streamer.web.views import describe_forecaster

    gauge = runtime.metrics.model_info
    gauge.clear()
    roles = {"live": runtime.router.live, "fallback": runtime.fallback}
    if runtime.router.shadow is not None:
        roles["shadow"] = runtime.router.shadow
    for role, forecaster in roles.items():
        info = describe_forecaster(forecaster)
        providers = info.get("providers_in_use") or ["python"]
        gauge.labels(
            role=role,
            model_name=info["name"],
            model_version=info["version"],
            provider=str(providers[0]),
        ).set(1)


def register_control_task(app: Any, runtime: WorkerRuntime) -> None:
    settings = runtime.settings

    async def follow_control_topic() -> None:
        async with runtime.core.batch_lock:
            publish_model_info(runtime)  # loads the live model now: a bad one stops the start
            attach_data_drift_monitor(runtime.core)
        async with following(settings, settings.control_topic) as consumer:
            async for message in consumer:
                if message.value is None:
                    continue
                try:
                    assignment = ModelAssignment.from_bytes(message.value)
                except ControlMessageError as exc:
                    log.error("ignoring control message at offset %d: %s", message.offset, exc)
                    runtime.metrics.rollouts.labels(result="refused").inc()
                    continue
                async with runtime.core.batch_lock:  # never a model swap mid-batch
                    apply_assignment(runtime, assignment)

    app.task(follow_control_topic)

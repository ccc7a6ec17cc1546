"""Timers that keep the worker's Prometheus gauges current between batches.

- every :data:`LAG_INTERVAL_SECONDS`: the readings partitions assigned to this worker and the
  consumer lag of each (end offset from the broker minus the next offset to process);
- every :data:`MODEL_INTERVAL_SECONDS`: whether a model asked for a GPU runs on CPU.

A refresh that fails (a rebalance in progress, the consumer not started yet) is logged and
tried again at the next tick: metrics never stop the stream.
"""

from __future__ import annotations

import logging
from typing import Any

from streamer.agents.runtime import WorkerRuntime
from streamer.forecast.protocol import Forecaster
from streamer.metrics.consumer_lag import TopicPartition
from streamer.typed_decorators import typed

log = logging.getLogger(__name__)

LAG_INTERVAL_SECONDS = 5.0
MODEL_INTERVAL_SECONDS = 10.0


async def update_consumer_lag(runtime: WorkerRuntime) -> dict[TopicPartition, int]:
    """Set ``streamer_assigned_partitions`` and ``streamer_consumer_lag_messages``."""
    consumer = runtime.app.consumer
    metrics = runtime.metrics
    topic = runtime.settings.readings_topic
    assigned = sorted(
        (tp for tp in consumer.assignment() if tp.topic == topic), key=lambda tp: tp.partition
    )
    metrics.assigned_partitions.set(len(assigned))
    if not assigned:
        return metrics.consumer_lag.update({})
    ends = await consumer.highwaters(*assigned)
    positions: dict[TopicPartition, int] = {}
    for tp in assigned:
        if metrics.consumer_lag.next_offset(tp.topic, tp.partition) is None:
            position = await consumer.position(tp)
            if position is not None:
                positions[(tp.topic, tp.partition)] = int(position)
    end_offsets = {(tp.topic, tp.partition): int(end) for tp, end in ends.items()}
    return metrics.consumer_lag.update(end_offsets, positions)


def update_model_gauges(runtime: WorkerRuntime) -> dict[str, bool]:
    """Set ``streamer_model_cpu_fallback`` for the live, shadow and fallback models."""
    from streamer.web.views import describe_forecaster

    roles: dict[str, Forecaster] = {"live": runtime.router.live, "fallback": runtime.fallback}
    shadow = runtime.router.shadow
    if shadow is not None:
        roles["shadow"] = shadow
    gauge = runtime.metrics.model_cpu_fallback
    fell_back: dict[str, bool] = {}
    gauge.clear()
    for role, forecaster in roles.items():
        info = describe_forecaster(forecaster)
        fell_back[role] = bool(info.get("fell_back_to_cpu", False))
        gauge.labels(
            role=role, model_name=str(info["name"]), model_version=str(info["version"])
        ).set(1 if fell_back[role] else 0)
    return fell_back


def register_metrics_timers(app: Any, runtime: WorkerRuntime) -> None:
    failures: set[type[BaseException]] = set()

    @typed(app.timer(LAG_INTERVAL_SECONDS, name="streamer.metrics.lag"))
    async def consumer_lag() -> None:
        try:
            await update_consumer_lag(runtime)
        except Exception as exc:  # a rebalance or a broker hiccup: try again next tick
            # say it once per kind of failure, then quietly (it recurs every tick)
            level = logging.DEBUG if type(exc) in failures else logging.WARNING
            failures.add(type(exc))
            log.log(
                level,
                "consumer lag not updated (tried again in %.0f s): %r",
                LAG_INTERVAL_SECONDS,
                exc,
            )

    @typed(app.timer(MODEL_INTERVAL_SECONDS, name="streamer.metrics.model"))
    async def model_gauges() -> None:
        update_model_gauges(runtime)

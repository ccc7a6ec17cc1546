"""HTTP views served by each worker (faust web, bound to STREAMER_WEB_HOST:STREAMER_WEB_PORT).

Read-only by design (no write path, so no authentication to get wrong):

- ``GET /health``: the process is up.
- ``GET /ready``: the worker has partitions assigned, is not recovering tables and reaches Kafka
  (503 if not; see :mod:`streamer.agents.broker_health`).
- ``GET /meters/{meter_id}/forecast``: the meter's newest forecast (the ``meter-forecasts``
  JSON). Any worker answers: the request is routed to the worker that owns the meter's partition.
  404 when the meter has no forecast yet.
- ``GET /models``: the forecaster in use and its fallback, versions, ONNX Runtime providers.
- ``GET /metrics``: Prometheus exposition of this worker's registry.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import generate_latest

from streamer.agents.broker_health import BrokerHealth
from streamer.agents.runtime import WorkerRuntime
from streamer.typed_decorators import typed


def describe_forecaster(forecaster: Any) -> dict[str, Any]:
    """Name, version and (for ONNX models) the execution providers of a forecaster."""
    info: dict[str, Any] = {"name": forecaster.name, "version": forecaster.version}
    model = getattr(forecaster, "model", None)
    if model is not None and hasattr(model, "providers_in_use"):
        info["providers_requested"] = list(model.providers_requested)
        info["providers_in_use"] = list(model.providers_in_use)
        info["fell_back_to_cpu"] = bool(model.fell_back_to_cpu)
    return info


def readiness(
    app: Any, runtime: WorkerRuntime, broker_health: BrokerHealth | None
) -> dict[str, Any]:
    """``GET /ready``: partitions assigned, tables recovered and (when probed) Kafka reachable.

    ``readings_partitions`` lists the partitions of the readings topic this worker owns (the
    meters it serves); ``assigned_partitions`` counts every assigned partition (changelogs too).
    """
    consumer = app.consumer
    assignment = consumer.assignment() if consumer is not None else set()
    readings = sorted(
        tp.partition for tp in assignment if tp.topic == runtime.settings.readings_topic
    )
    recovering = not app.tables.recovery.completed.is_set()
    body: dict[str, Any] = {
        "assigned_partitions": len(assignment),
        "readings_partitions": readings,
        "recovering": recovering,
    }
    reachable = True
    if broker_health is not None:
        state = broker_health.get()
        reachable = state.reachable
        body.update(state.to_json())
    body["ready"] = bool(assignment) and not recovering and reachable
    return body


def register_views(
    app: Any, runtime: WorkerRuntime, broker_health: BrokerHealth | None = None
) -> None:
    @typed(app.page("/health"))
    async def health(web: Any, request: Any) -> Any:
        return web.json({"status": "ok", "app_id": runtime.settings.app_id})

    @typed(app.page("/ready"))
    async def ready(web: Any, request: Any) -> Any:
        body = readiness(app, runtime, broker_health)
        return web.json(body, status=200 if body["ready"] else 503)

    @typed(app.page("/meters/{meter_id}/forecast"))
    @typed(app.table_route(table=runtime.latest_forecast_table, match_info="meter_id"))
    async def meter_forecast(web: Any, request: Any, meter_id: str) -> Any:
        body = runtime.latest_forecast_table.get(meter_id.encode())
        if body is None:
            return web.json(
                {"error": f"no forecast for meter {meter_id!r} yet", "meter_id": meter_id},
                status=404,
            )
        return web.bytes(bytes(body), content_type="application/json")

    @typed(app.page("/models"))
    async def models(web: Any, request: Any) -> Any:
        return web.json(
            {
                "forecaster": describe_forecaster(runtime.forecaster),
                "fallback": describe_forecaster(runtime.fallback),
                "models_dir": str(runtime.settings.models_dir),
            }
        )

    @typed(app.page("/metrics"))
    async def metrics(web: Any, request: Any) -> Any:
        # aiohttp refuses parameters in content_type; Prometheus reads plain text as 0.0.4.
        return web.bytes(generate_latest(runtime.registry), content_type="text/plain")

"""HTTP views served by each worker (faust web, bound to STREAMER_WEB_HOST:STREAMER_WEB_PORT).

Open to anyone who reaches the port:

- ``GET /health``: the process is up.
- ``GET /ready``: the worker has partitions assigned, is not recovering tables and reaches Kafka
  (503 if not; see :mod:`streamer.agents.broker_health`).
- ``GET /openapi.json``: the OpenAPI document of these routes.

Data routes, which need an API key whenever keys are configured (and keys are required to bind
beyond loopback; see :mod:`streamer.serving.auth`):

- ``POST /v1/forecast``: forecast the series in the request (:mod:`streamer.serving`).
- ``GET /meters/{meter_id}/forecast``: the meter's newest forecast (the ``meter-forecasts``
  JSON). Any worker answers: the request (its key included) is routed to the worker that owns
  the meter's partition. 404 when the meter has no forecast yet.
- ``GET /groups/{group_id}/forecast``: a group's newest forecast (the ``group-forecasts``
  JSON), routed to the worker that owns the group's partition in the same way.
- ``GET /models``: the forecaster in use and its fallback, versions, ONNX Runtime providers.
- ``GET /metrics``: Prometheus exposition of this worker's registry (a key only with
  ``STREAMER_METRICS_REQUIRE_KEY``).

A client error is a 4xx with ``{"error": ..., "reason": ...}`` and no traceback in the log; an
unexpected error is one logged traceback and a 500 without detail. A request aiohttp cannot
parse (a 100 kB URL, a junk request line) is answered 400 by aiohttp and logged as one INFO line
(:mod:`streamer.web_log_noise`, installed with the routes).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import faust
from aiokafka.errors import KafkaError
from prometheus_client import generate_latest

from streamer.agents.broker_health import BrokerHealth
from streamer.agents.runtime import WorkerRuntime
from streamer.delivery.latest_forecast import read_pointer
from streamer.kafka_security import KafkaSecurityError
from streamer.serving.auth import ApiKeys
from streamer.serving.errors import RequestRejected
from streamer.serving.metrics import ServingMetrics
from streamer.serving.openapi import openapi_document
from streamer.serving.service import ForecastService, ModelCatalog
from streamer.timeutil import format_ts
from streamer.typed_decorators import typed
from streamer.web.forecast_lookup import ForecastLookup, ForecastNotFound
from streamer.web_log_noise import install as install_bad_request_filter

log = logging.getLogger(__name__)

#: How much of a client's meter id an error message shows.
_SHOWN_ID_CHARS = 64


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


def shown_id(meter_id: str) -> str:
    """A client's meter id as an answer may echo it: at most 64 characters."""
    if len(meter_id) <= _SHOWN_ID_CHARS:
        return meter_id
    return meter_id[:_SHOWN_ID_CHARS] + f"... ({len(meter_id)} characters)"


def newest_forecast(web: Any, table: Any, what: str, key: str) -> Any:
    """The JSON a latest-forecast table holds for ``key`` (a meter or a group), or a 404."""
    body = table.get(key.encode())
    if body is None:
        raise RequestRejected(404, "no_forecast", f"no forecast for {what} {shown_id(key)!r} yet")
    return web.bytes(bytes(body), content_type="application/json")


async def newest_meter_forecast(
    web: Any, table: Any, lookup: ForecastLookup, metrics: ServingMetrics, meter_id: str
) -> Any:
    """A meter's newest forecast: the JSON its latest-forecast table holds, or, where the table
    holds a pointer (recovered from its changelog), the forecast read back from the forecasts
    topic and kept in the table from then on."""
    key = meter_id.encode()
    value = table.get(key)
    where = None if value is None else read_pointer(bytes(value))
    if where is None:
        return newest_forecast(web, table, "meter", meter_id)
    partition, issued_ms = where
    try:
        body = await lookup.find(partition, key, issued_ms)
    except ForecastNotFound:
        metrics.forecast_lookups.labels("expired").inc()
        raise RequestRejected(
            404,
            "forecast_expired",
            f"the newest forecast of meter {shown_id(meter_id)!r} (issued {format_ts(issued_ms)})"
            " is no longer in the forecasts topic (its retention); the meter's next reading "
            "makes a new one",
        ) from None
    except (KafkaError, KafkaSecurityError) as exc:  # the broker away, or refusing us
        metrics.forecast_lookups.labels("error").inc()
        raise RequestRejected(
            503, "kafka_unavailable", f"the forecasts topic could not be read: {exc}"
        ) from None
    metrics.forecast_lookups.labels("found").inc()
    data = table.data.data
    if data.get(key) is value:  # not replaced by a newer forecast meanwhile
        data[key] = body
    return web.bytes(body, content_type="application/json")


async def read_body(request: Any, limit_bytes: int) -> bytes:
    """The request body, refused with 413 as soon as it passes ``limit_bytes``."""
    declared = request.content_length
    too_large = RequestRejected(
        413,
        "body_too_large",
        f"the body is over {limit_bytes} bytes (STREAMER_SERVING_MAX_BODY_BYTES): send fewer "
        "series per request",
    )
    if declared is not None and declared > limit_bytes:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await request.content.read(1 << 16)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit_bytes:
            raise too_large
        chunks.append(chunk)


class HttpGuard:
    """Checks the API key of a data route, answers refusals, counts and times every answer."""

    def __init__(self, keys: ApiKeys, metrics: ServingMetrics) -> None:
        self.keys = keys
        self.metrics = metrics

    async def answer(
        self,
        web: Any,
        request: Any,
        route: str,
        handler: Callable[[], Awaitable[Any]],
        *,
        needs_key: bool = True,
    ) -> Any:
        started = time.perf_counter()
        key_name = "anonymous"
        try:
            if needs_key and self.keys.required:
                found = self.keys.identify(request.headers)
                if found is None:
                    raise RequestRejected(401, "unauthorized", "missing or unknown API key")
                key_name = found
            response = await handler()
        except RequestRejected as exc:
            self.metrics.rejections.labels(reason=exc.reason).inc()
            headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
            response = web.json(
                {"error": exc.detail, "reason": exc.reason}, status=exc.status, headers=headers
            )
        except Exception:  # never a crash, and never a traceback for the client
            log.exception("%s %s failed", request.method, route)
            response = web.json({"error": "internal error; see the worker's log"}, status=500)
        self.metrics.requests.labels(route=route, key=key_name, code=str(response.status)).inc()
        self.metrics.request_duration_ms.labels(route=route).observe(
            (time.perf_counter() - started) * 1000.0
        )
        return response


def register_views(
    app: Any,
    runtime: WorkerRuntime,
    broker_health: BrokerHealth | None = None,
    keys: ApiKeys | None = None,
) -> ForecastService:
    """Register the routes; returns the ``POST /v1/forecast`` service (its batcher)."""
    install_bad_request_filter()  # malformed requests: one line each, not a traceback
    settings = runtime.settings
    keys = keys or ApiKeys(())
    metrics = ServingMetrics(runtime.registry)
    guard = HttpGuard(keys, metrics)
    service = ForecastService(
        settings,
        ModelCatalog(runtime.router, runtime.router.build),
        runtime.fallback,
        metrics,
        runtime.processor.calibration_prior if settings.calibration_step > 0 else None,
    )
    document = openapi_document(settings, keys_required=keys.required)

    @typed(app.page("/health"))
    async def health(web: Any, request: Any) -> Any:
        return web.json({"status": "ok", "app_id": settings.app_id})

    @typed(app.page("/ready"))
    async def ready(web: Any, request: Any) -> Any:
        body = readiness(app, runtime, broker_health)
        return web.json(body, status=200 if body["ready"] else 503)

    @typed(app.page("/openapi.json"))
    async def openapi(web: Any, request: Any) -> Any:
        return web.json(document)

    lookup = ForecastLookup(settings, settings.forecasts_topic)

    async def stop_lookup(sender: Any, **kwargs: Any) -> None:
        await lookup.stop()

    app.on_before_shutdown.connect(stop_lookup)

    @typed(app.table_route(table=runtime.latest_forecast_table, match_info="meter_id"))
    async def owner_forecast(web: Any, request: Any, meter_id: str) -> Any:
        return await newest_meter_forecast(
            web, runtime.latest_forecast_table, lookup, metrics, meter_id
        )

    @typed(app.page("/meters/{meter_id}/forecast"))
    async def meter_forecast(view: Any, request: Any, meter_id: str) -> Any:
        async def handler() -> Any:
            return await owner_forecast(view, request, meter_id=meter_id)

        return await guard.answer(view, request, "/meters/{meter_id}/forecast", handler)

    @typed(app.table_route(table=runtime.group_latest_table, match_info="group_id"))
    async def owner_group_forecast(web: Any, request: Any, group_id: str) -> Any:
        return newest_forecast(web, runtime.group_latest_table, "group", group_id)

    @typed(app.page("/groups/{group_id}/forecast"))
    async def group_forecast(view: Any, request: Any, group_id: str) -> Any:
        async def handler() -> Any:
            return await owner_group_forecast(view, request, group_id=group_id)

        return await guard.answer(view, request, "/groups/{group_id}/forecast", handler)

    @typed(app.page("/models"))
    async def models(web: Any, request: Any) -> Any:
        async def handler() -> Any:
            return web.json(
                {
                    "forecaster": describe_forecaster(runtime.forecaster),
                    "fallback": describe_forecaster(runtime.fallback),
                    "models_dir": str(settings.models_dir),
                }
            )

        return await guard.answer(web, request, "/models", handler)

    @typed(app.page("/metrics"))
    async def prometheus_metrics(web: Any, request: Any) -> Any:
        async def handler() -> Any:
            # aiohttp refuses parameters in content_type; Prometheus reads plain text as 0.0.4.
            return web.bytes(generate_latest(runtime.registry), content_type="text/plain")

        return await guard.answer(
            web, request, "/metrics", handler, needs_key=settings.metrics_require_key
        )

    @typed(app.page("/v1/forecast"))
    class ForecastView(faust.web.View):
        async def post(self, request: Any) -> Any:
            async def handler() -> Any:
                body = await read_body(request, settings.serving_max_body_bytes)
                answer = await service.forecast(body)
                return self.bytes(answer, content_type="application/json")

            return await guard.answer(self, request, "/v1/forecast", handler)

    return service

"""HTTP views served by each worker (faust web, bound to STREAMER_WEB_HOST:STREAMER_WEB_PORT).

- ``GET /health``: the process is up.
- ``GET /ready``: the worker has partitions assigned and is not recovering tables.
- ``GET /metrics``: Prometheus exposition of this worker's registry.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import generate_latest

from streamer.agents.runtime import WorkerRuntime
from streamer.typed_decorators import typed


def register_views(app: Any, runtime: WorkerRuntime) -> None:
    @typed(app.page("/health"))
    async def health(web: Any, request: Any) -> Any:
        return web.json({"status": "ok", "app_id": runtime.settings.app_id})

    @typed(app.page("/ready"))
    async def ready(web: Any, request: Any) -> Any:
        assigned = len(app.consumer.assignment()) if app.consumer is not None else 0
        recovering = not app.tables.recovery.completed.is_set()
        is_ready = assigned > 0 and not recovering
        body = {"ready": is_ready, "assigned_partitions": assigned, "recovering": recovering}
        return web.json(body, status=200 if is_ready else 503)

    @typed(app.page("/metrics"))
    async def metrics(web: Any, request: Any) -> Any:
        # aiohttp refuses parameters in content_type; Prometheus reads plain text as 0.0.4.
        return web.bytes(generate_latest(runtime.registry), content_type="text/plain")

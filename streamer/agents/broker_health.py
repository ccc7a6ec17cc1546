"""Whether this worker can reach Kafka, for ``GET /ready``.

faust keeps a worker's partitions assigned while the broker is away (its clients retry; the
outputs of the batch in flight wait in the producer and its offsets stay uncommitted), so
"partitions assigned" alone would report ready through a broker outage. A worker therefore
asks the cluster for its metadata every ``interval_seconds`` on a client of its own (same
bootstrap servers and TLS/SASL settings as every other client) and reports not ready once a
request has failed or gone unanswered for ``timeout_seconds``; the next answer makes it ready
again. The probe only reads metadata: it never holds a lock or a buffer the pipeline needs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from aiokafka.client import AIOKafkaClient
from aiokafka.errors import KafkaError

from streamer.kafka_security import aiokafka_security
from streamer.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BrokerReachability:
    reachable: bool
    #: Seconds since the broker last answered (None while it answers, or before it ever did).
    unreachable_seconds: float | None
    last_error: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "broker_reachable": self.reachable,
            "broker_unreachable_seconds": (
                None if self.unreachable_seconds is None else round(self.unreachable_seconds, 1)
            ),
            "broker_error": self.last_error,
        }


class BrokerHealth:
    """Probes the cluster's metadata; :meth:`get` says whether the last probe was answered."""

    def __init__(
        self, settings: Settings, *, interval_seconds: float = 1.0, timeout_seconds: float = 3.0
    ) -> None:
        self.settings = settings
        self.interval_seconds = interval_seconds
        self.timeout_seconds = timeout_seconds
        self._client: AIOKafkaClient | None = None
        self._reachable = False
        self._last_ok: float | None = None
        self._down_since: float | None = None
        self._last_error: str | None = None

    def get(self) -> BrokerReachability:
        down_for = None if self._down_since is None else time.monotonic() - self._down_since
        return BrokerReachability(self._reachable, down_for, self._last_error)

    async def probe(self) -> bool:
        """One metadata request (bootstrapping the client first if needed)."""
        try:
            await asyncio.wait_for(self._request(), timeout=self.timeout_seconds)
        except (TimeoutError, KafkaError, OSError) as exc:
            self._mark_down(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
            return False
        if not self._reachable and self._down_since is not None:
            log.info(
                "Kafka at %s answers again after %.1f s",
                self.settings.kafka_bootstrap,
                time.monotonic() - self._down_since,
            )
        self._reachable = True
        self._last_ok = time.monotonic()
        self._down_since = None
        self._last_error = None
        return True

    async def _request(self) -> None:
        if self._client is None:
            client = AIOKafkaClient(
                bootstrap_servers=self.settings.kafka_bootstrap,
                request_timeout_ms=int(self.timeout_seconds * 1000),
                client_id="streamer-broker-health",
                **aiokafka_security(self.settings),
            )
            try:
                await client.bootstrap()
            except BaseException:
                await client.close()
                raise
            self._client = client
            return
        await self._client.fetch_all_metadata()

    def _mark_down(self, error: str) -> None:
        now = time.monotonic()
        if self._down_since is None:
            self._down_since = self._last_ok if self._last_ok is not None else now
        if self._reachable:
            log.warning(
                "Kafka at %s does not answer (%s); reporting not ready",
                self.settings.kafka_bootstrap,
                error,
            )
        self._reachable = False
        self._last_error = error

    async def run(self) -> None:
        """Probe forever (a faust task); closes the client when cancelled."""
        try:
            while True:
                await self.probe()
                await asyncio.sleep(self.interval_seconds)
        finally:
            await self.close()

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.close()


def register_broker_health(app: Any, settings: Settings) -> BrokerHealth:
    """Start the probe with the worker; the views read the returned object."""
    health = BrokerHealth(settings)
    app.task(health.run)
    return health

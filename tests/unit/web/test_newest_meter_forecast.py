"""GET /meters/{id}/forecast where the latest-forecast table holds a pointer (recovered from
its changelog): read back once and kept, 404 when the topic no longer has it, 503 when Kafka
cannot be read; never an unexpected error."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError
from prometheus_client import CollectorRegistry

from streamer.delivery.latest_forecast import pointer
from streamer.serving.errors import RequestRejected
from streamer.serving.metrics import ServingMetrics
from streamer.web.forecast_lookup import ForecastNotFound
from streamer.web.views import newest_meter_forecast

BODY = b'{"meter_id":"m-1"}'
ISSUED_MS = 1_795_392_061_000


class Store:
    def __init__(self, data: dict[bytes, bytes]) -> None:
        self.data = data


class Table:
    """A faust table on the memory store, as far as the route reads it."""

    def __init__(self, data: dict[bytes, bytes]) -> None:
        self.data = Store(data)

    def get(self, key: bytes) -> bytes | None:
        return self.data.data.get(key)


class Web:
    def bytes(self, body: bytes, content_type: str) -> tuple[bytes, str]:
        return body, content_type


class Lookup:
    def __init__(self, outcome: bytes | Exception) -> None:
        self.outcome = outcome
        self.asked: list[tuple[int, bytes, int]] = []

    async def find(self, partition: int, key: bytes, issued_ms: int) -> bytes:
        self.asked.append((partition, key, issued_ms))
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return self.outcome


def ask(table: Table, lookup: Lookup, metrics: ServingMetrics) -> Any:
    return asyncio.run(newest_meter_forecast(Web(), table, lookup, metrics, "m-1"))  # type: ignore[arg-type]


def lookups(metrics: ServingMetrics, outcome: str) -> float:
    return metrics.forecast_lookups.labels(outcome)._value.get()  # type: ignore[no-any-return]


def test_a_pointer_is_read_back_once_and_kept() -> None:
    metrics = ServingMetrics(CollectorRegistry())
    table, lookup = Table({b"m-1": pointer(3, ISSUED_MS)}), Lookup(BODY)
    assert ask(table, lookup, metrics) == (BODY, "application/json")
    assert ask(table, lookup, metrics) == (BODY, "application/json")
    assert lookup.asked == [(3, b"m-1", ISSUED_MS)]  # the second answer came from the table
    assert table.data.data[b"m-1"] == BODY and lookups(metrics, "found") == 1


def test_json_in_the_table_is_served_without_a_lookup() -> None:
    metrics = ServingMetrics(CollectorRegistry())
    lookup = Lookup(AssertionError("no lookup expected"))
    assert ask(Table({b"m-1": BODY}), lookup, metrics) == (BODY, "application/json")
    with pytest.raises(RequestRejected) as missing:
        ask(Table({}), lookup, metrics)
    assert (missing.value.status, missing.value.reason) == (404, "no_forecast")


@pytest.mark.parametrize(
    ("failure", "status", "reason", "outcome"),
    [
        (ForecastNotFound("gone"), 404, "forecast_expired", "expired"),
        (KafkaConnectionError("broker away"), 503, "kafka_unavailable", "error"),
    ],
)
def test_a_pointer_that_cannot_be_read_back_is_a_clear_refusal(
    failure: Exception, status: int, reason: str, outcome: str
) -> None:
    metrics = ServingMetrics(CollectorRegistry())
    table = Table({b"m-1": pointer(3, ISSUED_MS)})
    with pytest.raises(RequestRejected) as refused:
        ask(table, Lookup(failure), metrics)
    assert (refused.value.status, refused.value.reason) == (status, reason)
    assert lookups(metrics, outcome) == 1
    assert table.data.data[b"m-1"] == pointer(3, ISSUED_MS)  # kept, to be tried again

"""Readiness without a broker: the probe reports Kafka unreachable, /ready says not ready."""

from __future__ import annotations

import asyncio
import socket
from types import SimpleNamespace
from typing import Any, NamedTuple

import pytest

from streamer.agents.broker_health import BrokerHealth
from streamer.settings import load_settings
from streamer.web.views import readiness


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # closed again: connections are refused


def test_probe_of_a_broker_that_is_not_there() -> None:
    settings = load_settings(kafka_bootstrap=f"127.0.0.1:{closed_port()}")
    health = BrokerHealth(settings, timeout_seconds=2.0)
    assert health.get().reachable is False  # not ready before the first answer

    async def probe_twice() -> bool:
        first = await health.probe()
        await asyncio.sleep(0.05)
        second = await health.probe()
        await health.close()
        return first or second

    assert asyncio.run(probe_twice()) is False
    state = health.get()
    assert state.reachable is False
    assert state.last_error
    assert state.unreachable_seconds is not None and state.unreachable_seconds >= 0.05
    body = state.to_json()
    assert body["broker_reachable"] is False and body["broker_error"] == state.last_error


class FakeTP(NamedTuple):
    topic: str
    partition: int


def fake_app(assignment: set[Any], recovered: bool) -> Any:
    completed = SimpleNamespace(is_set=lambda: recovered)
    return SimpleNamespace(
        consumer=SimpleNamespace(assignment=lambda: assignment),
        tables=SimpleNamespace(recovery=SimpleNamespace(completed=completed)),
    )


@pytest.mark.parametrize(
    ("reachable", "recovered", "assigned", "ready"),
    [
        (True, True, True, True),
        (False, True, True, False),  # broker away
        (True, False, True, False),  # recovering tables
        (True, True, False, False),  # no partitions
    ],
)
def test_readiness(reachable: bool, recovered: bool, assigned: bool, ready: bool) -> None:
    settings = load_settings(readings_topic="r")
    tps = {FakeTP("r", 2), FakeTP("r", 0), FakeTP("changelog", 1)} if assigned else set()
    health = BrokerHealth(settings)
    health._reachable = reachable
    runtime = SimpleNamespace(settings=settings)
    body = readiness(fake_app(tps, recovered), runtime, health)  # type: ignore[arg-type]
    assert body["ready"] is ready
    assert body["broker_reachable"] is reachable
    assert body["readings_partitions"] == ([0, 2] if assigned else [])
    assert body["assigned_partitions"] == (3 if assigned else 0)

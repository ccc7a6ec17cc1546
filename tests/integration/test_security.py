"""Security (issue 8): TLS + SASL/SCRAM to the broker, secrets never shown, a read-only HTTP API.

A second local Kafka (tests/support/secure_kafka.py) has a single SASL_SSL listener, a CA made for
the run and SCRAM users written at format time. A real worker runs against it with the security
settings: readings produced over SASL_SSL (by the simulator's producer) become forecasts and
dead letters, a rollout on the control topic reaches it, and its output never holds the password.
A wrong password, an untrusted CA or a plaintext client each fail fast with one sentence.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import gc
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError

from streamer.kafka_admin import TopicSetupError, ensure_topics
from streamer.kafka_security import (
    KafkaSecurityError,
    aiokafka_security,
    explain_connection_failure,
)
from streamer.rollout.assignment import ModelAssignment
from streamer.rollout.control_topic import publish, read_current
from streamer.settings import Settings
from streamer.simulate.encode import ReadingEncoder
from streamer.simulate.fleet import FleetModel
from streamer.simulate.producer import kafka_producer
from streamer.simulate.runner import produce_messages
from streamer.timeutil import now_ms
from tests.support.fleet import fleet_messages
from tests.support.processes import WorkerProcess, free_port
from tests.support.secure_kafka import SecureKafka, read_secure, start_secure_kafka
from tests.support.topics import Record

pytestmark = pytest.mark.integration

METERS = 4
DAYS = 3
MASK = "**********"
# every route the worker serves, faust's own included; none may accept a write
ROUTES = [
    "/",
    "/health",
    "/ready",
    "/models",
    "/metrics",
    "/meters/m-000000/forecast",
    "/router/",
    "/table/",
    "/openapi.json",
]
WRITE_METHODS = ["POST", "PUT", "PATCH", "DELETE"]


@pytest.fixture(scope="module")
def secure_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureKafka]:
    started = time.monotonic()
    broker = start_secure_kafka(tmp_path_factory.mktemp("tls"))
    took = time.monotonic() - started
    print(f"\n[security] SASL_SSL broker up on {broker.bootstrap} in {took:.1f} s")
    try:
        yield broker
    finally:
        broker.stop()


def cli(settings: Settings, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streamer", *args],
        capture_output=True,
        text=True,
        env={**settings.to_env(), "PATH": "/usr/bin:/bin"},
        timeout=timeout,
        check=False,
    )


def http_status(method: str, url: str) -> int:
    request = urllib.request.Request(url, method=method, data=b"{}" if method != "GET" else None)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def listening_addresses(port: int) -> set[str]:
    """Local addresses of the TCP sockets listening on ``port`` (from /proc/net/tcp{,6})."""
    found: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, hex_port = fields[1].rsplit(":", 1)
            if fields[3] == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.add(address)
    return found


LOOPBACK = {
    "0100007F": "127.0.0.1",
    "0000000000000000FFFF00000100007F": "::ffff:127.0.0.1",
    "00000000000000000000000001000000": "::1",
}


def test_worker_over_sasl_ssl_forecasts_and_never_shows_the_password(
    secure_kafka: SecureKafka, tmp_path: Path
) -> None:
    settings = secure_kafka.settings(web_port=free_port(), forecaster="lstm")
    password = secure_kafka.password
    assert settings.kafka_security_protocol == "SASL_SSL" and settings.web_host == "127.0.0.1"

    # Settings never show the secret: repr, str, JSON dump, `streamer settings`.
    for shown in (repr(settings), str(settings), settings.model_dump_json()):
        assert password not in shown
    listing = cli(settings, "settings", timeout=90)
    assert listing.returncode == 0, listing.stderr[-2000:]
    line = next(x for x in listing.stdout.splitlines() if "STREAMER_KAFKA_SASL_PASSWORD" in x)
    assert MASK in line and password not in listing.stdout + listing.stderr

    # Topics created and readings produced over SASL_SSL (admin client, simulator producer).
    asyncio.run(ensure_topics(settings))
    res_ms = settings.resolution_seconds * 1000
    model = FleetModel(METERS, seed=5, resolution_seconds=settings.resolution_seconds)
    encoder = ReadingEncoder(model)
    last_slot = now_ms() // res_ms * res_ms - res_ms
    readings = fleet_messages(settings, model, encoder, last_slot - DAYS * 86_400_000, last_slot)
    bad = (b"m-000000", b'{"meter_id": "m-000000", "ts": 17')
    secure_producer = functools.partial(kafka_producer, security=aiokafka_security(settings))
    sent = asyncio.run(
        produce_messages(
            settings.kafka_bootstrap,
            settings.readings_topic,
            [*readings, bad],
            producer_factory=secure_producer,
        )
    )

    log_path = tmp_path / "worker.log"
    worker = WorkerProcess(settings, log_path)
    try:
        started = time.monotonic()
        worker.wait_ready(timeout_seconds=150)
        ready_s = time.monotonic() - started
        keys = set(encoder.keys)

        def all_meters_forecast(records: list[Record]) -> bool:
            return {r.key for r in records} >= keys

        forecasts = asyncio.run(
            read_secure(
                settings, settings.forecasts_topic, until=all_meters_forecast, timeout_seconds=120
            )
        )
        assert {r.key for r in forecasts} >= keys, worker.log_tail()
        letters = asyncio.run(
            read_secure(
                settings, settings.dlq_topic, until=lambda r: len(r) >= 1, timeout_seconds=60
            )
        )
        assert len(letters) == 1
        letter = orjson.loads(letters[0].value or b"")
        assert letter["reason"] == "invalid_json"
        assert base64.b64decode(letter["value_b64"]) == bad[1]

        # A rollout goes through the control topic (SASL_SSL producer); the worker's control
        # consumer (SASL_SSL too) applies it.
        asyncio.run(publish(settings, ModelAssignment("seasonal_naive_week", None, now_ms(), "t")))
        assert asyncio.run(read_current(settings)) is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if worker.metrics().get('streamer_rollouts_total{result="applied"}', 0) >= 1:
                break
            time.sleep(1)
        models = orjson.loads(urllib.request.urlopen(worker.base_url + "/models").read())
        assert models["forecaster"]["name"] == "seasonal_naive_week", worker.log_tail()

        # No route changes state (POST /v1/forecast, not in ROUTES, only computes); loopback only.
        refused: dict[str, int] = {}
        for route in ROUTES:
            assert http_status("GET", worker.base_url + route) < 500, route
            for method in WRITE_METHODS:
                refused[f"{method} {route}"] = http_status(method, worker.base_url + route)
        assert all(status == 405 for status in refused.values()), refused
        addresses = listening_addresses(settings.web_port)
        assert addresses and addresses <= set(LOOPBACK), addresses

        metrics = worker.metrics()
        assert metrics["streamer_readings_consumed_total"] == sent
        assert worker.alive
    finally:
        worker.stop()

    output = log_path.read_text(errors="replace")
    assert f"Authenticated as {settings.kafka_sasl_username} via SCRAM-SHA-256" in output
    assert password not in output
    print(
        f"[security] worker over SASL_SSL: ready in {ready_s:.1f} s, {sent} messages sent, "
        f"{len(forecasts)} forecasts and {len(letters)} dead letter read over SASL_SSL, "
        f"rollout applied via the control topic; {len(refused)} write requests refused (405); "
        f"HTTP bound to {sorted(LOOPBACK[a] for a in addresses)} only; "
        f"password found in 0 of {len(output):,} log bytes"
    )


def test_wrong_password_stops_the_worker_with_one_sentence(secure_kafka: SecureKafka) -> None:
    wrong = "not-the-" + secure_kafka.password
    settings = secure_kafka.settings(web_port=free_port(), kafka_sasl_password=wrong)
    started = time.monotonic()
    proc = cli(settings, "worker", "-l", "info", timeout=120)
    elapsed = time.monotonic() - started
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output[-3000:]
    assert "refused the SASL credentials of user 'streamer'" in output, output[-3000:]
    assert "STREAMER_KAFKA_SASL_PASSWORD" in output
    assert "Traceback" not in output, output[-3000:]
    assert wrong not in output and secure_kafka.password not in output

    # The rollout tools say the same instead of raising a client exception.
    with pytest.raises(KafkaSecurityError, match="refused the SASL credentials"):
        asyncio.run(read_current(settings))
    print(f"[security] wrong password: worker exited {proc.returncode} after {elapsed:.1f} s")


# aiokafka leaves the socket of a connection the broker refused unclosed (in a reference cycle):
# whichever collection finds it warns, during this test or a later one. This test collects it
# itself, at its end, with that warning ignored (not ours to fix; the refusals are what it tests).
@pytest.mark.filterwarnings("ignore:unclosed:ResourceWarning")
def test_plaintext_and_untrusted_clients_are_refused(secure_kafka: SecureKafka) -> None:
    good = secure_kafka.settings()
    plaintext = secure_kafka.settings(
        kafka_security_protocol="PLAINTEXT",
        kafka_sasl_username=None,
        kafka_sasl_password=None,
        kafka_ssl_cafile=None,
    )
    tls_without_sasl = secure_kafka.settings(
        kafka_security_protocol="SSL", kafka_sasl_username=None, kafka_sasl_password=None
    )
    untrusted = secure_kafka.settings(kafka_ssl_cafile=secure_kafka.certs.other_ca)

    async def plaintext_producer_starts() -> bool:
        producer = AIOKafkaProducer(
            bootstrap_servers=secure_kafka.bootstrap, request_timeout_ms=5000
        )
        try:
            await producer.start()
        except KafkaConnectionError:
            return False
        finally:
            await producer.stop()
        return True

    assert asyncio.run(plaintext_producer_starts()) is False
    for refused in (plaintext, tls_without_sasl):
        problem = asyncio.run(explain_connection_failure(refused))
        assert problem is not None and "dropped the first request" in problem[0]
        with pytest.raises(TopicSetupError, match="STREAMER_KAFKA_SECURITY_PROTOCOL"):
            asyncio.run(ensure_topics(refused, timeout_seconds=3))

    started = time.monotonic()
    with pytest.raises(TopicSetupError, match=r"not trusted.*STREAMER_KAFKA_SSL_CAFILE"):
        asyncio.run(ensure_topics(untrusted, timeout_seconds=60))
    untrusted_s = time.monotonic() - started
    assert untrusted_s < 15  # a permanent refusal is reported at once, not after the timeout
    assert asyncio.run(explain_connection_failure(good)) is None
    print(
        "[security] plaintext client: refused; TLS without SASL: refused; "
        f"untrusted CA: refused in {untrusted_s:.1f} s; the configured client: connects"
    )
    gc.collect()  # the refused connections' sockets, here, under this test's warning filter

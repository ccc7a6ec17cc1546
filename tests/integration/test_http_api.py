"""Any worker answers for any meter: requests are routed to the partition owner (issue 5); a
request the HTTP parser refuses is a 400 and one log line, not a traceback (issue 16)."""

from __future__ import annotations

import asyncio
import re
import socket
import time
from pathlib import Path

import orjson
import pytest

from streamer.delivery.latest_forecast import read_pointer
from streamer.kafka_admin import ensure_topics
from streamer.simulate.encode import ReadingEncoder
from streamer.simulate.fleet import FleetModel
from streamer.tables import LATEST_FORECAST_TABLE
from streamer.timeutil import now_ms
from tests.support.fleet import fleet_messages
from tests.support.kafka import TestKafka
from tests.support.processes import (
    WorkerProcess,
    free_port,
    get_json,
    wait_all_own_readings,
)
from tests.support.topics import last_values, produce, wait_caught_up

pytestmark = pytest.mark.integration

METERS = 16


def test_latest_forecast_of_every_meter_through_either_worker(
    kafka: TestKafka, tmp_path: Path
) -> None:
    first = kafka.settings(web_port=free_port(), consumer_session_timeout_seconds=6.0)
    second = first.model_copy(update={"web_port": free_port()})
    asyncio.run(ensure_topics(first))
    model = FleetModel(METERS, seed=5, resolution_seconds=first.resolution_seconds)
    res_ms = first.resolution_seconds * 1000
    last_slot = now_ms() // res_ms * res_ms - res_ms
    messages = fleet_messages(
        first, model, ReadingEncoder(model), last_slot - 2 * 86_400_000, last_slot
    )

    workers = [
        WorkerProcess(first, tmp_path / "w1.log"),
        WorkerProcess(second, tmp_path / "w2.log"),
    ]
    try:
        for worker in workers:
            worker.wait_ready()
        wait_all_own_readings(workers)  # both own meters before the data flows
        asyncio.run(produce(first.kafka_bootstrap, first.readings_topic, messages))
        asyncio.run(wait_caught_up(first.kafka_bootstrap, first.app_id, first.readings_topic))
        meter_ids = [str(m) for m in model.meter_ids]
        deadline = time.monotonic() + 60
        answers: dict[str, list[dict[str, object]]] = {}
        while time.monotonic() < deadline:
            answers = {
                meter: [get_json(f"{w.base_url}/meters/{meter}/forecast")[1] for w in workers]
                for meter in meter_ids
            }
            if all(a.get("origin_ts") for pair in answers.values() for a in pair):
                break
            time.sleep(1.0)
        for meter, (via_first, via_second) in answers.items():
            assert via_first["meter_id"] == meter, (meter, via_first, workers[0].log_tail())
            assert via_first == via_second  # the same record, wherever it was asked
            assert len(via_first["horizon_ts"]) == first.horizon_slots  # type: ignore[arg-type]
        # each worker served some meters itself: the forecasts are split between them
        served = [w.metrics().get("streamer_forecasts_total", 0.0) for w in workers]
        totals = [
            sum(v for k, v in w.metrics().items() if k.startswith("streamer_forecasts_total{"))
            for w in workers
        ]
        assert all(t > 0 for t in totals), (served, totals)
        status, body = get_json(f"{workers[1].base_url}/meters/no-such-meter/forecast")
        assert status == 404 and "no forecast" in str(body["error"])
        status, models = get_json(workers[0].base_url + "/models")
        assert status == 200
        assert models["forecaster"]["name"] == "lstm"  # type: ignore[index]
        assert models["forecaster"]["providers_in_use"]  # type: ignore[index]
    finally:
        for worker in workers:
            worker.stop()


def test_a_restarted_worker_serves_the_newest_forecasts_it_recovered(
    kafka: TestKafka, tmp_path: Path
) -> None:
    """Issue 14: a forecast is written once. The latest-forecast changelog holds 13-byte
    pointers, and a worker that recovered the table (no reading since) answers each meter with
    the very forecast the worker before it issued, read back from the forecasts topic."""
    settings = kafka.settings(web_port=free_port(), consumer_session_timeout_seconds=6.0)
    asyncio.run(ensure_topics(settings))
    model = FleetModel(METERS, seed=9, resolution_seconds=settings.resolution_seconds)
    res_ms = settings.resolution_seconds * 1000
    last_slot = now_ms() // res_ms * res_ms - res_ms
    messages = fleet_messages(
        settings, model, ReadingEncoder(model), last_slot - 2 * 86_400_000, last_slot
    )
    meter_ids = [str(m) for m in model.meter_ids]

    def answers(worker: WorkerProcess) -> dict[str, bytes]:
        out: dict[str, bytes] = {}
        for meter in meter_ids:
            status, body = get_json(f"{worker.base_url}/meters/{meter}/forecast", 10)
            assert status == 200, (meter, status, body, worker.log_tail())
            out[meter] = orjson.dumps(body)
        return out

    first = WorkerProcess(settings, tmp_path / "first.log")
    try:
        first.wait_ready()
        asyncio.run(produce(settings.kafka_bootstrap, settings.readings_topic, messages))
        asyncio.run(
            wait_caught_up(settings.kafka_bootstrap, settings.app_id, settings.readings_topic)
        )
        before = answers(first)
    finally:
        first.stop()
    changelog = f"{settings.app_id}-{LATEST_FORECAST_TABLE}-changelog"
    pointers = asyncio.run(last_values(settings.kafka_bootstrap, changelog))
    assert len(pointers) == METERS
    assert all(read_pointer(v or b"") is not None for v in pointers.values())

    second = WorkerProcess(settings, tmp_path / "second.log")
    try:
        second.wait_ready()
        after = answers(second)  # read back from the forecasts topic
        again = answers(second)  # kept in the table since
        lookups = second.metrics()
        assert lookups.get('streamer_forecast_lookups_total{outcome="found"}') == METERS
        assert "Traceback" not in second.log_tail(400)
    finally:
        second.stop()
    assert after == before
    assert again == before


#: Requests aiohttp cannot parse: a 100 kB URL, a request line with an unknown HTTP version, and
#: the first bytes of a TLS handshake (a client speaking HTTPS to the plain port).
MALFORMED = {
    "url of 100 kB": b"GET /meters/" + b"m" * 100_000 + b"/forecast HTTP/1.1\r\nHost: x\r\n\r\n",
    "junk request line": b"GET / HTTP/9.9\r\n\r\n",
    "binary junk": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 junk\r\n\r\n",
}


def raw_request(host: str, port: int, request: bytes) -> bytes:
    """The start of the answer to ``request`` sent as is (b"" when the worker closed the
    connection before reading all of it)."""
    with socket.create_connection((host, port), timeout=10) as sock:
        try:
            sock.sendall(request)
            return sock.recv(200)
        except (ConnectionResetError, BrokenPipeError):
            return b""


def test_malformed_requests_are_a_400_and_one_log_line_without_a_traceback(
    kafka: TestKafka, tmp_path: Path
) -> None:
    settings = kafka.settings(web_port=free_port())
    worker = WorkerProcess(settings, tmp_path / "worker.log")
    try:
        worker.wait_ready()
        for name, request in MALFORMED.items():
            answer = raw_request(settings.web_host, settings.web_port, request)
            assert answer == b"" or re.match(rb"HTTP/1\.[01] 4\d\d ", answer), (name, answer)
        assert get_json(worker.base_url + "/health")[0] == 200
        time.sleep(0.5)
        assert worker.alive
    finally:
        worker.stop()
    log = worker.log_path.read_text(errors="replace")
    assert "Traceback" not in log, log[-4000:]
    assert "Error handling request" not in log, log[-4000:]
    lines = [line for line in log.splitlines() if "Bad HTTP request from" in line]
    assert lines and "[INFO] Bad HTTP request from 127.0.0.1 answered 400: LineTooLong:" in lines[0]
    assert all(len(line) < 400 for line in lines), lines
    # a fresh broker's group coordinator is not yet elected at the first start: not an error
    assert "[ERROR] Group Coordinator Request failed" not in log

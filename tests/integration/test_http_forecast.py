"""POST /v1/forecast on two workers while the stream flows: the offline model's numbers for
1,000 series, API keys beyond loopback, 4xx for anything else, and the stream kept moving
(issue 18)."""

from __future__ import annotations

import asyncio
import json
import ssl
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from streamer.app import build_core
from streamer.contract.forecast_record import ForecastRecord
from streamer.kafka_admin import ensure_topics
from streamer.settings import Settings
from streamer.simulate.encode import ReadingEncoder
from streamer.simulate.fleet import FleetModel
from streamer.state.flags import SlotFlag
from streamer.state.imputation import impute_rows
from streamer.timeutil import now_ms
from tests.support.fleet import fleet_messages
from tests.support.kafka import TestKafka
from tests.support.processes import WorkerProcess, free_port
from tests.support.secure_kafka import run_openssl
from tests.support.topics import group_lag, produce, wait_caught_up

pytestmark = pytest.mark.integration

KEY = "tester-key-0123456789"
SERIES = 1000
PER_REQUEST = 20
ROUNDS = 3
LOOKBACK = 336
RES_MS = 1_800_000
STREAM_METERS = 200


def post(
    url: str, body: bytes, key: str | None = KEY, timeout: float = 60
) -> tuple[int, dict[str, str], bytes]:
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def get(url: str, key: str | None = None) -> tuple[int, bytes]:
    headers = {} if key is None else {"X-API-Key": key}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def offline_records(history: np.ndarray, end_ms: int, models_dir: Path) -> list[dict[str, object]]:
    """The model run in this process on the same windows, as meter-forecasts records."""
    core = build_core(
        # the workers' model and window settings (defaults)
        Settings(models_dir=models_dir, onnx_providers="CPUExecutionProvider"),
        CollectorRegistry(),
    )
    model = core.router.live
    flags = np.where(np.isfinite(history), SlotFlag.OBSERVED, SlotFlag.MISSING).astype(np.uint8)
    imputed, _ = impute_rows(history, flags, 48, core.settings.interpolate_max_gap_slots)
    batch = model.forecast(imputed, np.full(len(history), end_ms, dtype=np.int64), 1800)
    assert batch.valid.all()
    horizon = end_ms + RES_MS * np.arange(1, 49, dtype=np.int64)
    records = []
    for i in range(len(history)):
        record = ForecastRecord(
            f"s-{i}",
            0,
            end_ms,
            model.name,
            model.version,
            False,
            1800,
            float(np.isfinite(history[i]).sum()) / LOOKBACK,
            horizon,
            batch.point_kwh[i],
            batch.quantiles_kwh[i],
            model.quantile_levels,
        ).to_json()
        record.pop("issued_at")
        records.append(record)
    return records


class StreamFeeder:
    """Produces one slot of readings for the stream's meters every half second."""

    def __init__(self, settings: Settings, messages: list[list[tuple[bytes, bytes]]]) -> None:
        self.settings = settings
        self.slots = messages
        self.sent = 0
        self.lags: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        bootstrap = self.settings.kafka_bootstrap
        topic = self.settings.readings_topic
        group = self.settings.app_id
        for slot in self.slots:
            if self._stop.is_set():
                return
            asyncio.run(produce(bootstrap, topic, slot))
            self.sent += len(slot)
            self.lags.append(asyncio.run(group_lag(bootstrap, group, topic)))
            self._stop.wait(0.5)

    def __enter__(self) -> StreamFeeder:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is not None:  # the test failed: stop feeding
            self._stop.set()
        self._thread.join(timeout=120)


def test_forecast_api_on_two_workers_while_the_stream_flows(
    kafka: TestKafka, tmp_path: Path
) -> None:
    first = kafka.settings(
        web_port=free_port(),
        web_host="0.0.0.0",  # beyond loopback: keys required
        api_keys=f"tester:{KEY}",
        serving_max_body_bytes=1_000_000,
        consumer_session_timeout_seconds=6.0,
    )
    second = first.model_copy(update={"web_port": free_port()})
    asyncio.run(ensure_topics(first))
    fleet = FleetModel(STREAM_METERS, seed=8, resolution_seconds=1800)
    encoder = ReadingEncoder(fleet)
    last_slot = now_ms() // RES_MS * RES_MS - RES_MS
    preload = fleet_messages(
        first, fleet, encoder, last_slot - 2 * 86_400_000, last_slot - 40 * RES_MS
    )
    live_slots = [
        fleet_messages(first, fleet, encoder, end - RES_MS, end)
        for end in range(last_slot - 40 * RES_MS + RES_MS, last_slot + 1, RES_MS)
    ]

    # the series to forecast: another fleet's history, some values missing
    end_ms = 1_767_571_200_000  # 2026-01-05T00:00:00Z
    ends = np.arange(end_ms - (LOOKBACK - 1) * RES_MS, end_ms + 1, RES_MS, dtype=np.int64)
    history = FleetModel(SERIES, seed=21, resolution_seconds=1800).load_kwh(ends)
    history = history.astype(np.float32)
    history[::7, 200:202] = np.nan
    expected = offline_records(history, end_ms, first.models_dir)
    bodies = []
    for start in range(0, SERIES, PER_REQUEST):
        series = [
            {
                "id": f"s-{i}",
                "values_kwh": [None if np.isnan(v) else float(v) for v in history[i]],
                "start_ts": int(ends[0] - RES_MS),
            }
            for i in range(start, start + PER_REQUEST)
        ]
        # the model's own quantiles, to compare with the model run offline
        bodies.append(json.dumps({"series": series, "calibration": "none"}).encode())

    workers = [
        WorkerProcess(first, tmp_path / "w1.log"),
        WorkerProcess(second, tmp_path / "w2.log"),
    ]
    try:
        for worker in workers:
            worker.wait_ready()
        base = [worker.base_url for worker in workers]
        asyncio.run(produce(first.kafka_bootstrap, first.readings_topic, preload))

        # --- keys: data routes refuse without one, health and the document stay open -------
        status, headers, body = post(base[0] + "/v1/forecast", bodies[0], key=None)
        assert status == 401 and headers.get("WWW-Authenticate") == "Bearer", body
        assert json.loads(body) == {"error": "missing or unknown API key", "reason": "unauthorized"}
        assert post(base[1] + "/v1/forecast", bodies[0], key=KEY + "x")[0] == 401
        assert get(base[0] + "/meters/m-1/forecast")[0] == 401
        assert get(base[0] + "/models")[0] == 401
        assert get(base[0] + "/models", key=KEY)[0] == 200
        assert get(base[0] + "/health")[0] == 200
        status, document = get(base[1] + "/openapi.json")
        assert status == 200 and "/v1/forecast" in json.loads(document)["paths"]

        # --- 1,000 series in parallel over both workers while readings flow ----------------
        served_before = [
            sum(v for k, v in w.metrics().items() if k.startswith("streamer_forecasts_total{"))
            for w in workers
        ]
        started = time.monotonic()
        with StreamFeeder(first, live_slots) as feeder, ThreadPoolExecutor(16) as pool:
            # three rounds, so that the requests overlap the stream's batches
            answers = list(
                pool.map(
                    lambda item: post(base[item[0] % 2] + "/v1/forecast", item[1]),
                    enumerate(bodies * ROUNDS),
                )
            )
            elapsed = time.monotonic() - started
        records = []
        for status, _, body in answers:
            assert status == 200, body[:500]
            records.extend(json.loads(body)["forecasts"])
        assert len(records) == SERIES * ROUNDS
        for got, want in zip(records, expected * ROUNDS, strict=True):
            assert got.pop("fallback_reason") is None
            got.pop("issued_at")
            assert got == want
        print(f"{SERIES * ROUNDS} series in {elapsed:.1f} s; stream lag samples {feeder.lags}")

        # the stream kept its turn at the model and caught up
        asyncio.run(
            wait_caught_up(
                first.kafka_bootstrap, first.app_id, first.readings_topic, timeout_seconds=90.0
            )
        )
        served_after = [
            sum(v for k, v in w.metrics().items() if k.startswith("streamer_forecasts_total{"))
            for w in workers
        ]
        assert sum(served_after) > sum(served_before)
        assert feeder.lags and max(feeder.lags) < len(preload) + feeder.sent

        # --- limits: a body over the limit, too many series, per-key counters --------------
        status, _, body = post(base[0] + "/v1/forecast", b"[" + b"1," * 600_000 + b"1]")
        assert status == 413 and b"STREAMER_SERVING_MAX_BODY_BYTES" in body
        samples = workers[0].metrics()
        ok = samples.get(
            'streamer_http_requests_total{code="200",key="tester",route="/v1/forecast"}'
        )
        assert ok is not None and ok >= len(bodies) // 2
        assert samples['streamer_http_rejections_total{reason="unauthorized"}'] >= 1
        assert samples["streamer_serving_batch_series_count"] >= 1

        # --- fuzz over HTTP: any JSON gets a 2xx or a 4xx, never a 5xx ---------------------
        json_values = st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
            lambda inner: (
                st.lists(inner, max_size=5)
                | st.dictionaries(
                    st.sampled_from(
                        ["series", "values_kwh", "start_ts", "slot_end_ts", "model", "id"]
                    )
                    | st.text(max_size=5),
                    inner,
                    max_size=5,
                )
            ),
            max_leaves=30,
        )

        @settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
        @given(body=json_values | st.binary(max_size=200))
        def fuzz(body: object) -> None:
            raw = body if isinstance(body, bytes) else json.dumps(body).encode()
            status, _, answer = post(base[0] + "/v1/forecast", raw, timeout=30)
            assert status < 500, (raw[:300], answer[:300])

        fuzz()
        assert all(worker.alive for worker in workers)
        for worker in workers:
            assert "Traceback" not in worker.log_tail(400), worker.log_tail(60)
    finally:
        for worker in workers:
            worker.stop()


def test_https_when_a_certificate_is_given(kafka: TestKafka, tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    run_openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
        "-addext", "subjectAltName=IP:127.0.0.1",
        cwd=tmp_path,
    )  # fmt: skip
    settings = kafka.settings(
        web_port=free_port(), web_tls_certfile=cert, web_tls_keyfile=key, api_keys=f"t:{KEY}"
    )
    asyncio.run(ensure_topics(settings))
    worker = WorkerProcess(settings, tmp_path / "tls.log")
    url = f"https://127.0.0.1:{settings.web_port}"
    context = ssl.create_default_context(cafile=str(cert))
    try:
        deadline = time.monotonic() + 90
        status = 0
        while time.monotonic() < deadline and worker.alive:
            try:
                with urllib.request.urlopen(url + "/health", timeout=2, context=context) as r:
                    status = r.status
                    break
            except OSError:
                time.sleep(0.5)
        assert status == 200, worker.log_tail()
        request = urllib.request.Request(url + "/models", headers={"X-API-Key": KEY})
        with urllib.request.urlopen(request, timeout=10, context=context) as response:
            assert json.loads(response.read())["forecaster"]["name"] == "lstm"
        with pytest.raises(OSError):  # plain HTTP is not served (the TLS server hangs up)
            urllib.request.urlopen(f"http://127.0.0.1:{settings.web_port}/health", timeout=5)
    finally:
        worker.stop()

"""POST /v1/forecast's service on the real ONNX model: the stream's numbers, 4xx for the rest."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from streamer.accuracy.interval_calibration import IntervalCalibrator
from streamer.agents.runtime import WorkerCore
from streamer.app import build_core
from streamer.contract.forecast_record import ForecastRecord
from streamer.forecast.registry import make_forecaster
from streamer.serving.errors import RequestRejected
from streamer.serving.metrics import ServingMetrics
from streamer.serving.service import ForecastService, ModelCatalog
from streamer.settings import Settings
from streamer.simulate.fleet import FleetModel
from streamer.state.flags import SlotFlag
from streamer.state.imputation import impute_rows

REPO = Path(__file__).resolve().parents[3]
RES_MS = 1_800_000
END_MS = 1_767_571_200_000  # 2026-01-05T00:00:00Z
LOOKBACK = 336


@pytest.fixture(scope="module")
def core() -> WorkerCore:
    settings = Settings(models_dir=REPO / "models", onnx_providers="CPUExecutionProvider")
    return build_core(settings, CollectorRegistry())


def service(core: WorkerCore, prior: IntervalCalibrator | None = None) -> ForecastService:
    return ForecastService(
        core.settings,
        ModelCatalog(core.router, core.router.build),
        core.fallback,
        ServingMetrics(CollectorRegistry()),
        prior,
    )


def fleet_history(meters: int) -> np.ndarray:
    ends = np.arange(END_MS - (LOOKBACK - 1) * RES_MS, END_MS + 1, RES_MS, dtype=np.int64)
    history: np.ndarray = FleetModel(meters, seed=11, resolution_seconds=1800).load_kwh(ends)
    return history.astype(np.float32)


def ask(core: WorkerCore, body: object) -> Any:
    return orjson.loads(asyncio.run(service(core).forecast(orjson.dumps(body))))


def test_answers_are_the_stream_records_of_the_model_run_on_the_same_windows(
    core: WorkerCore,
) -> None:
    history = fleet_history(30)
    history[3, 100:103] = np.nan  # a short gap: interpolated, as the stream would
    start_ms = END_MS - LOOKBACK * RES_MS
    series = [
        {
            "id": f"m-{i}",
            "values_kwh": [None if np.isnan(v) else float(v) for v in row],
            "start_ts": start_ms,
        }
        for i, row in enumerate(history)
    ]
    answer = ask(core, {"series": series})
    records = answer["forecasts"]
    assert isinstance(records, list) and len(records) == 30

    model = core.router.live
    flags = np.where(np.isfinite(history), SlotFlag.OBSERVED, SlotFlag.MISSING).astype(np.uint8)
    imputed, _ = impute_rows(history, flags, 48, core.settings.interpolate_max_gap_slots)
    offline = model.forecast(imputed, np.full(30, END_MS, dtype=np.int64), 1800)
    assert offline.valid.all()
    for i, record in enumerate(records):
        expected = ForecastRecord(
            f"m-{i}",
            0,
            END_MS,
            "lstm",
            model.version,
            False,
            1800,
            float(np.isfinite(history[i]).sum()) / LOOKBACK,
            END_MS + RES_MS * np.arange(1, 49, dtype=np.int64),
            offline.point_kwh[i],
            offline.quantiles_kwh[i],
            model.quantile_levels,
        ).to_json()
        got = dict(record)
        assert got.pop("fallback_reason") is None
        got.pop("issued_at"), expected.pop("issued_at")
        assert got == expected


def test_a_short_history_is_served_by_the_fallback_and_says_why(core: WorkerCore) -> None:
    values = [0.3] * 60  # enough for the stream's observed fraction, too little for the LSTM
    answer = ask(core, {"values_kwh": values, "start_ts": END_MS - 60 * RES_MS, "id": "new"})
    (record,) = answer["forecasts"]
    assert record["fallback"] is True and record["fallback_reason"] == "insufficient_history"
    assert record["model_name"] == core.fallback.name
    assert record["origin_ts"] == "2026-01-05T00:00:00Z"


def test_another_version_is_served_by_name_and_unknown_or_slow_models_are_refused(
    core: WorkerCore,
) -> None:
    body = {"values_kwh": fleet_history(1)[0].tolist(), "start_ts": END_MS - LOOKBACK * RES_MS}
    record = ask(core, body | {"model": "seasonal_naive_week"})["forecasts"][0]
    expected = make_forecaster("seasonal_naive_week", horizon_slots=48, resolution_seconds=1800)
    assert record["model_name"] == expected.name and record["fallback"] is False
    for spec, words in [("lstm:999", "lstm:999"), ("sarima", "not served"), ("nope", "nope")]:
        with pytest.raises(RequestRejected) as caught:
            ask(core, body | {"model": spec})
        assert caught.value.reason == "unknown_model" and words in caught.value.detail


_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=12), inner, max_size=6)
    ),
    max_leaves=40,
)
_KEYS = st.sampled_from(
    [
        "series",
        "values_kwh",
        "start_ts",
        "slot_end_ts",
        "id",
        "model",
        "resolution_seconds",
        "time_zone",
    ]
)
_ON_GRID = st.integers(0, 400).map(lambda k: END_MS - k * RES_MS)
_SERIES = st.fixed_dictionaries(
    {},
    optional={
        "values_kwh": st.lists(st.none() | st.floats(-5, 5) | st.integers(-10, 10), max_size=400),
        "start_ts": _ON_GRID | st.integers(END_MS - 400 * RES_MS, END_MS) | _JSON,
        "slot_end_ts": st.lists(_ON_GRID, max_size=20).map(sorted) | _JSON,
        "id": st.text(max_size=300) | _JSON,
        "resolution_seconds": st.sampled_from([1800, 900]) | _JSON,
        "time_zone": st.sampled_from(["UTC", "Europe/London", "x/y"]) | _JSON,
        "model": st.sampled_from(["lstm", "lstm:1", "ets", "seasonal_naive"]) | _JSON,
    },
)


_NEAR_VALID = st.fixed_dictionaries(
    {
        "values_kwh": st.lists(
            st.none() | st.floats(0, 5) | st.integers(0, 3), min_size=40, max_size=400
        ),
        "start_ts": _ON_GRID,
    },
    optional={
        "id": st.text(max_size=300),
        "time_zone": st.sampled_from(["UTC", "Australia/Sydney", "Nowhere/Else"]),
        "resolution_seconds": st.sampled_from([1800, 900]),
        "model": st.sampled_from(["lstm", "lstm:1", "seasonal_naive_week"]),
    },
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    body=st.one_of(
        _NEAR_VALID,
        st.fixed_dictionaries({"series": st.lists(_NEAR_VALID, min_size=1, max_size=4)}),
        _SERIES,
        st.fixed_dictionaries({"series": st.lists(_SERIES, max_size=4)}),
        st.dictionaries(_KEYS, _JSON, max_size=6),
        _JSON,
    )
)
def test_any_json_gets_an_answer_or_a_4xx_never_an_error(core: WorkerCore, body: object) -> None:
    try:
        # the standard library writes integers of any size (orjson would refuse to)
        answer = asyncio.run(service(core).forecast(json.dumps(body).encode()))
    except RequestRejected as exc:
        assert 400 <= exc.status < 500 and exc.detail
        event(f"refused: {exc.reason}")
    else:
        event("answered")
        records = orjson.loads(answer)["forecasts"]
        assert records and all(len(r["point_kwh"]) == 48 for r in records)


def test_bands_are_calibrated_by_the_fleet_prior_unless_asked_not_to(core: WorkerCore) -> None:
    prior = IntervalCalibrator(core.processor.config.record.calibration)
    prior.log_high = np.log(2.0)  # the stream learnt: the model's upper half is too narrow
    body = {"values_kwh": fleet_history(1)[0].tolist(), "start_ts": END_MS - LOOKBACK * RES_MS}

    def answer(extra: dict[str, object]) -> Any:
        raw = asyncio.run(service(core, prior).forecast(orjson.dumps(body | extra)))
        return orjson.loads(raw)["forecasts"][0]

    calibrated, own = answer({}), answer({"calibration": "none"})
    assert calibrated["point_kwh"] == own["point_kwh"]
    assert calibrated["quantiles_kwh"]["p50"] == own["quantiles_kwh"]["p50"]
    assert calibrated["quantiles_kwh"]["p10"] == own["quantiles_kwh"]["p10"]
    widths = [
        (c - m) / (o - m)
        for c, o, m in zip(
            calibrated["quantiles_kwh"]["p90"],
            own["quantiles_kwh"]["p90"],
            own["quantiles_kwh"]["p50"],
            strict=True,
        )
        if o - m > 1e-3
    ]
    assert widths and all(abs(w - 2.0) < 0.01 for w in widths)
    with pytest.raises(RequestRejected, match="calibration"):
        answer({"calibration": "maybe"})


def test_a_series_time_zone_sets_the_local_calendar_of_the_model(core: WorkerCore) -> None:
    history = fleet_history(2)
    start_ms = END_MS - LOOKBACK * RES_MS
    values = [float(v) for v in history[0]]

    def point(zone: str | None, model: str) -> list[float]:
        item: dict[str, object] = {"values_kwh": values, "start_ts": start_ms}
        if zone is not None:
            item["time_zone"] = zone
        (record,) = ask(core, {"series": [item], "model": model, "calibration": "none"})[
            "forecasts"
        ]
        return list(record["point_kwh"])

    live = core.router.live
    assert getattr(live.model.card, "calendar_time", None) == "local"  # type: ignore[attr-defined]
    # the worker's zone (UTC here) when the series names none; a series' own zone moves the
    # calendar of a local-time model, and of no UTC one
    assert point(None, "lstm") == point("UTC", "lstm")
    assert point("Pacific/Auckland", "lstm") != point("UTC", "lstm")
    assert point("Pacific/Auckland", "lstm:1") == point("UTC", "lstm:1")
    zone = "Pacific/Auckland"
    expected = live.forecast(
        history[:1].astype(np.float64), np.array([END_MS], dtype=np.int64), 1800, zone
    )
    np.testing.assert_allclose(point(zone, "lstm"), expected.point_kwh[0], rtol=1e-6)


def test_requests_do_not_feed_the_streams_data_drift_monitor(core: WorkerCore) -> None:
    """The monitor watches the fleet's inputs on the event loop; a client's series (answered on
    a thread of its own) are not offered to it."""
    from streamer.agents.drift_reporting import attach_data_drift_monitor

    attach_data_drift_monitor(core)
    monitor = core.data_drift
    assert monitor is not None
    body = {"values_kwh": fleet_history(1)[0].tolist(), "start_ts": END_MS - LOOKBACK * RES_MS}
    before = monitor.report(reset=False).rows_seen
    assert ask(core, {"series": [{"id": "m-1", **body}]})["forecasts"]
    assert monitor.report(reset=False).rows_seen == before
    # the stream's own call, outside any deferral, still reaches it
    history = fleet_history(2).astype(np.float64)
    core.router.live.forecast(history, np.full(2, END_MS, dtype=np.int64), 1800)
    assert monitor.report(reset=False).rows_seen > before

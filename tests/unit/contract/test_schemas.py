"""The JSON Schema files in the repo describe what the code really writes."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import jsonschema
import numpy as np
import pytest

from streamer.contract.dead_letter import DeadLetter, SourcePosition
from streamer.contract.drift_record import DriftReport
from streamer.contract.forecast_record import ForecastRecord, quantile_name
from streamer.contract.reading import Reading, encode_reading
from streamer.contract.reasons import DlqReason
from streamer.contract.status_record import MeterStatus, StatusEvent


def schema(name: str) -> dict[str, Any]:
    text = resources.files("streamer.contract").joinpath(f"schemas/{name}.schema.json").read_text()
    loaded: dict[str, Any] = json.loads(text)
    jsonschema.Draft202012Validator.check_schema(loaded)
    return loaded


def validate(instance: object, name: str) -> None:
    jsonschema.validate(instance, schema(name), cls=jsonschema.Draft202012Validator)


def test_reading_schema_accepts_encoded_readings_and_refuses_both_energies() -> None:
    validate(
        json.loads(encode_reading(Reading("m-1", 1_795_430_000_000, 0.5, None))), "meter-readings"
    )
    validate(
        json.loads(encode_reading(Reading("m-1", 1_795_430_000_000, None, 12.0))), "meter-readings"
    )
    with pytest.raises(jsonschema.ValidationError):
        validate(
            {"meter_id": "m-1", "ts": 1_795_430_000_000, "kwh": 1, "register_kwh": 2},
            "meter-readings",
        )


def test_forecast_record_matches_schema() -> None:
    horizon = 4
    record = ForecastRecord(
        meter_id="m-1",
        issued_ms=1_795_430_001_250,
        origin_ms=1_795_430_000_000,
        model_name="seasonal_naive_week",
        model_version="1",
        fallback=False,
        resolution_seconds=1800,
        observed_fraction=0.9,
        horizon_end_ms=1_795_430_000_000 + np.arange(1, horizon + 1, dtype=np.int64) * 1_800_000,
        point_kwh=np.array([0.1, 0.2, np.nan, 0.4]),
        quantiles_kwh=np.tile(np.array([[0.05, 0.1, 0.2]]), (horizon, 1)),
        quantile_levels=(0.1, 0.5, 0.9),
    )
    body = json.loads(record.to_bytes())
    validate(body, "meter-forecasts")
    first = datetime.fromtimestamp((1_795_430_000_000 + 1_800_000) / 1000, tz=UTC)
    assert body["horizon_ts"][0] == first.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert body["point_kwh"][2] is None
    assert sorted(body["quantiles_kwh"]) == ["p10", "p50", "p90"]
    assert body["forecast_id"] == "m-1:1795430000000:seasonal_naive_week:1"


def test_quantile_names() -> None:
    assert [quantile_name(q) for q in (0.1, 0.5, 0.975)] == ["p10", "p50", "p97.5"]


def test_dead_letter_matches_schema_and_keeps_bytes() -> None:
    letter = DeadLetter(
        DlqReason.INVALID_JSON,
        "not valid UTF-8 JSON",
        SourcePosition("meter-readings", 2, 41, 1_795_430_000_000),
        b"m-1",
        b"\xff{",
        1_795_430_000_500,
    )
    body = json.loads(letter.to_bytes())
    validate(body, "meter-readings-dlq")
    import base64

    assert base64.b64decode(body["value_b64"]) == b"\xff{"


def test_status_event_matches_schema() -> None:
    event = StatusEvent("m-1", MeterStatus.SILENT, 1_795_430_000_000, None, "no reading for 3 h")
    validate(json.loads(event.to_bytes()), "meter-status")


def test_dlq_schema_lists_every_reason() -> None:
    reasons = schema("meter-readings-dlq")["properties"]["reason"]["enum"]
    assert set(reasons) == {reason.value for reason in DlqReason}


@pytest.mark.parametrize(
    "report",
    [
        DriftReport("fleet", "data_drift", 1_795_430_000_000, "lstm", "1",
                    worker="127.0.0.1:6066", metrics={"psi.window_scale_kwh": 0.1,
                                                      "ks.window_scale_kwh": float("nan")}),
        DriftReport("fleet", "accuracy", 1_795_430_000_000, "lstm", "2", role="shadow",
                    metrics={"mae_kwh.h1": 0.2, "coverage.h48": None}),
        DriftReport("meter", "concept_drift", 1_795_430_000_000, "lstm", "1",
                    meter_id="m-000042", direction="up", metrics={"residual": 4.1},
                    detail="one-slot-ahead residuals drifted up (Page-Hinkley)"),
    ],
)  # fmt: skip
def test_drift_reports_as_written_match_the_schema(report: DriftReport) -> None:
    validate(json.loads(report.to_bytes()), "forecast-drift")


def test_the_drift_schema_refuses_a_report_without_its_kind() -> None:
    body = json.loads(DriftReport("fleet", "accuracy", 1_795_430_000_000, "lstm", "1").to_bytes())
    del body["kind"]
    with pytest.raises(jsonschema.ValidationError):
        validate(body, "forecast-drift")

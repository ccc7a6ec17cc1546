"""POST /v1/forecast bodies: parsed into the stream's windows, or refused naming the limit."""

from __future__ import annotations

import math

import numpy as np
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamer.serving.errors import RequestRejected
from streamer.serving.request import RequestLimits, parse_request

RES_MS = 1_800_000
START_MS = 1_767_571_200_000  # 2026-01-05T00:00:00Z, on the grid
LIMITS = RequestLimits(
    resolution_seconds=1800, lookback_slots=8, min_observed_fraction=0.25, max_series=3
)


def body(**fields: object) -> bytes:
    return orjson.dumps(fields)


def rejected(raw: bytes, limits: RequestLimits = LIMITS) -> RequestRejected:
    with pytest.raises(RequestRejected) as caught:
        parse_request(raw, limits)
    return caught.value


def test_a_single_series_becomes_the_newest_window_ending_at_its_last_slot() -> None:
    values = [float(i) for i in range(10)]  # two more than the lookback: the oldest dropped
    request = parse_request(body(values_kwh=values, start_ts=START_MS, id="m-1"), LIMITS)
    assert request.model_spec is None
    (series,) = request.series
    assert series.series_id == "m-1"
    assert series.end_ms == START_MS + 10 * RES_MS
    assert series.window_kwh.tolist() == values[2:]
    assert series.window_kwh.dtype == np.float32 and series.observed == 8


def test_slot_end_times_place_values_on_the_grid_with_gaps_missing() -> None:
    ends = [START_MS + RES_MS, START_MS + 2 * RES_MS, START_MS + 5 * RES_MS]
    iso = ["2026-01-05T00:30:00Z", "2026-01-05T01:00:00+00:00", ends[2]]
    request = parse_request(
        body(model="lstm:1", series=[{"values_kwh": [1, None, 3], "slot_end_ts": iso}]), LIMITS
    )
    (series,) = request.series
    assert request.model_spec == "lstm:1" and series.series_id == "0"
    assert series.end_ms == ends[2]
    window = series.window_kwh
    assert np.isnan(window[:3]).all() and window[3] == 1.0
    assert np.isnan(window[4:7]).all() and window[7] == 3.0
    assert series.observed == 2


@pytest.mark.parametrize(
    ("raw", "status", "reason", "words"),
    [
        (b"{", 400, "invalid_json", "not JSON"),
        (b"[1, 2]", 422, "invalid_request", "JSON object"),
        (body(series=[]), 422, "invalid_request", "non-empty"),
        (body(foo=1), 422, "invalid_request", "neither"),
        (body(series=[{"values_kwh": [1]}] * 4), 413, "too_many_series", "at most 3"),
        (body(values_kwh=[True] * 8, start_ts=START_MS), 422, "invalid_request", "numbers"),
        (body(values_kwh=["1"] * 8, start_ts=START_MS), 422, "invalid_request", "numbers"),
        (body(values_kwh=[None] * 8, start_ts=START_MS), 422, "all_missing", "null"),
        (body(values_kwh=[1.0], start_ts=START_MS), 422, "too_short", "at least 2"),
        (
            body(values_kwh=[1.0] * 8, start_ts=START_MS, resolution_seconds=900),
            422,
            "wrong_resolution",
            "1800 s",
        ),
        (body(values_kwh=[1.0] * 8, start_ts=START_MS + 1), 422, "invalid_request", "grid"),
        (body(values_kwh=[1.0] * 8), 422, "invalid_request", "exactly one"),
        (
            body(values_kwh=[1.0] * 2, start_ts=START_MS, slot_end_ts=[1, 2]),
            422,
            "invalid_request",
            "exactly one",
        ),
        (
            body(values_kwh=[1.0] * 2, slot_end_ts=[START_MS + RES_MS, START_MS + RES_MS]),
            422,
            "invalid_request",
            "increasing",
        ),
        (body(values_kwh=[1.0] * 2, slot_end_ts=[START_MS]), 422, "invalid_request", "one time"),
        (
            body(values_kwh=[1.0] * 8, start_ts="2026-01-05T00:00:00"),
            422,
            "invalid_request",
            "offset",
        ),
        (body(values_kwh=[1.0] * 8, start_ts=0), 422, "invalid_request", "2000-2100"),
        (
            body(values_kwh=[1.0] * 8, start_ts=START_MS, time_zone="Mars/Olympus"),
            422,
            "invalid_request",
            "IANA",
        ),
        (body(values_kwh=[1.0] * 8, start_ts=START_MS, id=""), 422, "invalid_request", "id"),
        (body(values_kwh=[1.0], start_ts=START_MS, model="../x"), 422, "unknown_model", "spec"),
        # numbers beyond a float are refused by the JSON reader itself
        (b'{"values_kwh": [1e400], "start_ts": 0}', 400, "invalid_json", "infinity"),
        (b'{"values_kwh": [' + b"9" * 400 + b'], "start_ts": 0}', 400, "invalid_json", "JSON"),
    ],
)
def test_bad_requests_are_refused_with_their_reason_and_the_limit(
    raw: bytes, status: int, reason: str, words: str
) -> None:
    error = rejected(raw)
    assert (error.status, error.reason) == (status, reason), error.detail
    assert words in error.detail


def test_a_valid_time_zone_is_accepted() -> None:
    request = parse_request(
        body(values_kwh=[1.0] * 8, start_ts=START_MS, time_zone="Australia/Sydney"), LIMITS
    )
    assert request.series[0].observed == 8


@given(
    lookback=st.integers(1, 2000),
    fraction=st.floats(0.0, 1.0, allow_nan=False),
)
def test_the_least_observed_count_is_the_streams_observed_fraction_rule(
    lookback: int, fraction: float
) -> None:
    """The stream forecasts a meter when observed / lookback >= the fraction (and >= 1 value)."""
    limits = RequestLimits(1800, lookback, fraction, 1)
    needed = limits.min_observed_slots
    assert needed >= 1
    assert needed / lookback >= fraction or needed == lookback
    if needed > 1:
        assert (needed - 1) / lookback < fraction
    assert needed <= max(1, math.ceil(fraction * lookback))

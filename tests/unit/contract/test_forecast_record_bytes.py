"""The fast ForecastRecord serialisation writes the same bytes as the plain per-value one."""

from __future__ import annotations

import dataclasses
import math
from datetime import UTC, datetime
from typing import Any

import numpy as np
import orjson
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from streamer.contract.forecast_record import (
    ForecastRecord,
    _round_blocks,
    encode_forecasts,
    round_kwh,
)

RES_MS = 1_800_000


def reference_ts(ts_ms: int) -> str:
    seconds, millis = divmod(int(ts_ms), 1000)
    text = datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{millis:03d}Z" if millis else f"{text}Z"


def reference_name(level: float) -> str:
    pct = round(level * 100, 4)
    return f"p{int(pct)}" if pct == int(pct) else f"p{pct}"


def reference_rounded(values: Any) -> list[float | None]:
    return [None if not np.isfinite(v) else round(float(v), 6) for v in values]


def reference_json(record: ForecastRecord) -> dict[str, Any]:
    """The serialisation as first written: one Python call per value."""
    return {
        "forecast_id": f"{record.meter_id}:{record.origin_ms}:{record.model_name}:"
        f"{record.model_version}",
        "meter_id": record.meter_id,
        "issued_at": reference_ts(record.issued_ms),
        "origin_ts": reference_ts(record.origin_ms),
        "model_name": record.model_name,
        "model_version": record.model_version,
        "fallback": record.fallback,
        "resolution_seconds": record.resolution_seconds,
        "observed_fraction": round(float(record.observed_fraction), 4),
        "horizon_ts": [reference_ts(int(ts)) for ts in record.horizon_end_ms],
        "point_kwh": reference_rounded(record.point_kwh),
        "quantiles_kwh": {
            reference_name(level): reference_rounded(record.quantiles_kwh[:, i])
            for i, level in enumerate(record.quantile_levels)
        },
    }


# kWh-like values, plus the awkward ones: exact ties at the 6th decimal (k/128), values just
# off a tie, huge and tiny magnitudes, signed zeros, NaN and infinities
AWKWARD = st.one_of(
    st.floats(min_value=-50.0, max_value=50.0),
    st.integers(-(10**6), 10**6).map(lambda k: k / 128),
    st.integers(-(10**9), 10**9).map(lambda k: (k + 0.5) / 1e6),
    st.integers(-(10**9), 10**9).map(lambda k: math.nextafter((k + 0.5) / 1e6, math.inf)),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 1e-7, -1e-7, 5e-7, 4.5e9, 1e300, -1e300, 5e-324]),
)


def record(
    point: Any, quantiles: Any, origin_ms: int, issued_ms: int, levels: tuple[float, ...]
) -> ForecastRecord:
    horizon = point.shape[0]
    return ForecastRecord(
        meter_id="m-000042",
        issued_ms=issued_ms,
        origin_ms=origin_ms,
        model_name="lstm",
        model_version="1",
        fallback=False,
        resolution_seconds=1800,
        observed_fraction=0.987654321,
        horizon_end_ms=origin_ms + np.arange(1, horizon + 1, dtype=np.int64) * RES_MS,
        point_kwh=point,
        quantiles_kwh=quantiles,
        quantile_levels=levels,
    )


@st.composite
def records(draw: st.DrawFn) -> ForecastRecord:
    horizon = draw(st.integers(1, 60))
    levels = draw(
        st.sampled_from([(0.1, 0.5, 0.9), (0.5,), (0.025, 0.1, 0.5, 0.9, 0.975), (0.333,)])
    )
    point = draw(arrays(np.float64, horizon, elements=AWKWARD))
    quantiles = draw(arrays(np.float64, (horizon, len(levels)), elements=AWKWARD))
    origin_ms = draw(
        st.one_of(
            st.integers(0, 4_000_000_000_000),
            st.integers(-5_000_000_000, 0),
            st.integers(1_700_000_000, 1_800_000_000).map(lambda s: s * RES_MS // 1800),
        )
    )
    issued_ms = draw(st.integers(0, 4_000_000_000_000))
    return record(point, quantiles, origin_ms, issued_ms, levels)


@settings(max_examples=300, deadline=None)
@given(records())
def test_bytes_and_json_equal_the_per_value_serialisation(rec: ForecastRecord) -> None:
    expected = orjson.dumps(reference_json(rec))
    assert rec.to_bytes() == expected
    assert orjson.dumps(rec.to_json()) == expected
    assert rec.to_json() == orjson.loads(expected)


def test_kwh_values_of_a_real_batch_are_byte_identical() -> None:
    rng = np.random.default_rng(3)
    origin = 1_795_430_000_000 - 1_795_430_000_000 % RES_MS
    for _ in range(200):
        quantiles = np.sort(rng.gamma(2.0, 0.2, size=(48, 3)), axis=1)
        rec = record(quantiles[:, 1].copy(), quantiles, origin, origin + 1_250, (0.1, 0.5, 0.9))
        assert rec.to_bytes() == orjson.dumps(reference_json(rec))


def test_round_kwh_rounds_as_python_does_on_ties_and_near_ties() -> None:
    ties = np.arange(-5000, 5000) / 128.0  # k/128 has exact ties at the 6th decimal
    near = np.array([math.nextafter((k + 0.5) / 1e6, d) for k in range(-500, 500) for d in (-1, 1)])
    values = np.concatenate([ties, near, [1e300, -1e300, 4.6e9, np.nan, np.inf, -0.0]])
    got = round_kwh(values)
    for value, out in zip(values.tolist(), got.tolist(), strict=True):
        if math.isfinite(value):
            assert out == round(value, 6)
            assert math.copysign(1.0, out) == math.copysign(1.0, round(value, 6))
        else:
            assert out != out or out == value


def test_round_kwh_keeps_the_shape() -> None:
    values = np.full((3, 4), 0.1234567)
    assert round_kwh(values).shape == (3, 4)
    assert round_kwh(np.empty(0)).shape == (0,)


@st.composite
def batches(draw: st.DrawFn) -> list[ForecastRecord]:
    """Records as a batch has them: some share a horizon, levels and issue time, some not."""
    recs = draw(st.lists(records(), min_size=1, max_size=6))
    shared = recs[0]
    out = []
    for i, rec in enumerate(recs):
        variant = draw(st.sampled_from(["own", "same_origin", "other_model"]))
        if variant == "same_origin" and rec.point_kwh.shape == shared.point_kwh.shape:
            rec = dataclasses.replace(
                rec,
                meter_id=draw(st.sampled_from(["m-1", 'we"ird\\m\u00e9', "\u2603 m", ""])),
                origin_ms=shared.origin_ms,
                issued_ms=shared.issued_ms,
                horizon_end_ms=shared.horizon_end_ms,  # the very array, as the processor shares it
                quantile_levels=shared.quantile_levels,
                quantiles_kwh=rec.quantiles_kwh
                if rec.quantiles_kwh.shape == shared.quantiles_kwh.shape
                else shared.quantiles_kwh,
            )
        elif variant == "other_model":
            rec = dataclasses.replace(
                rec,
                model_name="seasonal_naive_day",
                model_version=str(i),
                fallback=True,
                observed_fraction=draw(st.floats(0.0, 1.0)),
            )
        out.append(rec)
    return out


@settings(max_examples=300, deadline=None)
@given(batches())
def test_a_batch_encodes_to_the_bytes_of_each_record(recs: list[ForecastRecord]) -> None:
    assert encode_forecasts(recs) == [r.to_bytes() for r in recs]


def test_a_real_batch_encodes_to_the_bytes_of_each_record() -> None:
    rng = np.random.default_rng(5)
    origin = 1_795_430_000_000 - 1_795_430_000_000 % RES_MS
    horizon = origin + np.arange(1, 49, dtype=np.int64) * RES_MS
    recs = []
    for i in range(500):
        quantiles = np.sort(rng.gamma(2.0, 0.2, size=(48, 3)), axis=1)
        if i == 7:
            quantiles[3, 1] = 0.0000005  # an exact tie: this record is rounded by Python
        rec = record(quantiles[:, 1].copy(), quantiles, origin, origin + 1_250, (0.1, 0.5, 0.9))
        recs.append(dataclasses.replace(rec, meter_id=f"m-{i:06d}", horizon_end_ms=horizon))
    assert encode_forecasts(recs) == [r.to_bytes() for r in recs]


def test_encoding_odd_records_falls_back_to_each_record() -> None:
    empty = record(np.empty(0), np.empty((0, 3)), 0, 0, (0.1, 0.5, 0.9))
    plain = record(np.full(2, 0.5), np.full((2, 3), 0.5), 0, 0, (0.1, 0.5, 0.9))
    assert encode_forecasts([]) == []
    assert encode_forecasts([empty, plain]) == [empty.to_bytes(), plain.to_bytes()]


@settings(max_examples=200, deadline=None)
@given(
    arrays(
        np.float64,
        st.tuples(st.integers(1, 5), st.integers(1, 4), st.integers(1, 9)),
        elements=AWKWARD,
    )
)
def test_rounding_blocks_together_rounds_each_as_round_kwh(block: np.ndarray) -> None:
    got = _round_blocks(block.copy())
    for one, out in zip(block, got, strict=True):
        assert round_kwh(one).tobytes() == out.tobytes()  # to the bit: signed zeros, NaN

"""Pure helpers of the benchmark suite: percentiles, forecast matching, saturation, records."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from types import ModuleType

import numpy as np
import orjson
import pytest

from streamer.contract.forecast_record import ForecastRecord
from streamer.pipeline.config import PipelineConfig
from streamer.pipeline.meter_record import MeterRecord
from streamer.settings import load_settings

Bench = Callable[[str], ModuleType]
ORIGIN_MS = 1_795_428_000_000  # 2026-11-23T10:00:00Z


@pytest.mark.parametrize(
    ("q", "expected"),
    [(0.5, 50.0), (0.99, 99.0), (0.999, 100.0), (1.0, 100.0), (0.001, 1.0)],
)
def test_percentile_is_nearest_rank(bench: Bench, q: float, expected: float) -> None:
    stats = bench("stats")
    values = [float(v) for v in range(1, 101)]
    assert stats.percentile(values, q) == expected


def test_percentile_refuses_no_values_and_bad_quantiles(bench: Bench) -> None:
    stats = bench("stats")
    with pytest.raises(ValueError, match="no values"):
        stats.percentile([], 0.5)
    with pytest.raises(ValueError, match="not in"):
        stats.percentile([1.0], 0.0)


def test_latency_summary_in_milliseconds(bench: Bench) -> None:
    stats = bench("stats")
    seconds = [i / 1000 for i in range(1, 1001)]  # 1 ms .. 1000 ms, shuffled order is fine
    summary = stats.latency_summary(list(reversed(seconds)))
    assert summary == {
        "count": 1000,
        "p50_ms": 500.0,
        "p99_ms": 990.0,
        "p999_ms": 999.0,
        "mean_ms": 500.5,
        "max_ms": 1000.0,
    }
    assert stats.latency_summary([]) == {"count": 0}


def _forecast(meter_id: str, model_name: str = "lstm") -> ForecastRecord:
    horizon = 3
    return ForecastRecord(
        meter_id=meter_id,
        issued_ms=ORIGIN_MS + 1234,
        origin_ms=ORIGIN_MS,
        model_name=model_name,
        model_version="1",
        fallback=False,
        resolution_seconds=1800,
        observed_fraction=0.9,
        horizon_end_ms=ORIGIN_MS + 1_800_000 * np.arange(1, horizon + 1, dtype=np.int64),
        point_kwh=np.full(horizon, 0.5),
        quantiles_kwh=np.full((horizon, 3), 0.5),
        quantile_levels=(0.1, 0.5, 0.9),
    )


@pytest.mark.parametrize("meter_id", ["m-000042", "site:7:meter"])
def test_forecast_origin_reads_the_real_forecast_bytes(bench: Bench, meter_id: str) -> None:
    stats = bench("stats")
    value = _forecast(meter_id).to_bytes()
    assert stats.forecast_origin(meter_id.encode(), value) == ORIGIN_MS


def test_forecast_origin_falls_back_to_json_for_another_layout(bench: Bench) -> None:
    stats = bench("stats")
    value = orjson.dumps({"meter_id": "m-1", "origin_ts": "2026-11-23T10:00:00Z"})
    assert stats.forecast_origin(b"m-1", value) == ORIGIN_MS
    # a key that is not the forecast's meter: the prefix does not match, JSON decides
    assert stats.forecast_origin(b"other", _forecast("m-1").to_bytes()) == ORIGIN_MS


def test_saturation_needs_a_large_and_growing_backlog(bench: Bench) -> None:
    stats = bench("stats")
    sample = stats.LagSample
    growing = [sample(float(t), 3000 * t) for t in range(1, 11)]
    verdict = stats.saturation(growing, 5000, batch_events=2000)
    assert verdict["saturated"] is True
    assert verdict["slope_per_s"] == pytest.approx(3000.0)
    assert "growing" in verdict["reason"]
    steady = [sample(float(t), 6000 + (500 if t % 2 else -500)) for t in range(1, 11)]
    assert stats.saturation(steady, 1000)["saturated"] is False  # behind, but not growing
    small = [sample(float(t), 50 * t) for t in range(1, 11)]
    assert stats.saturation(small, 5000)["saturated"] is False  # growing, but under 2 s of load
    assert stats.saturation(growing[:3], 5000)["saturated"] is False  # too few samples


def test_saturation_allows_the_sawtooth_of_a_worker_taking_full_batches(bench: Bench) -> None:
    """At 1k/s a worker taking 2,000-reading batches holds 1-2.5k readings and keeps up."""
    stats = bench("stats")
    saw = [1500, 2000, 1700, 2100, 2000, 2500, 2300, 2800, 2100, 1900]
    samples = [stats.LagSample(float(t), b) for t, b in enumerate(saw, 1)]
    verdict = stats.saturation(samples, 1000, batch_events=2000)
    assert verdict["saturated"] is False
    assert "within 4,000" in verdict["reason"]


def test_record_sections_split_a_real_meter_record(bench: Bench) -> None:
    stats = bench("stats")
    config = PipelineConfig.from_settings(load_settings()).record
    record = MeterRecord.new(config)
    value = record.to_bytes(partition=3)
    parts = stats.record_sections(value)
    assert sum(parts.values()) == len(value)
    assert parts["framing"] == 5 + 8 + 5 * 4
    assert parts["interval_calibration"] == len(record.calibration.to_bytes())
    assert parts["window"] == len(record.state.to_bytes())  # whatever the window's encoding
    assert parts["forecast_ledger"] == len(record.ledger.to_bytes())
    assert set(parts) == {"framing", *stats.RECORD_PARTS}
    with pytest.raises(ValueError, match="not a meter record"):
        stats.record_sections(b"XX" + value[2:])
    with pytest.raises(ValueError, match="extra"):
        stats.record_sections(value + b"\0")


def test_ratio_is_none_without_a_ceiling(bench: Bench) -> None:
    stats = bench("stats")
    assert stats.ratio(50.0, 200.0) == 0.25
    assert stats.ratio(None, 200.0) is None
    assert stats.ratio(50.0, 0.0) is None


def test_forecast_issued_ms_reads_the_real_forecast_bytes(bench: Bench) -> None:
    stats = bench("stats")
    assert stats.forecast_issued_ms(_forecast("m-1").to_bytes()) == ORIGIN_MS + 1234
    whole_second = dataclasses.replace(_forecast("m-1"), issued_ms=ORIGIN_MS + 5000)
    assert stats.forecast_issued_ms(whole_second.to_bytes()) == ORIGIN_MS + 5000
    other_layout = orjson.dumps({"issued_at": "2026-11-23T10:00:01.234Z"})
    assert stats.forecast_issued_ms(other_layout) == ORIGIN_MS + 1234


def test_batch_cycles_time_complete_batches(bench: Bench) -> None:
    stats = bench("stats")
    # four batches starting 0.5 s apart: 100, 200, 200 and a last, partial one of 50
    issued = [1000] * 100 + [1500] * 200 + [2000] * 200 + [2500] * 50
    cycles = stats.batch_cycles(list(reversed(issued)))
    assert cycles["batches"] == 4 and cycles["forecasts"] == 550
    assert cycles["ramp_up_batches"] == 0  # 100 is not under half the median (100)
    # the first three batches were made between the first start and the last start
    assert cycles["forecasts_in_span"] == 500 and cycles["seconds"] == 1.5
    assert cycles["forecasts_per_s"] == pytest.approx(500 / 1.5, abs=0.1)
    assert cycles["forecasts_per_batch"] == {"min": 50, "median": 100, "max": 200}
    assert cycles["cycle_seconds"] == {"min": 0.5, "median": 0.5, "max": 0.5}
    assert cycles["mean_batch_forecasts_in_span"] == pytest.approx(500 / 3, abs=0.1)


def test_batch_cycles_leave_out_the_ramp_up(bench: Bench) -> None:
    stats = bench("stats")
    # a small first batch taken while the backlog arrived, then full ones 0.8 s apart
    issued = [0] * 79 + [300] * 1934 + [1100] * 1934 + [1900] * 1934 + [2700] * 400
    cycles = stats.batch_cycles(issued)
    assert cycles["ramp_up_batches"] == 1
    assert cycles["forecasts_in_span"] == 3 * 1934 and cycles["seconds"] == 2.4
    assert cycles["mean_batch_forecasts_in_span"] == 1934.0
    assert cycles["cycle_seconds"]["median"] == 0.8


def test_batch_cycles_of_one_batch_have_no_rate(bench: Bench) -> None:
    stats = bench("stats")
    cycles = stats.batch_cycles([7] * 10)
    assert cycles["batches"] == 1 and cycles["forecasts_per_s"] is None
    assert stats.batch_cycles([])["forecasts"] == 0

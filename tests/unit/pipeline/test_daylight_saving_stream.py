"""A stream across both daylight-saving changes of a zone: slot counts, local calendar features
and seasonal-naive lags on each side, for the fleet's zone and for a meter in a zone of its own."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest

from streamer.app import build_core
from streamer.contract.forecast_record import ForecastRecord
from streamer.contract.placement import home_partition
from streamer.forecast.local_time import wall_ms
from streamer.inference.features import FeatureSpec, build_inputs
from streamer.pipeline.batch_processor import BatchProcessor
from streamer.pipeline.messages import InMessage
from tests.support.settings import make_settings

RES_MS = 1_800_000
LONDON = "Europe/London"
SYDNEY = "Australia/Sydney"
WEEK_SLOTS = 336


def wall_value(ts_ms: int, zone: str) -> float:
    """A load that names its local wall-clock slot of the week: a seasonal-naive-week forecast
    made in local time reproduces it exactly, one made in UTC is two slots off after a change."""
    wall = int(wall_ms([ts_ms], zone)[0])
    slot_of_week = ((wall // RES_MS) + 3 * 48) % WEEK_SLOTS  # Monday 00:00-00:30 ends at 1
    return round(0.1 + 0.001 * slot_of_week, 3)


@dataclass
class Recorder:
    """Wraps the live model and keeps the zones it was called with."""

    inner: Any
    calls: list[tuple[np.ndarray, object]]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def forecast(
        self, history_kwh: Any, end_ms: Any, resolution_seconds: int, time_zone: Any = "UTC"
    ) -> Any:
        self.calls.append((np.asarray(end_ms).copy(), time_zone))
        return self.inner.forecast(history_kwh, end_ms, resolution_seconds, time_zone)


class Stream:
    def __init__(self, processor: BatchProcessor) -> None:
        self.processor = processor
        self.store: dict[str, bytes] = {}
        self.offset = 0

    def send(
        self, meter: str, slot_ends: list[int], zone: str, named: bool
    ) -> list[ForecastRecord]:
        forecasts: list[ForecastRecord] = []
        for ts in slot_ends:
            body: dict[str, object] = {"meter_id": meter, "ts": ts, "kwh": wall_value(ts, zone)}
            if named:
                body["time_zone"] = zone
            key = meter.encode()
            message = InMessage(
                key, orjson.dumps(body), "meter-readings", home_partition(key, 4), self.offset, ts
            )
            self.offset += 1
            result = self.processor.process([message], self.store.get, ts + 60_000)
            for meter_id, write in result.state_writes.items():
                self.store[meter_id] = write.value
            assert result.accounted == 1 and result.outcomes.get("applied") == 1, result.outcomes
            forecasts.extend(result.forecasts)
        return forecasts


def local_day_ends(day: str, zone: str) -> list[int]:
    """The slot ends of one local calendar day, as the stream sees them (UTC epoch ms)."""
    start = pd.Timestamp(day, tz=zone)
    end = start + pd.DateOffset(days=1)
    first = start.tz_convert("UTC").value // 1_000_000 + RES_MS
    last = end.tz_convert("UTC").value // 1_000_000
    return list(range(first, last + 1, RES_MS))


CASES = [
    # zone, the meter names its zone (else it is the fleet's), change days, slots on them
    (LONDON, False, ("2026-03-29", "2026-10-25"), (46, 50)),
    (SYDNEY, True, ("2026-10-04", "2026-04-05"), (46, 50)),
]


@pytest.mark.parametrize(("zone", "named", "days", "slots"), CASES)
def test_a_stream_across_both_clock_changes_keeps_the_local_calendar(
    zone: str, named: bool, days: tuple[str, str], slots: tuple[int, int]
) -> None:
    settings = make_settings(
        time_zone=LONDON,
        forecaster="seasonal_naive_week",
        lookback_slots=2 * WEEK_SLOTS,
        min_observed_fraction=0.1,
    )
    core = build_core(settings)
    processor = core.processor
    calls: list[tuple[np.ndarray, object]] = []
    live = processor.models.live
    processor.models = type("M", (), {"live": Recorder(live, calls), "shadow": None})()  # type: ignore[assignment]
    stream = Stream(processor)

    for change, expected_slots in zip(days, slots, strict=True):
        meter = f"m-{zone}-{change}"
        change_day = local_day_ends(change, zone)
        assert len(change_day) == expected_slots  # the stream sees a 46- or 50-slot day
        ordinary = local_day_ends(str(date.fromisoformat(change).replace(day=1)), zone)
        assert len(ordinary) == 48
        # two weeks before the change, then the change day and the day after it
        start = change_day[0] - 15 * 86_400_000
        warmup = list(range(start, change_day[0], RES_MS))
        stream.send(meter, warmup, zone, named)
        calls.clear()
        after = local_day_ends(str(date.fromisoformat(change) + timedelta(days=1)), zone)
        forecasts = stream.send(meter, change_day + after, zone, named)
        assert len(forecasts) == expected_slots + 48  # one per slot: nothing skipped or doubled

        # seasonal naive copies the same local wall-clock slot one week earlier on both sides
        for record in forecasts:
            expected = [wall_value(int(t), zone) for t in record.horizon_end_ms]
            np.testing.assert_allclose(record.point_kwh, expected, atol=1e-9)
        # the model was told the meter's zone (the fleet's, or the one its readings name)
        zones_seen = {z if isinstance(z, str) else str(z[0]) for _, z in calls}
        assert zones_seen == {zone}

        # local calendar features: 18:00 local is 18:00 on both sides of the change
        spec = FeatureSpec(
            features=("load_scaled", "tod_sin", "tod_cos", "dow_sin", "dow_cos"),
            lookback_slots=WEEK_SLOTS,
            resolution_seconds=1800,
            calendar_time="local",
        )
        before_evening = _at_local(change, -1, "18:00", zone)
        after_evening = _at_local(change, 1, "18:00", zone)
        assert (after_evening - before_evening) // RES_MS == 96 + (expected_slots - 48)
        history = np.ones((2, WEEK_SLOTS))
        ends = np.array([before_evening, after_evening], dtype=np.int64)
        local = build_inputs(history, ends, spec, zone).values[:, -1, 1:3]
        np.testing.assert_allclose(local[0], local[1], atol=1e-6)
        np.testing.assert_allclose(local[0], [np.sin(1.5 * np.pi), np.cos(1.5 * np.pi)], atol=1e-6)
        utc_spec = dataclasses.replace(spec, calendar_time="utc")
        in_utc = build_inputs(history, ends, utc_spec, zone)
        assert not np.allclose(in_utc.values[0, -1, 1:3], in_utc.values[1, -1, 1:3], atol=1e-3)


def _at_local(day: str, days_later: int, clock: str, zone: str) -> int:
    moment = pd.Timestamp(
        f"{date.fromisoformat(day) + timedelta(days=days_later)}T{clock}", tz=zone
    )
    return int(moment.tz_convert("UTC").value // 1_000_000)

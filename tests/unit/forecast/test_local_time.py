"""Local wall-clock time: zones, day lengths, local calendar features, seasonal-naive lags."""

from __future__ import annotations

import doctest
from datetime import date

import numpy as np
import pandas as pd
import pytest

import streamer.forecast.local_time as local_time_module
from streamer.forecast.local_time import (
    UnknownTimeZoneError,
    check_zone,
    local_day_slots,
    row_zones,
    same_wall_time_earlier,
    wall_ms,
)
from streamer.forecast.seasonal_naive import seasonal_naive_week
from streamer.inference.errors import FeatureError
from streamer.inference.features import FeatureSpec, build_inputs

RES_MS = 1_800_000


def at(text: str, zone: str) -> int:
    return int(pd.Timestamp(text, tz=zone).tz_convert("UTC").value // 1_000_000)


def test_docstring_examples_run() -> None:
    assert doctest.testmod(local_time_module).failed == 0


@pytest.mark.parametrize(
    ("zone", "day", "slots"),
    [
        ("Europe/London", date(2026, 3, 29), 46),
        ("Europe/London", date(2026, 10, 25), 50),
        ("Europe/London", date(2026, 7, 1), 48),
        ("Australia/Sydney", date(2026, 4, 5), 50),
        ("Australia/Sydney", date(2026, 10, 4), 46),
        ("America/New_York", date(2026, 3, 8), 46),
        ("UTC", date(2026, 3, 29), 48),
        ("Asia/Kolkata", date(2026, 3, 29), 48),
    ],
)
def test_local_days_have_46_48_or_50_half_hours(zone: str, day: date, slots: int) -> None:
    assert local_day_slots(day, zone, 1800) == slots


def test_wall_clock_follows_the_clocks_and_utc_is_unchanged() -> None:
    winter, summer = (
        at("2026-01-15T18:00", "Europe/London"),
        at("2026-07-15T18:00", "Europe/London"),
    )
    walls = wall_ms([winter, summer], "Europe/London")
    assert [(w % 86_400_000) // 3_600_000 for w in walls.tolist()] == [18, 18]
    assert (summer % 86_400_000) // 3_600_000 == 17  # 17:00 UTC in summer time
    times = np.array([[winter, summer]])
    np.testing.assert_array_equal(wall_ms(times, "UTC"), times)


def test_a_week_earlier_is_the_same_wall_clock_time_across_a_change() -> None:
    monday = at("2026-03-30T18:00", "Europe/London")  # the day after the spring change
    earlier = int(same_wall_time_earlier([monday], 7 * 86_400_000, "Europe/London")[0])
    assert earlier == at("2026-03-23T18:00", "Europe/London")
    assert monday - earlier == 7 * 86_400_000 - 3_600_000  # 167 hours


def test_unknown_zones_are_refused_with_an_example() -> None:
    for bad in ("Mars/Base", "", " UTC", "europe/london"):
        with pytest.raises(UnknownTimeZoneError, match="IANA zone name"):
            check_zone(bad)
    with pytest.raises(UnknownTimeZoneError):
        row_zones(np.array(["UTC", "Nowhere/Town"]), 2)


def spec(calendar_time: str) -> FeatureSpec:
    return FeatureSpec(
        features=("load_scaled", "is_missing", "tod_sin", "tod_cos", "dow_sin", "dow_cos"),
        lookback_slots=48,
        resolution_seconds=1800,
        calendar_time=calendar_time,
    )


def test_local_calendar_features_read_each_rows_own_zone() -> None:
    # 18:00 local on a Monday in London (summer) and in Sydney (winter): same features
    ends = np.array(
        [at("2026-07-13T18:00", "Europe/London"), at("2026-07-13T18:00", "Australia/Sydney")]
    )
    history = np.ones((2, 48))
    zones = np.array(["Europe/London", "Australia/Sydney"])
    local = build_inputs(history, ends, spec("local"), zones).values
    np.testing.assert_allclose(local[0], local[1], atol=1e-6)
    evening = local[0, -1]
    np.testing.assert_allclose(evening[2:4], [-1.0, 0.0], atol=1e-6)  # 18:00 = 3/4 of a day
    monday_evening = 2 * np.pi * 0.75 / 7
    np.testing.assert_allclose(
        evening[4:6], [np.sin(monday_evening), np.cos(monday_evening)], atol=1e-6
    )
    # a UTC model ignores the zones: its inputs are the UTC ones, whatever the rows say
    utc = build_inputs(history, ends, spec("utc"), zones).values
    np.testing.assert_array_equal(utc, build_inputs(history, ends, spec("utc")).values)
    assert not np.allclose(utc[0], utc[1])


def test_one_zone_for_the_batch_equals_that_zone_per_row() -> None:
    ends = np.array([at("2026-10-25T00:00", "Europe/London") + k * RES_MS for k in range(5)])
    history = np.random.default_rng(0).random((5, 48))
    one = build_inputs(history, ends, spec("local"), "Europe/London").values
    per_row = build_inputs(history, ends, spec("local"), np.full(5, "Europe/London")).values
    np.testing.assert_array_equal(one, per_row)


def test_calendar_time_must_be_known() -> None:
    with pytest.raises(FeatureError, match="calendar_time"):
        spec("solar")


def test_seasonal_naive_week_copies_last_weeks_wall_clock_slot_in_any_zone() -> None:
    zone = "Europe/London"
    end = at("2026-03-30T00:00", zone)  # the day after the spring change
    length = 2 * 336
    slot_ends = end - np.arange(length - 1, -1, -1, dtype=np.int64) * RES_MS
    walls = wall_ms(slot_ends, zone)
    history = ((walls // RES_MS) % 336).astype(np.float64)[None, :]  # names its wall slot
    model = seasonal_naive_week(48, 1800)
    local = model.forecast(history, np.array([end]), 1800, zone).point_kwh[0]
    horizon_walls = wall_ms(end + np.arange(1, 49) * RES_MS, zone)
    np.testing.assert_array_equal(local, (horizon_walls // RES_MS) % 336)
    in_utc = model.forecast(history, np.array([end]), 1800).point_kwh[0]
    assert not np.array_equal(in_utc, local)  # UTC lags are an hour off after the change

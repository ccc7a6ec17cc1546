from __future__ import annotations

import numpy as np
import pytest

from streamer.simulate.errors import SimulationConfigError
from streamer.simulate.fleet import FleetModel

DAY_MS = 86_400_000
HALF_HOUR_MS = 1_800_000
# 2026-01-05 00:00 UTC, a Monday.
MONDAY_JAN_MS = 1_767_571_200_000
# 2026-06-01 00:00 UTC, a Monday.
MONDAY_JUNE_MS = 1_780_272_000_000


def _days(model: FleetModel, start_ms: int, days: int) -> np.ndarray:
    return model.slot_ends(start_ms, start_ms + days * DAY_MS)


def test_same_seed_gives_identical_fleet_and_load() -> None:
    a, b = FleetModel(300, seed=11), FleetModel(300, seed=11)
    ends = _days(a, MONDAY_JAN_MS, 2)
    np.testing.assert_array_equal(a.load_kwh(ends), b.load_kwh(ends))
    np.testing.assert_array_equal(a.meter_types, b.meter_types)
    np.testing.assert_array_equal(a.is_register, b.is_register)
    other = FleetModel(300, seed=12)
    assert not np.array_equal(a.load_kwh(ends), other.load_kwh(ends))


def test_chunked_generation_equals_one_call_in_any_order() -> None:
    model = FleetModel(120, seed=3, resolution_seconds=900)
    ends = _days(model, MONDAY_JAN_MS, 3)
    whole = model.load_kwh(ends)
    pieces = [model.load_kwh(ends[i : i + 7]) for i in range(0, ends.size, 7)]
    np.testing.assert_array_equal(np.concatenate(pieces, axis=1), whole)
    backwards = np.stack([model.load_kwh(ends[i : i + 1])[:, 0] for i in range(ends.size)][::-1])
    np.testing.assert_array_equal(backwards[::-1].T, whole)


def test_a_meter_is_the_same_in_a_larger_fleet() -> None:
    small, large = FleetModel(40, seed=5), FleetModel(400, seed=5)
    ends = _days(small, MONDAY_JUNE_MS, 1)
    np.testing.assert_array_equal(small.load_kwh(ends), large.load_kwh(ends)[:40])
    assert large.meter_ids[:40].tolist() == small.meter_ids.tolist()


def test_meter_ids_and_fleet_composition() -> None:
    model = FleetModel(5000, seed=1)
    assert model.meter_ids[0] == "m-000000"
    assert model.meter_ids[4999] == "m-004999"
    p = model.profiles
    assert 0.12 < p.is_business.mean() < 0.18
    households = ~p.is_business
    assert 0.21 < p.has_pv[households].mean() < 0.29
    assert 0.08 < model.is_register.mean() < 0.12
    assert 0.17 < model.uses_epoch_ms.mean() < 0.23
    assert set(model.meter_types.tolist()) == {"consumption", "net"}
    assert (model.meter_types == "net").tolist() == p.has_pv.tolist()
    assert not np.any(model.is_register & (model.meter_types == "net"))


def _mean_at_hours(load: np.ndarray, ends: np.ndarray, hours: range, day_mask: np.ndarray) -> float:
    hour = ((ends - HALF_HOUR_MS // 2) // 3_600_000) % 24
    cols = np.isin(hour, list(hours)) & day_mask
    return float(load[:, cols].mean())


def test_daily_and_weekly_shape_of_homes_and_businesses() -> None:
    model = FleetModel(600, seed=2)
    ends = _days(model, MONDAY_JAN_MS, 14)
    load = model.load_kwh(ends)
    p = model.profiles
    homes = load[~p.is_business & ~p.has_pv]
    shops = load[p.is_business & ~p.has_pv]
    weekday = (((ends - 1) // DAY_MS + 3) % 7) < 5
    every_day = np.ones_like(weekday)
    evening = _mean_at_hours(homes, ends, range(18, 21), every_day)
    night = _mean_at_hours(homes, ends, range(1, 5), every_day)
    assert evening > 1.5 * night
    # Homes: the morning peak is earlier on weekdays.
    assert _mean_at_hours(homes, ends, range(6, 8), weekday) > _mean_at_hours(
        homes, ends, range(6, 8), ~weekday
    )
    # Businesses: office hours on weekdays, much less at weekends and at night.
    office_weekday = _mean_at_hours(shops, ends, range(10, 16), weekday)
    assert office_weekday > 1.5 * _mean_at_hours(shops, ends, range(10, 16), ~weekday)
    assert office_weekday > 1.5 * _mean_at_hours(shops, ends, range(1, 5), weekday)


def test_winter_demand_exceeds_early_summer_demand() -> None:
    model = FleetModel(400, seed=4)
    consumers = ~model.profiles.has_pv
    winter = model.load_kwh(_days(model, MONDAY_JAN_MS, 14))[consumers].mean()
    summer = model.load_kwh(_days(model, MONDAY_JUNE_MS, 14))[consumers].mean()
    assert winter > 1.1 * summer


def test_pv_goes_negative_at_noon_on_some_days_and_consumption_never() -> None:
    model = FleetModel(300, seed=6)
    days = MONDAY_JAN_MS + DAY_MS * np.arange(365, dtype=np.int64)
    noon_ends = (days[:, None] + HALF_HOUR_MS * np.arange(23, 28)).ravel()  # 11:30-13:30
    night_ends = (days[:, None] + HALF_HOUR_MS * np.arange(1, 8)).ravel()  # 00:30-03:30
    noon, night = model.load_kwh(noon_ends), model.load_kwh(night_ends)
    net = model.meter_types == "net"
    assert net.sum() > 20
    assert noon[~net].min() >= 0.0
    assert night[~net].min() >= 0.0
    assert (noon[net] < 0).any(axis=1).mean() > 0.8, "most PV meters export around noon some days"
    assert (noon[net] < 0).mean() < 0.95, "not every noon is sunny"
    assert night[net].min() >= 0.0, "no export at night"
    everything = model.load_kwh(model.slot_ends(MONDAY_JAN_MS, MONDAY_JAN_MS + 28 * DAY_MS))
    assert everything[~net].min() >= 0.0


def test_finer_resolution_splits_the_same_energy() -> None:
    coarse, fine = FleetModel(500, seed=8), FleetModel(500, seed=8, resolution_seconds=900)
    coarse_load = coarse.load_kwh(_days(coarse, MONDAY_JAN_MS, 7))
    fine_load = fine.load_kwh(_days(fine, MONDAY_JAN_MS, 7))
    assert fine_load.shape == (500, 7 * 96)
    assert fine_load.sum() == pytest.approx(coarse_load.sum(), rel=0.05)


def test_values_are_whole_watt_hours() -> None:
    model = FleetModel(100, seed=9)
    load = model.load_kwh(_days(model, MONDAY_JUNE_MS, 1))
    np.testing.assert_array_equal(np.round(load, 3), load)
    assert np.abs(load * 1000.0 - np.rint(load * 1000.0)).max() < 1e-6
    assert np.isfinite(load).all()


def test_with_shift_scales_listed_meters_after_the_time_only() -> None:
    model = FleetModel(50, seed=10)
    ends = _days(model, MONDAY_JAN_MS, 2)
    from_ms = int(ends[40])
    shifted = model.with_shift([3, 7], 1.5, from_ms)
    base, new = model.load_kwh(ends), shifted.load_kwh(ends)
    np.testing.assert_array_equal(model.load_kwh(ends), base)  # original unchanged
    others = np.setdiff1d(np.arange(50), [3, 7])
    np.testing.assert_array_equal(new[others], base[others])
    np.testing.assert_array_equal(new[[3, 7], :40], base[[3, 7], :40])
    np.testing.assert_allclose(new[[3, 7], 40:], 1.5 * base[[3, 7], 40:], atol=0.0011)
    assert (new[[3, 7], 40:].sum(axis=1) > 1.4 * base[[3, 7], 40:].sum(axis=1)).all()
    twice = shifted.with_shift([3], 2.0, from_ms)
    np.testing.assert_allclose(twice.load_kwh(ends)[3, 40:], 3.0 * base[3, 40:], atol=0.0021)


@pytest.mark.parametrize(
    ("call", "needle"),
    [
        (lambda: FleetModel(0), "at least one meter"),
        (lambda: FleetModel(10, seed=-1), "non-negative"),
        (lambda: FleetModel(10, resolution_seconds=7), "divide 86400"),
        (lambda: FleetModel(10).load_kwh(np.array([MONDAY_JAN_MS + 1])), "slot_ends()"),
        (lambda: FleetModel(10).load_kwh(np.array([[MONDAY_JAN_MS]])), "one-dimensional"),
        (lambda: FleetModel(10).with_shift([10], 1.1, 0), "0..9"),
        (lambda: FleetModel(10).with_shift([1], -1.0, 0), "factor"),
    ],
)
def test_bad_settings_say_how_to_fix_them(call: object, needle: str) -> None:
    with pytest.raises(SimulationConfigError, match=None) as info:
        call()  # type: ignore[operator]
    assert needle in str(info.value)


def test_estimated_readings_only_from_quality_sending_meters() -> None:
    model = FleetModel(1000, seed=12)
    mask = model.estimated_mask(_days(model, MONDAY_JAN_MS, 2))
    assert not mask[~model.profiles.sends_quality].any()
    assert 0.005 < mask[model.profiles.sends_quality].mean() < 0.04

"""How the demo runs the simulator so that readings flow until it stops, and its summary line."""

from __future__ import annotations

import pytest

from streamer.cli.demo import (
    CLOCK_MARGIN_SECONDS,
    FLOW_SECONDS_UNTIL_STOPPED,
    SIMULATOR_GRACE_SECONDS,
    DemoConfigError,
    parse_metrics,
    plan_simulator,
    summary_line,
)

WALL = 1_796_000_000.0


def test_the_simulated_clock_is_still_in_the_past_when_the_demo_stops() -> None:
    plan = plan_simulator(75.0, 10_000.0, WALL)
    # the clock starts (duration + margin) * speedup back: after `duration` wall seconds it is
    # still margin * speedup seconds behind now, so the simulator never goes live
    assert plan.backfill_days * 86_400 == pytest.approx((75.0 + CLOCK_MARGIN_SECONDS) * 10_000)
    behind_at_stop = plan.backfill_days * 86_400 - 10_000.0 * plan.duration_seconds
    assert plan.duration_seconds == 75.0 + SIMULATOR_GRACE_SECONDS
    assert behind_at_stop > 0  # even the simulator's own stop comes before the present
    args = plan.simulate_args(100, 7, 10_000.0)
    assert args[:5] == ["simulate", "--meters", "100", "--seed", "7"]
    assert args[args.index("--speedup") + 1] == "10000.0"
    assert args[args.index("--meter-prefix") + 1] == plan.meter_prefix


def test_each_run_has_meters_of_its_own() -> None:
    first = plan_simulator(60.0, 1000.0, 1_767_225_600.0)  # 2026-01-01T00:00:00Z
    second = plan_simulator(60.0, 1000.0, 1_767_225_661.0)
    assert first.meter_prefix == "demo260101000000-"
    assert second.meter_prefix == "demo260101000101-"


def test_until_ctrl_c_flows_for_an_hour_and_never_stops_by_itself() -> None:
    plan = plan_simulator(0.0, 10_000.0, WALL)
    assert plan.duration_seconds == 0.0
    assert plan.flow_seconds == FLOW_SECONDS_UNTIL_STOPPED + CLOCK_MARGIN_SECONDS


def test_bad_options_are_refused() -> None:
    with pytest.raises(DemoConfigError, match="--speedup"):
        plan_simulator(10.0, 0.0, WALL)
    with pytest.raises(DemoConfigError, match="--duration-seconds"):
        plan_simulator(-1.0, 10.0, WALL)


def test_summary_line_shows_rates_between_scrapes() -> None:
    text = (
        "streamer_readings_consumed_total 100\n"
        'streamer_forecasts_total{model="x",fallback="false"} 40\n'
    )
    later = text.replace(" 100", " 300").replace(" 40", " 80")
    line = summary_line(parse_metrics(text, 10.0), parse_metrics(later, 12.0), 24.0)
    assert "readings      100/s (total 300)" in line
    assert "forecasts      20/s (total 80)" in line


def test_a_meter_prefix_changes_the_ids_not_the_load() -> None:
    import numpy as np

    from streamer.simulate.fleet import FleetModel

    plain, named = FleetModel(3, seed=7), FleetModel(3, seed=7, id_prefix="demo1-")
    assert named.meter_ids.tolist() == ["demo1-000000", "demo1-000001", "demo1-000002"]
    ends = np.array([1_767_225_600_000, 1_767_227_400_000])
    assert np.array_equal(plain.load_kwh(ends), named.load_kwh(ends))

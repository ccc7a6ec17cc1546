"""``run_backtest(groups=...)`` on a small simulated fleet: 60 meters, 3 feeders, 1 substation."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest

from streamer.evaluate import BacktestConfigError, run_backtest
from streamer.evaluate import group_backtest as group_module
from streamer.evaluate.report import BacktestReport
from streamer.forecast import ForecastBatch, make_forecaster
from streamer.forecast.local_time import UTC_ZONE, TimeZones
from streamer.groups.calibration import GroupCalibrationConfig
from streamer.groups.expected import expected_kwh
from streamer.groups.membership import GroupRef, members_of
from streamer.simulate.fleet import FleetModel
from streamer.simulate.hierarchy import feeder_hierarchy
from streamer.simulate.history import generate_history

RES = 1800
DAY = 48
END_MS = 1_790_000_000_000 // (DAY * RES * 1000) * (DAY * RES * 1000)  # a UTC midnight
F64 = npt.NDArray[np.float64]


class Skewed:
    """A right-skewed forecaster: yesterday's load as p50, p10 at half and p90 at 2.5 times it
    (so its expected value, 1.15 times the p50, is not its median); meter ``invalid_row`` is
    never forecast."""

    name = "skewed"
    version = "1"
    horizon_slots = DAY
    quantile_levels = (0.1, 0.5, 0.9)
    min_history_slots = 1

    def __init__(self, invalid_row: int) -> None:
        self.invalid_row = invalid_row
        self.batches: list[ForecastBatch] = []

    def forecast(
        self,
        history_kwh: F64,
        end_ms: npt.NDArray[np.int64],
        resolution_seconds: int,
        time_zone: TimeZones = UTC_ZONE,
    ) -> ForecastBatch:
        base = np.nan_to_num(np.abs(history_kwh[:, -DAY:]))
        quantiles = np.stack([0.5 * base, base, 2.5 * base], axis=2)
        valid = np.ones(base.shape[0], dtype=np.bool_)
        valid[self.invalid_row] = False
        batch = ForecastBatch.from_rows(base, quantiles, self.quantile_levels, valid)
        self.batches.append(batch)
        return batch


@pytest.fixture(scope="module")
def fleet() -> tuple[pd.DataFrame, dict[GroupRef, tuple[str, ...]]]:
    model = FleetModel(60, seed=7, resolution_seconds=RES)
    history = generate_history(model, END_MS - 24 * 86_400_000, END_MS)
    tree = feeder_hierarchy(model.meter_ids.tolist(), seed=7, feeders=3, substations=1)
    return history, members_of(tree)


def _run(history: pd.DataFrame, forecasters: list[Any], **kwargs: Any) -> BacktestReport:
    return run_backtest(
        history,
        forecasters,
        resolution_seconds=RES,
        lookback_slots=7 * DAY,
        horizon_slots=DAY,
        holdout_slots=10 * DAY,
        origin_step_slots=12,
        day_ahead_zone="UTC",
        **kwargs,
    )


def test_group_centre_is_the_sum_of_member_expected_values_not_p50s(
    fleet: tuple[pd.DataFrame, dict[GroupRef, tuple[str, ...]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    history, groups = fleet
    published: list[F64] = []
    publish: Callable[..., Any] = group_module.GroupCalibrationReplay.publish

    def spy(self: group_module.GroupCalibrationReplay, origin: int, forecast: F64) -> Any:
        published.append(forecast.copy())
        return publish(self, origin, forecast)

    monkeypatch.setattr(group_module.GroupCalibrationReplay, "publish", spy)
    skewed = Skewed(invalid_row=5)
    # min_pairs = window: nothing is ever calibrated, so the centre is the raw sum
    config = GroupCalibrationConfig(window=4096, min_pairs=4096)
    report = _run(history, [skewed], groups=groups, group_calibration=config)
    assert report.origins == 10 and report.group_warmup_origins == 7
    refs = sorted(groups)  # feeders 0..2, then the substation
    ids = sorted(history["meter_id"].unique())
    filled_feeder = next(g for g, ref in enumerate(refs) if ids[5] in groups[ref])
    for batch, forecast in zip(skewed.batches, published, strict=True):
        member_expected = expected_kwh(batch.quantiles_kwh, skewed.quantile_levels)
        p50 = batch.quantiles_kwh[:, :, 1]
        fills = []
        for g, ref in enumerate(refs):
            rows = [ids.index(m) for m in groups[ref] if m != ids[5]]
            if g in (filled_feeder, 3):  # the unforecast member adds its naive point
                fills.append(forecast[g] - member_expected[rows].sum(axis=0))
            else:
                np.testing.assert_allclose(forecast[g], member_expected[rows].sum(axis=0))
                assert not np.allclose(forecast[g], p50[rows].sum(axis=0))
        np.testing.assert_allclose(fills[0], fills[1], atol=1e-9)
        assert np.abs(fills[0]).sum() > 0
    feeder, station = report.groups
    assert (feeder.kind, feeder.groups, feeder.members) == ("feeder", 3, 60)
    assert (station.kind, station.groups, station.members) == ("substation", 1, 60)
    assert feeder.origins == station.origins == 3
    assert feeder.pairs == 3 * 3 * DAY and station.pairs == 3 * DAY
    assert feeder.calibrated_share == 0.0
    # the uncalibrated centre is the sum of expected values: 15% above the sum of p50s here
    assert feeder.bias_percent == pytest.approx(feeder.expected_bias_percent)
    assert feeder.expected_bias_percent > feeder.p50_bias_percent + 10
    # one member was never forecast: filled at each scored origin, in its feeder and substation
    assert feeder.filled_members == 3 and station.filled_members == 3
    assert feeder.incomplete_slots == 0 and report.group_meters_missing == 0


def test_group_scores_missing_members_and_incomplete_slots(
    fleet: tuple[pd.DataFrame, dict[GroupRef, tuple[str, ...]]],
) -> None:
    history, _ = fleet
    ids = sorted(history["meter_id"].unique())
    last_day = history["ts"] >= pd.Timestamp(END_MS - 86_400_000, unit="ms", tz="UTC")
    gap = history[~((history["meter_id"] == ids[0]) & last_day & (history.index % 2 == 0))]
    portfolio: dict[str, list[str]] = {
        "portfolio-a": [ids[0], ids[1], "no-such-meter"],
        "portfolio-b": ["absent-1", "absent-2"],  # no member in the history: dropped
    }
    naive = make_forecaster("seasonal_naive_week", horizon_slots=DAY, resolution_seconds=RES)
    report = _run(gap, [naive], groups=portfolio)
    (only,) = report.groups
    assert (only.kind, only.groups, only.members) == ("group", 1, 2)
    assert report.group_meters_missing == 3
    assert only.incomplete_slots == DAY // 2  # meter 0 lost every other slot of the last day
    assert only.pairs == 3 * DAY - DAY // 2
    assert only.mae_ratio == pytest.approx(1.0, abs=0.25)
    assert only.meter_mae_ratio == pytest.approx(1.0)  # the model is seasonal naive 7d
    with pytest.raises(BacktestConfigError, match="no group has a member"):
        _run(gap, [naive], groups={"x": ["absent"]})


def test_report_tables_and_unchanged_per_meter_results(
    fleet: tuple[pd.DataFrame, dict[GroupRef, tuple[str, ...]]],
) -> None:
    history, groups = fleet

    def forecasters() -> list[Any]:
        return [
            make_forecaster("seasonal_naive_week", horizon_slots=DAY, resolution_seconds=RES),
            make_forecaster("seasonal_naive_day", horizon_slots=DAY, resolution_seconds=RES),
        ]

    def untimed(report: BacktestReport) -> BacktestReport:
        return replace(report, models=tuple(replace(m, forecast_seconds=0) for m in report.models))

    plain = untimed(_run(history, forecasters()))
    with_groups = untimed(_run(history, forecasters(), groups=groups))
    assert with_groups.models == plain.models
    assert "groups" not in plain.to_json() and "### Groups" not in plain.to_markdown()
    assert [(g.model, g.kind) for g in with_groups.groups] == [
        ("seasonal_naive_week", "feeder"),
        ("seasonal_naive_week", "substation"),
        ("seasonal_naive_day", "feeder"),
        ("seasonal_naive_day", "substation"),
    ]
    for g in with_groups.groups:
        assert 0.0 <= g.coverage <= 1.0 and g.nominal_coverage == pytest.approx(0.8)
        assert g.mae_kwh > 0 and np.isfinite(g.mae_ratio) and g.calibrated_share > 0.9
    markdown = with_groups.to_markdown()
    assert markdown.startswith(plain.to_markdown().rstrip("\n"))
    assert "### Groups" in markdown and "warm-up of 7 origins" in markdown
    for kind in ("feeder", "substation"):
        assert f"#### {kind}" in markdown
    assert "| model | groups | members | MAE kWh | mean total kWh | bias % | coverage |" in markdown
    assert "| seasonal_naive_week | 3 | 60 |" in markdown
    body = json.loads(json.dumps(with_groups.to_json()))
    assert body["groups"]["warmup_origins"] == 7
    first = body["groups"]["results"][0]
    assert first["model"] == "seasonal_naive_week" and first["kind"] == "feeder"
    assert {"mae_kwh", "bias_percent", "coverage", "mae_ratio", "meter_mae_ratio"} <= set(first)

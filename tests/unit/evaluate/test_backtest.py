"""Rolling-origin backtest on small synthetic histories."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from streamer.evaluate import BacktestConfigError, HistoryFileError, run_backtest
from streamer.evaluate.grid import build_grid
from streamer.forecast import ForecastBatch, make_forecaster

RES = 3600
DAY = 24
WEEK = 7 * DAY
START = pd.Timestamp("2024-03-04T01:00:00Z")  # a Monday; ts = end of the first hour


def _frame(values: np.ndarray, meter_ids: list[str]) -> pd.DataFrame:
    slots = values.shape[1]
    ts = pd.date_range(START, periods=slots, freq="h")
    parts = [
        pd.DataFrame({"meter_id": mid, "ts": ts, "kwh": values[i]})
        for i, mid in enumerate(meter_ids)
    ]
    return pd.concat(parts, ignore_index=True)


def _weekly(meters: int, weeks: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    week = rng.uniform(0.1, 2.0, (meters, WEEK))
    return np.tile(week, (1, weeks))


def _naive(spec: str, horizon: int = DAY):  # type: ignore[no-untyped-def]
    return make_forecaster(spec, horizon_slots=horizon, resolution_seconds=RES)


def test_weekly_naive_is_perfect_on_a_weekly_periodic_history() -> None:
    values = _weekly(3, 5)
    values[1, -30:-20] = np.nan  # missing actuals are skipped
    history = _frame(values, ["b", "a", "c"])
    history = history[~((history["meter_id"] == "c") & (history.index % 7 == 0))]  # absent rows
    calls: list[tuple[int, int]] = []
    report = run_backtest(
        history,
        [_naive("seasonal_naive_week"), _naive("seasonal_naive_day")],
        resolution_seconds=RES,
        lookback_slots=2 * WEEK,
        horizon_slots=DAY,
        holdout_slots=WEEK,
        origin_step_slots=12,
        max_meters=None,
        progress=lambda done, total: calls.append((done, total)),
    )
    origins = (WEEK - DAY) // 12 + 1
    assert report.origins == origins and report.meters == 3
    assert calls[-1] == (2 * origins, 2 * origins) and len(calls) == 2 * origins
    weekly = report.model("seasonal_naive_week")
    assert weekly.overall.mae_kwh == 0.0 and weekly.overall.rmse_kwh == 0.0
    assert weekly.overall.coverage == 1.0
    assert weekly.overall.n_pairs < 3 * origins * DAY  # the NaN actuals were left out
    assert weekly.rows_invalid == 0 and weekly.rows_forecast == 3 * origins
    daily = report.model("seasonal_naive_day")
    assert daily.overall.mae_kwh > 0.1
    assert [b.label for b, _ in weekly.by_bucket] == ["1-4", "5-12", "13-24"]
    assert all(m.mae_kwh == 0.0 for _, m in weekly.by_bucket)
    # a weekly periodic in-sample part has a zero MASE scale: undefined, not infinite
    assert np.isnan(weekly.overall.mase)


def test_mase_uses_the_weekly_in_sample_scale() -> None:
    rng = np.random.default_rng(1)
    values = _weekly(2, 4, seed=2) + rng.normal(0, 0.1, (2, 4 * WEEK))
    report = run_backtest(
        _frame(values, ["m1", "m2"]),
        [_naive("seasonal_naive_week")],
        resolution_seconds=RES,
        lookback_slots=WEEK,
        horizon_slots=DAY,
        holdout_slots=WEEK,
        origin_step_slots=DAY,
        max_meters=None,
        progress=None,
    )
    insample = values[:, : 3 * WEEK]
    scale = np.abs(insample[:, WEEK:] - insample[:, :-WEEK]).mean(axis=1)
    errors = []
    for origin in range(3 * WEEK, 4 * WEEK - DAY + 1, DAY):
        forecast = values[:, origin - WEEK : origin - WEEK + DAY]
        errors.append(np.abs(values[:, origin : origin + DAY] - forecast) / scale[:, None])
    assert report.model("seasonal_naive_week").overall.mase == pytest.approx(np.mean(errors))


class _LastValuePlusStep:
    """A stub that proves the window alignment: history[-1] + h is right for a ramp."""

    name = "ramp"
    version = "test"
    horizon_slots = 6
    quantile_levels = (0.5,)
    min_history_slots = 1

    def __init__(self) -> None:
        self.end_ms: list[int] = []

    def forecast(self, history_kwh, end_ms, resolution_seconds, time_zone="UTC"):  # type: ignore[no-untyped-def]
        self.end_ms.append(int(end_ms[0]))
        assert resolution_seconds == RES
        point = history_kwh[:, -1:] + np.arange(1, 7)
        return ForecastBatch.from_rows(
            point, point[..., None], self.quantile_levels, np.isfinite(point).all(axis=1)
        )


def test_windows_end_right_before_the_origin() -> None:
    ramp = np.arange(100.0)[None, :] + np.array([[0.0], [1000.0]])
    stub = _LastValuePlusStep()
    report = run_backtest(
        _frame(ramp, ["x", "y"]),
        [stub],
        resolution_seconds=RES,
        lookback_slots=200,  # longer than the history: NaN-padded on the left
        horizon_slots=6,
        holdout_slots=20,
        origin_step_slots=5,
        max_meters=1,
        progress=None,
    )
    assert report.meters == 1 and report.origins == 3
    assert report.model("ramp").overall.mae_kwh == 0.0
    first_end = int(START.timestamp() * 1000)
    assert stub.end_ms == [first_end + (80 + 5 * k - 1) * RES * 1000 for k in range(3)]
    assert report.first_origin_ms == stub.end_ms[0]


def test_report_serialises() -> None:
    values = _weekly(2, 3) + np.random.default_rng(3).normal(0, 0.05, (2, 3 * WEEK))
    report = run_backtest(
        _frame(values, ["m1", "m2"]),
        [_naive("seasonal_naive_day", 6), _naive("ets", 6), _naive("sarima", 6)],
        resolution_seconds=RES,
        lookback_slots=WEEK,
        horizon_slots=6,
        holdout_slots=DAY,
        origin_step_slots=DAY - 6,
        max_meters=None,
        progress=None,
    )
    data = report.to_json()
    text = json.dumps(data, allow_nan=False)
    assert json.loads(text)["origins"] == 2
    ets = next(m for m in data["models"] if m["name"] == "ets")  # type: ignore[union-attr]
    assert ets["fit_stats"]["rows_fitted"] == 4  # type: ignore[index]
    assert data["first_origin"] == "2024-03-24T00:00:00Z"  # end of slot 479 = 01:00 + 479 h
    md = report.to_markdown()
    assert "| model | MAE kWh | RMSE kWh |" in md
    assert "### MAE kWh by horizon (slots)" in md and "| model | 1-4 | 5-6 |" in md
    for name in ("seasonal_naive_day", "ets", "sarima"):
        assert f"| {name} | " in md
    assert all(np.isfinite(m.overall.mase) for m in report.models)
    assert report.model("ets").overall.mae_kwh < report.model("seasonal_naive_day").overall.mae_kwh


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"holdout_slots": 10}, "at least horizon_slots"),
        ({"holdout_slots": 3 * WEEK}, "spans"),
        ({"origin_step_slots": 0}, "positive"),
        ({"horizon_slots": 12}, "forecasts 24 slots"),
        ({"lookback_slots": 10}, "refused the backtest window"),
    ],
)
def test_bad_settings_are_refused(kwargs: dict[str, int], match: str) -> None:
    settings = {
        "resolution_seconds": RES,
        "lookback_slots": WEEK,
        "horizon_slots": DAY,
        "holdout_slots": WEEK,
        "origin_step_slots": DAY,
        "max_meters": None,
        "progress": None,
    }
    settings.update(kwargs)
    with pytest.raises(BacktestConfigError, match=match):
        run_backtest(_frame(_weekly(1, 3), ["m"]), [_naive("seasonal_naive_day")], **settings)


def test_no_forecasters_or_duplicate_names_are_refused() -> None:
    history = _frame(_weekly(1, 3), ["m"])
    common = {
        "resolution_seconds": RES,
        "lookback_slots": WEEK,
        "horizon_slots": DAY,
        "holdout_slots": WEEK,
        "origin_step_slots": DAY,
    }
    with pytest.raises(BacktestConfigError, match="at least one"):
        run_backtest(history, [], **common)  # type: ignore[arg-type]
    with pytest.raises(BacktestConfigError, match="unique"):
        run_backtest(history, [_naive("ets"), _naive("ets")], **common)  # type: ignore[arg-type]


def test_grid_rounds_to_interval_ends_and_adds_finer_readings() -> None:
    history = pd.DataFrame(
        {
            "meter_id": ["a", "a", "a", "a", "b", "b"],
            "ts": pd.to_datetime(
                [
                    "2024-01-01T00:30:00Z",  # first half of the hour ending 01:00
                    "2024-01-01T01:00:00Z",  # second half
                    "2024-01-01T03:00:00Z",
                    "2024-01-01T03:00:00Z",  # exact duplicate: last one wins
                    "2024-01-01T02:00:00+01:00",  # 01:00 UTC
                    "2024-01-01T02:00:00Z",
                ],
                utc=True,
            ),
            "kwh": [0.25, 0.5, 1.0, 2.0, 7.0, np.nan],
        }
    )
    grid = build_grid(history, 3600)
    assert grid.meter_ids == ("a", "b")
    assert grid.first_end_ms == int(pd.Timestamp("2024-01-01T01:00:00Z").timestamp() * 1000)
    np.testing.assert_array_equal(grid.kwh[0], [0.75, np.nan, 2.0])
    np.testing.assert_array_equal(grid.kwh[1], [7.0, np.nan, np.nan])
    assert build_grid(history, 3600, max_meters=1).meter_ids == ("a",)


def test_grid_refuses_naive_timestamps_and_missing_columns() -> None:
    naive = pd.DataFrame({"meter_id": ["a"], "ts": [pd.Timestamp("2024-01-01")], "kwh": [1.0]})
    with pytest.raises(HistoryFileError, match="utc=True"):
        build_grid(naive, 3600)
    with pytest.raises(HistoryFileError, match=r"available columns are \['meter', 'ts', 'kwh'\]"):
        build_grid(naive.rename(columns={"meter_id": "meter"}), 3600)


class _OverConfident:
    """A forecaster whose p10..p90 band is far too narrow: the true median, +-0.05."""

    name = "narrow"
    version = "1"
    quantile_levels = (0.1, 0.5, 0.9)
    min_history_slots = 1

    def __init__(self, horizon: int) -> None:
        self.horizon_slots = horizon

    def forecast(self, history, end_ms, resolution_seconds, time_zone="UTC"):  # type: ignore[no-untyped-def]
        rows = history.shape[0]
        point = np.full((rows, self.horizon_slots), 1.0)
        quantiles = np.stack([point - 0.05, point, point + 0.05], axis=-1)
        return ForecastBatch(point, quantiles, self.quantile_levels, np.ones(rows, dtype=bool))


def test_calibration_replay_brings_an_over_confident_band_to_its_coverage() -> None:
    """Actuals 1 + N(0, 0.5): the model's +-0.05 band holds about 8%; replaying the worker's
    calibration over four weeks of hourly origins lifts it to 70-90% overall (the first
    origins, before anything was learnt, included) and the report shows both."""
    from streamer.accuracy.interval_calibration import CalibrationConfig

    rng = np.random.default_rng(4)
    values = 1.0 + 0.5 * rng.standard_normal((20, 6 * WEEK))
    report = run_backtest(
        _frame(values, [f"m{i}" for i in range(20)]),
        [_OverConfident(DAY)],  # type: ignore[list-item]
        resolution_seconds=RES,
        lookback_slots=DAY,
        horizon_slots=DAY,
        holdout_slots=4 * WEEK,
        origin_step_slots=1,
        calibration=CalibrationConfig(horizons=(1, 4, 12, 24)),
    )
    raw, calibrated = report.models
    assert (raw.name, calibrated.name) == ("narrow", "narrow (calibrated)")
    assert raw.overall.coverage < 0.15
    assert 0.7 <= calibrated.overall.coverage <= 0.9, calibrated.overall.coverage
    assert calibrated.overall.mae_kwh == raw.overall.mae_kwh  # the point never moves


class _Recorder:
    """A stub: forecasts the last value, with a +-1 band; records each origin's start."""

    quantile_levels = (0.1, 0.5, 0.9)
    min_history_slots = 1

    def __init__(self, horizon: int, name: str = "rec", version: str = "1") -> None:
        self.horizon_slots = horizon
        self.name = name
        self.version = version
        self.end_ms: list[int] = []

    def forecast(self, history, end_ms, resolution_seconds, time_zone="UTC"):  # type: ignore[no-untyped-def]
        self.end_ms.append(int(end_ms[0]))
        last = np.nan_to_num(history[:, -1:], nan=0.0)
        point = np.repeat(last, self.horizon_slots, axis=1)
        quantiles = np.stack([point - 1.0, point, point + 1.0], axis=-1)
        return ForecastBatch(point, quantiles, self.quantile_levels, np.ones(len(point), bool))


def test_several_versions_of_one_model_are_reported_as_name_version() -> None:
    seen: list[str] = []
    report = run_backtest(
        _frame(_weekly(2, 3), ["m1", "m2"]),
        [_Recorder(DAY, "lstm", "1"), _Recorder(DAY, "lstm", "4"), _naive("seasonal_naive_week")],
        resolution_seconds=RES,
        lookback_slots=WEEK,
        horizon_slots=DAY,
        holdout_slots=WEEK,
        origin_step_slots=DAY,
        on_model=seen.append,
    )  # type: ignore[arg-type]
    assert [m.name for m in report.models] == ["lstm:1", "lstm:4", "seasonal_naive_week"]
    assert report.model("lstm:4").version == "4"
    assert seen[:3] == ["lstm:1", "lstm:4", "seasonal_naive_week"]
    assert len(seen) == 3 * report.origins
    assert "| lstm:1 | " in report.to_markdown()


def test_backtest_report_has_nrmse_crps_and_per_meter_means() -> None:
    values = _weekly(2, 3) + np.random.default_rng(5).normal(0, 0.05, (2, 3 * WEEK))
    values[1] *= 10.0  # a big meter dominates the pooled metrics
    values[0, 2 * WEEK : 2 * WEEK + 3 * DAY] = np.nan  # the small one has fewer pairs
    report = run_backtest(
        _frame(values, ["small", "big"]),
        [_Recorder(DAY)],  # type: ignore[list-item]
        resolution_seconds=RES,
        lookback_slots=WEEK,
        horizon_slots=DAY,
        holdout_slots=WEEK,
        origin_step_slots=DAY,
    )
    m = report.model("rec").overall
    assert m.crps_kwh == pytest.approx(2 * m.pinball_kwh)
    assert m.nrmse == pytest.approx(m.rmse_kwh / np.nanmean(values[:, 2 * WEEK :]), rel=0.05)
    assert m.meters_scored == 2
    assert m.mae_kwh_per_meter < 0.9 * m.mae_kwh  # the small meter counts as much as the big
    assert m.nrmse_per_meter != pytest.approx(m.nrmse)
    data = report.to_json()
    overall = data["models"][0]["overall"]  # type: ignore[index]
    assert set(overall["per_meter_mean"]) == {"meters", "mae_kwh", "nrmse", "mase", "coverage"}
    assert overall["crps_kwh"] is not None and overall["nrmse"] is not None
    md = report.to_markdown()
    assert "NRMSE = RMSE / mean actual" in md and "CRPS kWh" in md
    assert "### Per-meter mean" in md


def test_holdout_per_meter_follows_each_meters_own_end() -> None:
    """Meter b stops 3 days before meter a: per meter, each gets its own last week scored."""
    values = _weekly(2, 4, seed=6) + np.random.default_rng(6).normal(0, 0.1, (2, 4 * WEEK))
    values[1, -3 * DAY :] = np.nan
    history = _frame(values, ["a", "b"]).dropna()
    common = {
        "resolution_seconds": RES,
        "lookback_slots": WEEK,
        "horizon_slots": DAY,
        "holdout_slots": WEEK,
        "origin_step_slots": DAY,
    }
    pooled = run_backtest(history, [_naive("seasonal_naive_week")], **common)  # type: ignore[arg-type]
    own = run_backtest(
        history,
        [_naive("seasonal_naive_week")],
        holdout_per_meter=True,
        **common,  # type: ignore[arg-type]
    )
    # pooled: 7 origins; meter b has actuals for 4 of them
    assert pooled.origins == 7
    assert pooled.model("seasonal_naive_week").overall.n_pairs == (7 + 4) * DAY
    # per meter: origins from b's holdout start (10 days before the end) on; 7 days each
    assert own.origins == 10 and own.holdout_per_meter
    got = own.model("seasonal_naive_week")
    assert got.overall.n_pairs == 2 * 7 * DAY
    assert got.rows_forecast == 2 * 7
    assert own.first_origin_ms == pooled.first_origin_ms - 3 * DAY * RES * 1000
    # each meter's MASE scale ends at its own holdout: meter b's error over its own week
    T = 4 * WEEK
    b_end = T - 3 * DAY
    insample = values[1, : b_end - WEEK]
    scale = np.abs(insample[WEEK:] - insample[:-WEEK]).mean()
    errs = [
        np.abs(values[1, o : o + DAY] - values[1, o - WEEK : o - WEEK + DAY]) / scale
        for o in range(b_end - WEEK, b_end - DAY + 1, DAY)
    ]
    assert got.overall.mase_per_meter == pytest.approx(
        np.mean(
            [
                np.mean(errs),
                np.mean(
                    [
                        np.abs(values[0, o : o + DAY] - values[0, o - WEEK : o - WEEK + DAY])
                        / np.abs(values[0, WEEK : T - WEEK] - values[0, : T - 2 * WEEK]).mean()
                        for o in range(T - WEEK, T - DAY + 1, DAY)
                    ]
                ),
            ]
        )
    )
    assert "each meter's own last" in own.to_markdown()


def test_day_ahead_origins_fall_at_local_midnight_across_a_dst_change() -> None:
    """Sydney leaves daylight saving on 2024-04-07 (03:00 AEDT -> 02:00 AEST): local midnight
    moves from 13:00 to 14:00 UTC and that local day has 25 hours."""
    res = 1800
    day = 48
    ts = pd.date_range("2024-03-10T00:30:00Z", "2024-04-14T00:00:00Z", freq="30min")
    rng = np.random.default_rng(7)
    history = pd.DataFrame({"meter_id": "m", "ts": ts, "kwh": rng.uniform(0, 1, len(ts))})
    stub = _Recorder(day)
    report = run_backtest(
        history,
        [stub],  # type: ignore[list-item]
        resolution_seconds=res,
        lookback_slots=day,
        horizon_slots=day,
        holdout_slots=10 * day,
        origin_step_slots=5,  # not used by the day-ahead protocol
        day_ahead_zone="Australia/Sydney",
    )
    starts = pd.to_datetime(stub.end_ms, unit="ms", utc=True)
    local = starts.tz_convert("Australia/Sydney")
    assert all((t.hour, t.minute) == (0, 0) for t in local)
    assert list(local.day) == list(range(5, 14))  # one origin per local day, 5-13 April
    assert {t.hour for t in starts} == {13, 14}  # AEDT then AEST
    gaps = np.diff(np.asarray(stub.end_ms)) / 3_600_000
    assert sorted(set(gaps)) == [24.0, 25.0]
    assert report.origins == 9 and report.horizon_slots == day
    assert report.day_ahead_zone == "Australia/Sydney"
    assert "origins at local midnight (Australia/Sydney)" in report.to_markdown()


def test_day_ahead_refuses_short_horizons_and_unknown_zones() -> None:
    history = _frame(_weekly(1, 3), ["m"])
    common = {
        "resolution_seconds": RES,
        "lookback_slots": WEEK,
        "holdout_slots": WEEK,
        "origin_step_slots": DAY,
    }
    with pytest.raises(BacktestConfigError, match="a day"):
        run_backtest(
            history,
            [_naive("seasonal_naive_day", 6)],
            horizon_slots=6,
            day_ahead_zone="UTC",
            **common,  # type: ignore[arg-type]
        )
    with pytest.raises(BacktestConfigError, match="IANA"):
        run_backtest(
            history,
            [_naive("seasonal_naive_day")],
            horizon_slots=DAY,
            day_ahead_zone="Mars/Olympus",
            **common,  # type: ignore[arg-type]
        )

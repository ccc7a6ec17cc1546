"""backtest --plot: one PNG per chosen meter, one forecast shown per slot, the local day kept."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from streamer.evaluate import run_backtest
from streamer.evaluate.forecast_plot import ForecastPlots
from streamer.forecast import make_forecaster
from streamer.simulate.fleet import FleetModel
from streamer.simulate.history import generate_history

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def history(zone: str) -> pd.DataFrame:
    end = int(pd.Timestamp("2026-10-10T00:00:00Z").value // 1_000_000)
    fleet = FleetModel(3, seed=5, resolution_seconds=1800, time_zone=zone)
    return generate_history(fleet, end - 21 * 86_400_000, end)


def test_plots_show_each_slot_once_and_write_a_png_per_meter(tmp_path: Path) -> None:
    zone = "Australia/Sydney"  # 2026-10-04 has 46 half-hours
    models = [
        make_forecaster(spec, horizon_slots=48, resolution_seconds=1800)
        for spec in ("seasonal_naive_week", "seasonal_naive_day")
    ]
    plots = ForecastPlots(["m-000001", "m-000002", "m-999999"])
    report = run_backtest(
        history(zone),
        models,
        resolution_seconds=1800,
        lookback_slots=336,
        horizon_slots=48,
        holdout_slots=7 * 48,
        origin_step_slots=12,
        day_ahead_zone=zone,
        time_zone=zone,
        on_forecast=plots,
    )
    assert plots.missing == ("m-999999",)
    assert plots.meters == ("m-000001", "m-000002")
    series = plots._series[("m-000001", "seasonal_naive_week")]
    assert len(series.end_ms) == report.origins
    shown = np.concatenate(series.end_ms)
    assert np.unique(shown).size == shown.size  # no slot drawn twice
    assert sorted(len(e) for e in series.end_ms) == [46] + [48] * (report.origins - 1)
    written = plots.write(tmp_path / "plots", time_zone=zone)
    assert [p.name for p in written] == ["m-000001.png", "m-000002.png"]
    for path in written:
        assert path.read_bytes()[:8] == PNG_SIGNATURE
        assert path.stat().st_size > 10_000


def test_a_count_picks_the_first_meters() -> None:
    plots = ForecastPlots(2)
    model = make_forecaster("seasonal_naive_day", horizon_slots=48, resolution_seconds=1800)
    run_backtest(
        history("UTC"),
        [model],
        resolution_seconds=1800,
        lookback_slots=336,
        horizon_slots=48,
        holdout_slots=96,
        origin_step_slots=12,
        on_forecast=plots,
    )
    assert plots.meters == ("m-000000", "m-000001")
    series = plots._series[("m-000000", "seasonal_naive_day")]
    assert len(series.end_ms) == 2  # origins every 12 slots, one shown per 48

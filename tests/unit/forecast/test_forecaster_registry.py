"""Specs to forecasters."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from streamer.forecast import (
    EtsForecaster,
    Forecaster,
    ForecasterSpecError,
    SarimaForecaster,
    SeasonalNaive,
    available_specs,
    make_forecaster,
    register_forecaster,
)
from streamer.forecast.registry import ForecasterFactory, builtin_factories


@pytest.mark.parametrize(
    ("spec", "cls", "name", "season"),
    [
        ("seasonal_naive", SeasonalNaive, "seasonal_naive_week", 7 * 48),
        ("seasonal_naive_week", SeasonalNaive, "seasonal_naive_week", 7 * 48),
        ("seasonal_naive_day", SeasonalNaive, "seasonal_naive_day", 48),
        ("ets", EtsForecaster, "ets", 48),
        (" sarima ", SarimaForecaster, "sarima", 48),
    ],
)
def test_builtin_specs(spec: str, cls: type, name: str, season: int) -> None:
    f = make_forecaster(spec, horizon_slots=12, resolution_seconds=1800)
    assert isinstance(f, cls) and isinstance(f, Forecaster)
    assert f.name == name and f.version == "1" and f.horizon_slots == 12
    assert f.season_slots == season  # type: ignore[attr-defined]


def test_unknown_spec_lists_the_available_ones() -> None:
    with pytest.raises(ForecasterSpecError) as err:
        make_forecaster("prophet", horizon_slots=4, resolution_seconds=1800)
    message = str(err.value)
    assert "prophet" in message and "STREAMER_FORECASTER" in message
    for name in ("ets", "sarima", "seasonal_naive", "seasonal_naive_day", "seasonal_naive_week"):
        assert name in message


def test_builtins_take_no_argument() -> None:
    with pytest.raises(ForecasterSpecError, match="takes no ':argument'"):
        make_forecaster("ets:2", horizon_slots=4, resolution_seconds=1800)


@pytest.mark.parametrize(
    ("horizon", "resolution", "match"), [(0, 1800, "horizon_slots"), (4, 7, "divide 86400")]
)
def test_bad_grid_is_refused(horizon: int, resolution: int, match: str) -> None:
    with pytest.raises(ForecasterSpecError, match=match):
        make_forecaster("ets", horizon_slots=horizon, resolution_seconds=resolution)


def test_hook_for_more_models() -> None:
    factories = builtin_factories()
    seen: list[tuple[str | None, int, int]] = []

    def lstm(argument: str | None, horizon: int, resolution: int) -> Forecaster:
        seen.append((argument, horizon, resolution))
        return SeasonalNaive(4, horizon, name=f"lstm_{argument}")

    factory: ForecasterFactory = lstm
    register_forecaster("lstm", factory, factories=factories)
    f = make_forecaster("lstm:3", horizon_slots=5, resolution_seconds=900, factories=factories)
    assert f.name == "lstm_3" and seen == [("3", 5, 900)]
    assert "lstm" in available_specs(factories)
    assert "lstm" not in available_specs(builtin_factories())  # the built-ins are untouched
    with pytest.raises(ForecasterSpecError, match="already registered"):
        register_forecaster("lstm", factory, factories=factories)
    register_forecaster("lstm", factory, factories=factories, replace=True)
    with pytest.raises(ForecasterSpecError, match="without ':'"):
        register_forecaster("a:b", factory, factories=factories)


def test_importing_forecast_does_not_load_statsmodels() -> None:
    """The worker with a seasonal-naive forecaster must start fast."""
    code = (
        "import sys, streamer.forecast as f; "
        "f.make_forecaster('ets', horizon_slots=2, resolution_seconds=3600); "
        "sys.exit('statsmodels' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_made_forecasters_forecast() -> None:
    hist = np.tile(np.arange(48.0), 8)[None, :]
    f = make_forecaster("seasonal_naive_day", horizon_slots=3, resolution_seconds=1800)
    batch = f.forecast(hist, np.array([0], dtype=np.int64), 1800)
    np.testing.assert_array_equal(batch.point_kwh, [[0.0, 1.0, 2.0]])


def test_there_is_no_process_wide_registry_to_mutate() -> None:
    """A worker's core registers lstm in a registry of its own, passed to every build."""
    import streamer.forecast.registry as registry

    assert not any(isinstance(v, dict) for k, v in vars(registry).items() if k.isupper())
    with pytest.raises(ForecasterSpecError, match="unknown forecaster 'lstm'"):
        make_forecaster("lstm", horizon_slots=4, resolution_seconds=1800)  # baselines only

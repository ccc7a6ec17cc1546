"""standardized_residual and the calibration command."""

from __future__ import annotations

import math

import numpy as np
import pytest

from streamer.drift import standardized_residual
from streamer.drift.calibration import main, shifted_stream, stable_streams
from streamer.drift.residual import P10_P90_WIDTH_SD


def test_residual_of_a_calibrated_normal_forecast_is_standard_normal() -> None:
    rng = np.random.default_rng(0)
    mean, sd = 2.0, 0.3
    p10, p90 = mean - 1.2815515655446004 * sd, mean + 1.2815515655446004 * sd
    z = [standardized_residual(a, p10, mean, p90) for a in rng.normal(mean, sd, 20_000)]
    assert float(np.mean(z)) == pytest.approx(0.0, abs=0.03)
    assert float(np.std(z)) == pytest.approx(1.0, abs=0.03)
    width = P10_P90_WIDTH_SD
    assert width == pytest.approx(2 * 1.2815515655446004, rel=1e-12)


def test_residual_is_clipped_floored_and_nan_safe() -> None:
    assert standardized_residual(-100.0, 0.5, 1.0, 1.5) == -5.0
    assert standardized_residual(2.0, 0.5, 1.0, 1.5, clip=10.0) == pytest.approx(2.5631, 1e-4)
    # A flat forecast: spread floored at min_spread_kwh.
    assert standardized_residual(0.001, 0.0, 0.0, 0.0, min_spread_kwh=0.01) == pytest.approx(
        0.25631, rel=1e-4
    )
    assert math.isnan(standardized_residual(math.nan, 0.5, 1.0, 1.5))
    assert math.isnan(standardized_residual(1.0, 0.5, math.inf, 1.5))


def test_streams_are_reproducible() -> None:
    assert np.array_equal(stable_streams(2, 10, seed=4), stable_streams(2, 10, seed=4))
    x = shifted_stream(10, 5, 3.0, seed=4)
    assert np.array_equal(x[5:], stable_streams(1, 10, seed=4)[0, 5:] + 3.0)
    # RandomState is frozen across NumPy versions: the first value of seed 0 never changes.
    assert stable_streams(1, 1, seed=0)[0, 0] == 1.764052345967664


def test_calibration_command_prints_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--streams", "3", "--length", "200"]) == 0
    out = capsys.readouterr().out
    assert "PageHinkley() [default]" in out
    assert "Adwin() [default]" in out
    assert "3 streams x 200 values" in out

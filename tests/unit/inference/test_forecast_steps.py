"""A forecast in steps (features on the caller's thread, the session on any thread) gives the
batch of one ``forecast()`` call; a forecaster without steps of its own is called whole."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from streamer.forecast.protocol import forecast_steps
from streamer.forecast.seasonal_naive import SeasonalNaive
from streamer.inference import OnnxForecaster, OnnxModel
from streamer.inference.onnx_forecaster import OnnxSteps
from streamer.inference.throttle import throttled
from streamer.simulate.fleet import FleetModel

DEFAULT = Path(__file__).resolve().parents[3] / "models" / "lstm" / "1"
END_MS = 1_767_571_200_000  # 2026-01-05T00:00:00Z


@pytest.fixture(scope="module")
def forecaster() -> OnnxForecaster:
    model = OnnxModel(DEFAULT, providers=["CPUExecutionProvider"], max_batch_size=16)
    return OnnxForecaster(model)


def _history(rows: int) -> np.ndarray:
    fleet = FleetModel(rows, seed=5, resolution_seconds=1800)
    ends = END_MS - np.arange(335, -1, -1, dtype=np.int64) * 1_800_000
    return fleet.load_kwh(ends).astype(np.float64)


def _same(a: object, b: object) -> None:
    for name in ("point_kwh", "quantiles_kwh", "valid"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


def test_onnx_steps_give_the_batch_of_one_call_with_the_session_on_another_thread(
    forecaster: OnnxForecaster,
) -> None:
    history = _history(20)
    history[3, :300] = np.nan  # too little history: an invalid row amid valid ones
    ends = np.full(20, END_MS, dtype=np.int64)
    whole = forecaster.forecast(history, ends, 1800)
    assert not whole.valid[3] and whole.valid.sum() == 19
    steps = forecast_steps(forecaster, history, ends, 1800)
    assert isinstance(steps, OnnxSteps)
    with pytest.raises(RuntimeError, match="before compute"):
        steps.result()
    thread = threading.Thread(target=steps.compute)
    thread.start()
    thread.join()
    _same(steps.result(), whole)


def test_the_input_observer_sees_the_inputs_when_the_steps_are_made(
    forecaster: OnnxForecaster,
) -> None:
    seen: list[int] = []
    forecaster.input_observer = lambda values, scale: seen.append(values.shape[0])
    try:
        forecast_steps(forecaster, _history(5), np.full(5, END_MS, dtype=np.int64), 1800)
    finally:
        forecaster.input_observer = None
    assert seen == [5]  # before compute(): on the thread that made the steps


def test_no_valid_row_needs_no_session(forecaster: OnnxForecaster) -> None:
    history = np.full((3, 336), np.nan)
    steps = forecast_steps(forecaster, history, np.full(3, END_MS, dtype=np.int64), 1800)
    steps.compute()
    assert not steps.result().valid.any()


def test_forecasters_without_steps_and_wrappers_are_called_whole(
    forecaster: OnnxForecaster,
) -> None:
    history, ends = _history(4), np.full(4, END_MS, dtype=np.int64)
    calls: list[int] = []

    class Counting:
        """A wrapper that forwards every attribute (``steps`` too) but counts its calls."""

        def __init__(self, inner: OnnxForecaster) -> None:
            self._inner = inner

        def forecast(self, *args: object) -> object:
            calls.append(1)
            return self._inner.forecast(*args)  # type: ignore[arg-type]

        def __getattr__(self, name: str) -> object:
            return getattr(self._inner, name)

    for wrapper in (Counting(forecaster), throttled(forecaster, 1.0)):
        steps = forecast_steps(wrapper, history, ends, 1800)  # type: ignore[arg-type]
        assert not isinstance(steps, OnnxSteps)  # the wrapper's forecast() is what runs
        steps.compute()
        _same(steps.result(), forecaster.forecast(history, ends, 1800))
    assert calls == [1]
    naive = SeasonalNaive(season_slots=48, horizon_slots=48)
    steps = forecast_steps(naive, history, ends, 1800)
    with pytest.raises(RuntimeError, match="before compute"):
        steps.result()
    steps.compute()
    _same(steps.result(), naive.forecast(history, ends, 1800))

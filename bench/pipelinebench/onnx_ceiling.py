"""Raw ONNX Runtime forecasts/s of a model at given batch sizes, as ``bench/onnx_bench.py``."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from streamer.inference import OnnxForecaster, OnnxModel, build_inputs
from streamer.simulate.fleet import FleetModel

END_MS = 1_767_571_200_000  # 2026-01-05T00:00:00Z


def _median_seconds(
    call: Callable[[], object], warmup: int, min_seconds: float, max_repeats: int
) -> float:
    for _ in range(warmup):
        call()
    times: list[float] = []
    spent = 0.0
    while len(times) < 3 or (spent < min_seconds and len(times) < max_repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
        spent += times[-1]
    return statistics.median(times)


def onnx_rates(
    version_dir: Path,
    batch_sizes: Sequence[int],
    providers: Sequence[str] | None,
    *,
    min_seconds: float = 1.5,
    max_batch_size: int | None = None,
) -> dict[str, Any]:
    """Per batch size: the session alone on prepared inputs, and the whole ``forecast()``.

    The model is loaded as the worker loads it (same providers, same chunking of
    ``max_batch_size`` rows), so that the rates compare with the worker's.
    """
    if max_batch_size is None:
        model = OnnxModel(version_dir, providers=providers)
    else:  # one session call per batch however large (the GPU sweep)
        model = OnnxModel(version_dir, providers=providers, max_batch_size=max_batch_size)
    card = model.card
    forecaster = OnnxForecaster(model)
    res_ms = card.resolution_seconds * 1000
    largest = max(batch_sizes)
    ends = np.arange(END_MS - (card.lookback_slots - 1) * res_ms, END_MS + 1, res_ms)
    history = FleetModel(largest, seed=1, resolution_seconds=card.resolution_seconds).load_kwh(
        ends.astype(np.int64)
    )
    rows: list[dict[str, Any]] = []
    for size in batch_sizes:
        hist = history[:size]
        end_ms = np.full(size, END_MS, dtype=np.int64)
        inputs = build_inputs(hist, end_ms, model.feature_spec).values
        session_s = _median_seconds(partial(model.run, inputs), 2, min_seconds, 200)
        forecast_s = _median_seconds(
            partial(forecaster.forecast, hist, end_ms, card.resolution_seconds),
            2,
            min_seconds,
            200,
        )
        rows.append(
            {
                "batch_size": size,
                "session_ms": round(session_s * 1000, 3),
                "session_forecasts_per_s": round(size / session_s, 1),
                "forecast_ms": round(forecast_s * 1000, 3),
                "forecast_forecasts_per_s": round(size / forecast_s, 1),
            }
        )
    return {
        "model": f"{card.name}:{card.version}",
        "providers_in_use": list(model.providers_in_use),
        "max_batch_size": model.max_batch_size,
        "results": rows,
    }

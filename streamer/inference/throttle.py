"""A forecaster made slower on purpose: the backpressure test's stand-in for a slow model.

``STREAMER_DEBUG_INFERENCE_DELAY_MS`` (0 by default, for tests only) makes every
``forecast()`` call block for that long before the real model runs, as a model too slow for
the incoming load would: the worker falls behind, its consumer lag grows, and the test checks
that memory stays bounded and that the worker catches up once the load drops
(``tests/integration/test_fault_backpressure.py``).

The wrapper is transparent otherwise: every other attribute (name, version, the ONNX model and
its card, the data-drift ``input_observer``) is the wrapped forecaster's.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import numpy.typing as npt

from streamer.forecast.batch import ForecastBatch
from streamer.forecast.local_time import UTC_ZONE, TimeZones
from streamer.forecast.protocol import Forecaster


class ThrottledForecaster:
    """``forecaster`` with ``delay_seconds`` of blocking sleep added to each ``forecast()``."""

    def __init__(self, forecaster: Forecaster, delay_seconds: float) -> None:
        object.__setattr__(self, "_inner", forecaster)
        object.__setattr__(self, "_delay_seconds", delay_seconds)

    @property
    def wrapped(self) -> Forecaster:
        inner: Forecaster = object.__getattribute__(self, "_inner")
        return inner

    def forecast(
        self,
        history_kwh: npt.NDArray[np.float64],
        end_ms: npt.NDArray[np.int64],
        resolution_seconds: int,
        time_zone: TimeZones = UTC_ZONE,
    ) -> ForecastBatch:
        # Blocking on purpose: a slow model holds the event loop just like this.
        time.sleep(object.__getattribute__(self, "_delay_seconds"))
        return self.wrapped.forecast(history_kwh, end_ms, resolution_seconds, time_zone)

    def __getattr__(self, name: str) -> Any:
        return getattr(object.__getattribute__(self, "_inner"), name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(object.__getattribute__(self, "_inner"), name, value)

    def __repr__(self) -> str:
        delay_ms = object.__getattribute__(self, "_delay_seconds") * 1000
        return f"ThrottledForecaster({self.wrapped!r}, +{delay_ms:g} ms per call)"


def throttled(forecaster: Forecaster, delay_ms: float) -> Forecaster:
    """``forecaster`` itself when ``delay_ms`` is 0, else a :class:`ThrottledForecaster`."""
    if delay_ms <= 0:
        return forecaster
    wrapper: Any = ThrottledForecaster(forecaster, delay_ms / 1000.0)
    result: Forecaster = wrapper
    return result

"""``POST /v1/forecast`` from body bytes to answer bytes: parse, pick the model, batch, encode.

The model is the live one unless the request names another (``lstm:2``): models the worker
already runs are shared with the stream (one ONNX session per version and process), others are
loaded on first use and a few are kept. Slow per-series fitters (ETS, SARIMA) are not served
over HTTP. Each batch runs on a thread beside the stream (ONNX Runtime sessions are thread-safe),
at most ``STREAMER_SERVING_MODEL_INSTANCES`` at once, so HTTP load never holds the stream's
micro-batches back: they only share the cores.
"""

from __future__ import annotations

import asyncio
from collections import Counter, OrderedDict
from collections.abc import Callable
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from streamer.accuracy.interval_calibration import IntervalCalibrator
from streamer.errors import StreamerError
from streamer.forecast.protocol import Forecaster
from streamer.pipeline.deferred_calls import deferring
from streamer.rollout.model_router import ModelRouter
from streamer.serving.batcher import DynamicBatcher
from streamer.serving.errors import RequestRejected
from streamer.serving.metrics import ServingMetrics
from streamer.serving.request import RequestLimits, parse_request
from streamer.serving.response import encode_response, forecast_records
from streamer.serving.series_forecast import (
    RowForecast,
    WindowConfig,
    calibrate_rows,
    forecast_windows,
)
from streamer.settings import Settings
from streamer.timeutil import now_ms

#: Models fitted per series at forecast time: seconds per series, not served over HTTP.
NOT_SERVED: Final = frozenset({"ets", "sarima"})
_EXTRA_MODELS: Final = 4


def _unobserved(*args: Any) -> list[RowForecast]:
    """:func:`forecast_windows` with the model's input observer held back: the stream's
    data-drift monitor watches the fleet's inputs, not the series clients send (and is fed on
    the event loop only, see :mod:`streamer.pipeline.deferred_calls`)."""
    with deferring([]):  # kept, then dropped
        return forecast_windows(*args)


class ModelCatalog:
    """The forecaster for a request's model spec."""

    def __init__(self, router: ModelRouter, build: Callable[[str], Forecaster]) -> None:
        self._router = router
        self._build = build
        self._extra: OrderedDict[str, Forecaster] = OrderedDict()

    async def resolve(self, spec: str | None) -> Forecaster:
        router = self._router
        if spec is None or spec == router.live_spec:
            return router.live
        if spec == router.shadow_spec and router.shadow is not None:
            return router.shadow
        if spec.partition(":")[0] in NOT_SERVED:
            raise RequestRejected(
                422,
                "unknown_model",
                f"model {spec!r} fits each series when asked (seconds per series) and is not "
                "served over HTTP; ask for an ONNX model (lstm, lstm:N) or seasonal_naive",
            )
        model = self._extra.get(spec)
        if model is None:
            try:  # loading a session takes a while: off the event loop
                model = await asyncio.to_thread(self._build, spec)
            except StreamerError as exc:
                raise RequestRejected(422, "unknown_model", f"model {spec!r}: {exc}") from None
            self._extra[spec] = model
            while len(self._extra) > _EXTRA_MODELS:
                self._extra.popitem(last=False)
        self._extra.move_to_end(spec)
        return model


class ForecastService:
    def __init__(
        self,
        settings: Settings,
        catalog: ModelCatalog,
        fallback: Forecaster,
        metrics: ServingMetrics,
        prior: IntervalCalibrator | None = None,
    ) -> None:
        self.limits = RequestLimits(
            resolution_seconds=settings.resolution_seconds,
            lookback_slots=settings.lookback_slots,
            min_observed_fraction=settings.min_observed_fraction,
            max_series=settings.serving_max_series_per_request,
            time_zone=settings.time_zone,
        )
        self._config = WindowConfig(
            resolution_seconds=settings.resolution_seconds,
            slots_per_day=settings.slots_per_day,
            interpolate_max_gap_slots=settings.interpolate_max_gap_slots,
        )
        self._catalog = catalog
        self._fallback = fallback
        # the stream's fleet calibration prior (None: calibration off)
        self._prior = prior
        self._metrics = metrics
        self.batcher = DynamicBatcher(
            self._run_batch,
            max_batch_series=settings.serving_max_batch_series,
            queue_delay_seconds=settings.serving_queue_delay_ms / 1000.0,
            max_pending_series=settings.serving_max_pending_series,
            instances=settings.serving_model_instances,
            on_batch=metrics.batch_series.observe,
        )

    async def _run_batch(
        self,
        model: Forecaster,
        windows: npt.NDArray[np.float32],
        end_ms: npt.NDArray[np.int64],
        zones: npt.NDArray[np.str_],
    ) -> list[RowForecast]:
        # ONNX Runtime sessions are thread-safe: the batch runs on a thread of its own beside
        # the stream's micro-batches, holding a reference to its model (a rollout meanwhile
        # swaps the live model for the next batch, never this one)
        return await asyncio.to_thread(
            _unobserved, windows, end_ms, model, self._fallback, self._config, zones
        )

    async def forecast(self, body: bytes) -> bytes:
        """The answer to ``body``, or :class:`RequestRejected`."""
        request = parse_request(body, self.limits)
        model = await self._catalog.resolve(request.model_spec)
        self._metrics.queued_series.inc(len(request.series))
        try:
            rows = await self.batcher.submit(
                model, request.windows_kwh, request.end_ms, request.time_zones
            )
        finally:
            self._metrics.queued_series.dec(len(request.series))
        if request.calibrated and self._prior is not None:
            rows = calibrate_rows(rows, self._prior)
        records = forecast_records(request.series, rows, now_ms(), self.limits.resolution_seconds)
        served = Counter(row.model for row in rows if row.model is not None)
        for forecaster, count in served.items():
            self._metrics.series.labels(model=f"{forecaster.name}:{forecaster.version}").inc(count)
        return encode_response(records, rows)

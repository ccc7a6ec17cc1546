"""The LSTM (or any card-described ONNX model) behind the :class:`Forecaster` protocol."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from streamer.forecast.batch import ForecastBatch
from streamer.forecast.errors import ForecasterSpecError, ForecastInputError
from streamer.forecast.inputs import check_inputs
from streamer.forecast.local_time import UTC_ZONE, TimeZones
from streamer.forecast.protocol import ForecastDone
from streamer.inference.features import build_inputs, unscale
from streamer.inference.onnx_model import OnnxModel


class OnnxForecaster:
    """Forecasts with an :class:`OnnxModel`; ``name``/``version`` come from the model card.

    ``horizon_slots`` may be shorter than the model's horizon (the first slots are returned).
    A row is ``valid=False`` when its lookback has fewer than ``min_history_slots`` finite
    values (the card's ``min_history_slots``); the pipeline then falls back to a baseline.
    Histories shorter than the lookback are NaN-padded on the left; shorter than
    ``min_history_slots`` columns is a :class:`ForecastInputError`.
    """

    def __init__(self, model: OnnxModel, horizon_slots: int | None = None) -> None:
        card = model.card
        horizon = card.horizon_slots if horizon_slots is None else horizon_slots
        if not 1 <= horizon <= card.horizon_slots:
            raise ForecasterSpecError(
                f"{model.card_file}: horizon_slots: the model forecasts {card.horizon_slots} "
                f"slots, {horizon} were asked for; set STREAMER_HORIZON_SLOTS <= "
                f"{card.horizon_slots} or train a model with a longer horizon"
            )
        self.model = model
        self.name: str = card.name
        self.version: str = card.version
        self.horizon_slots: int = horizon
        self.quantile_levels: tuple[float, ...] = tuple(card.quantile_levels)
        self.min_history_slots: int = card.min_history_slots
        self.resolution_seconds: int = card.resolution_seconds
        self.lookback_slots: int = card.lookback_slots
        # Called with every batch of model inputs (B, L, F) and their window scales (B,).
        self.input_observer: (
            Callable[[npt.NDArray[np.float32], npt.NDArray[np.float64]], None] | None
        ) = None

    @property
    def providers_in_use(self) -> tuple[str, ...]:
        return self.model.providers_in_use

    @property
    def fell_back_to_cpu(self) -> bool:
        return self.model.fell_back_to_cpu

    def forecast(
        self,
        history_kwh: npt.NDArray[np.float64],
        end_ms: npt.NDArray[np.int64],
        resolution_seconds: int,
        time_zone: TimeZones = UTC_ZONE,
    ) -> ForecastBatch:
        """See :class:`~streamer.forecast.protocol.Forecaster`."""
        steps = self.steps(history_kwh, end_ms, resolution_seconds, time_zone)
        steps.compute()
        return steps.result()

    def steps(
        self,
        history_kwh: npt.NDArray[np.float64],
        end_ms: npt.NDArray[np.int64],
        resolution_seconds: int,
        time_zone: TimeZones = UTC_ZONE,
    ) -> OnnxSteps | ForecastDone:
        """:meth:`forecast` in steps (:class:`~streamer.forecast.protocol.ForecastSteps`):
        the inputs are checked and their features built now, on the calling thread (and
        offered to the ``input_observer``); :meth:`OnnxSteps.compute` is the session alone."""
        if resolution_seconds != self.resolution_seconds:
            raise ForecastInputError(
                f"model {self.name}:{self.version} was trained at {self.resolution_seconds} s "
                f"slots, the history is at {resolution_seconds} s; set "
                f"STREAMER_RESOLUTION_SECONDS={self.resolution_seconds} or use a model trained "
                "at this resolution"
            )
        history = check_inputs(
            history_kwh, end_ms, min_length=self.min_history_slots, model=self.name
        )
        rows = history.shape[0]
        if rows == 0:
            return ForecastDone(
                ForecastBatch.all_invalid(0, self.horizon_slots, self.quantile_levels)
            )
        inputs = build_inputs(
            history, np.asarray(end_ms, dtype=np.int64), self.model.feature_spec, time_zone
        )
        valid = inputs.finite_slots >= self.min_history_slots
        if valid.all():  # the usual case: no (B, L, F) copy of the inputs
            values, scale = inputs.values, inputs.scale
        elif valid.any():
            values, scale = inputs.values[valid], inputs.scale[valid]
        else:
            return ForecastDone(
                ForecastBatch.all_invalid(rows, self.horizon_slots, self.quantile_levels)
            )
        if self.input_observer is not None:
            self.input_observer(values, scale)
        return OnnxSteps(self, values, scale, valid, every_row=values is inputs.values)


class OnnxSteps:
    """One :meth:`OnnxForecaster.forecast` call in steps: the features are built;
    :meth:`compute` runs the session (ONNX Runtime releases the GIL, so it overlaps the
    caller's Python on another thread); :meth:`result` makes the batch."""

    __slots__ = ("_batch", "_every_row", "_forecaster", "_raw", "_scale", "_valid", "_values")

    def __init__(
        self,
        forecaster: OnnxForecaster,
        values: npt.NDArray[np.float32],
        scale: npt.NDArray[np.float64],
        valid: npt.NDArray[np.bool_],
        *,
        every_row: bool,
    ) -> None:
        self._forecaster = forecaster
        self._values = values
        self._scale = scale
        self._valid = valid
        self._every_row = every_row
        self._raw: npt.NDArray[np.float32] | None = None
        self._batch: ForecastBatch | None = None

    def compute(self) -> None:
        if self._raw is None:
            self._raw = self._forecaster.model.run(self._values)
            self._values = self._values[:0]  # the inputs are not needed any more

    def result(self) -> ForecastBatch:
        if self._batch is not None:
            return self._batch
        forecaster, raw = self._forecaster, self._raw
        if raw is None:
            raise RuntimeError("result() before compute()")
        horizon, levels = forecaster.horizon_slots, forecaster.quantile_levels
        scaled = unscale(raw[:, :horizon, :], self._scale)
        if self._every_row:
            quantiles = scaled
        else:
            rows = self._valid.shape[0]
            quantiles = np.full((rows, horizon, len(levels)), np.nan)
            quantiles[self._valid] = scaled
        point = quantiles[:, :, forecaster.model.card.point_index]
        self._batch = ForecastBatch.from_rows(point, quantiles, levels, self._valid)
        return self._batch

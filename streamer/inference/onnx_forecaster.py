"""The LSTM (or any card-described ONNX model) behind the :class:`Forecaster` protocol."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from streamer.forecast.batch import ForecastBatch
from streamer.forecast.errors import ForecasterSpecError, ForecastInputError
from streamer.forecast.inputs import check_inputs
from streamer.forecast.local_time import UTC_ZONE, TimeZones
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
        levels = len(self.quantile_levels)
        if rows == 0:
            return ForecastBatch.all_invalid(0, self.horizon_slots, self.quantile_levels)
        inputs = build_inputs(
            history, np.asarray(end_ms, dtype=np.int64), self.model.feature_spec, time_zone
        )
        valid = inputs.finite_slots >= self.min_history_slots
        if valid.all():  # the usual case: no (B, L, F) copy of the inputs
            values, scale = inputs.values, inputs.scale
        elif valid.any():
            values, scale = inputs.values[valid], inputs.scale[valid]
        else:
            return ForecastBatch.all_invalid(rows, self.horizon_slots, self.quantile_levels)
        if self.input_observer is not None:
            self.input_observer(values, scale)
        raw = self.model.run(values)
        scaled = unscale(raw[:, : self.horizon_slots, :], scale)
        if values is inputs.values:
            quantiles = scaled
        else:
            quantiles = np.full((rows, self.horizon_slots, levels), np.nan)
            quantiles[valid] = scaled
        point = quantiles[:, :, self.model.card.point_index]
        return ForecastBatch.from_rows(point, quantiles, self.quantile_levels, valid)

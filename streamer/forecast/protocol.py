"""The one interface every forecaster implements (seasonal naive, ETS, SARIMA, LSTM/ONNX)."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from streamer.forecast.batch import ForecastBatch
from streamer.forecast.local_time import UTC_ZONE, TimeZones


@runtime_checkable
class Forecaster(Protocol):
    """Forecasts a batch of meters from their recent history in one call.

    Attributes:
        name: stable identifier written into forecast records (``"seasonal_naive_week"``,
            ``"ets"``, ``"sarima"``, ``"lstm"``).
        version: model version; ``"1"`` for the statistical baselines.
        horizon_slots: ``H``, the number of slots forecast ahead.
        quantile_levels: the levels of ``ForecastBatch.quantiles_kwh``.
        min_history_slots: a row needs at least this many finite values in the part of the
            history the model reads, otherwise it comes back ``valid=False``. A history
            array too short for the model (fewer columns than ``min_history_slots``, or than
            one season for seasonal naive) is a configuration error for the whole batch
            (:class:`~streamer.forecast.errors.ForecastInputError`).

    ``forecast(history_kwh, end_ms, resolution_seconds)``:
        ``history_kwh`` is ``(B, L)`` float64, oldest to newest, gaps already imputed where the
        caller could but NaN may remain. ``end_ms`` is ``(B,)`` int64, the end of each row's
        newest slot (UTC epoch ms). A row's result never depends on the other rows of the batch
        (one documented exception: :class:`~streamer.forecast.seasonal_naive.SeasonalNaive`'s
        fleet-wide spread fallback), and the same input always gives the same output.
        One meter's failure is ``valid=False`` for that row, never an exception.
        ``time_zone`` is the IANA zone of the meters' calendar: one name for the batch or one
        per row. Models that read the calendar (local calendar features, seasonal-naive lags
        of a day or a week of wall-clock time) use it; the others ignore it. An unknown name
        raises :class:`~streamer.forecast.local_time.UnknownTimeZoneError`.
    """

    name: str
    version: str
    horizon_slots: int
    quantile_levels: tuple[float, ...]
    min_history_slots: int

    def forecast(
        self,
        history_kwh: npt.NDArray[np.float64],
        end_ms: npt.NDArray[np.int64],
        resolution_seconds: int,
        time_zone: TimeZones = UTC_ZONE,
    ) -> ForecastBatch: ...

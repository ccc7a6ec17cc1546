"""Forecasting: the :class:`Forecaster` protocol, its result :class:`ForecastBatch`, the
statistical baselines (seasonal naive, ETS, SARIMA) and the spec registry.

Where a meter's window becomes a forecast: ``registry.make_forecaster(spec)`` builds a model;
its ``forecast(history_kwh, end_ms, resolution_seconds)`` returns a ``ForecastBatch``;
``calendar.horizon_end_ms`` stamps the horizon slots.
"""

from __future__ import annotations

from streamer.forecast.batch import ForecastBatch
from streamer.forecast.calendar import horizon_end_ms
from streamer.forecast.errors import ForecastError, ForecasterSpecError, ForecastInputError
from streamer.forecast.ets import EtsForecaster
from streamer.forecast.fit_stats import FitStats
from streamer.forecast.protocol import Forecaster
from streamer.forecast.registry import (
    ForecasterFactory,
    available_specs,
    builtin_factories,
    make_forecaster,
    register_forecaster,
)
from streamer.forecast.sarima import SarimaForecaster
from streamer.forecast.seasonal_naive import (
    SeasonalNaive,
    seasonal_naive_day,
    seasonal_naive_week,
)

__all__ = [
    "EtsForecaster",
    "FitStats",
    "ForecastBatch",
    "ForecastError",
    "ForecastInputError",
    "Forecaster",
    "ForecasterFactory",
    "ForecasterSpecError",
    "SarimaForecaster",
    "SeasonalNaive",
    "available_specs",
    "builtin_factories",
    "horizon_end_ms",
    "make_forecaster",
    "register_forecaster",
    "seasonal_naive_day",
    "seasonal_naive_week",
]

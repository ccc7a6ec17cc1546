"""Accuracy: forecasts matched with the actuals of their target slots.

* ``forecast_ledger``: :class:`ForecastLedger`, per meter, keeps the forecasts of a few
  horizons (:class:`LedgerConfig`, default 1, 4, 12, 24, 48 slots) until their actual arrives;
  ``match`` returns :class:`Match` es. 732 bytes per meter with the defaults.
* ``rolling_accuracy``: :class:`RollingAccuracy`, per meter, exponentially weighted MAE and
  sMAPE (44 bytes).
* ``fleet_accuracy``: :class:`FleetAccuracy`, per worker and interval, MAE, sMAPE, pinball,
  p10-p90 coverage and bias by horizon (:class:`HorizonAccuracy`); ``merge`` and ``reset``.

The worker's order for a meter whose slot closed: ``ledger.match(slot, actual)``, feed the
matches to the meter's ``RollingAccuracy``, the worker's ``FleetAccuracy`` and (the horizon-1
match, standardised with :func:`streamer.drift.standardized_residual`) the meter's drift
detector; then forecast and ``ledger.record(slot, point, quantiles)``.
"""

from __future__ import annotations

from streamer.accuracy.errors import (
    AccuracyConfigError,
    AccuracyError,
    AccuracyInputError,
    AccuracyStateDecodeError,
)
from streamer.accuracy.fleet_accuracy import NOMINAL_COVERAGE, FleetAccuracy, HorizonAccuracy
from streamer.accuracy.forecast_ledger import LEDGER_LEVELS, ForecastLedger, quantile_columns
from streamer.accuracy.ledger_config import DEFAULT_HORIZONS, LedgerConfig
from streamer.accuracy.match import Match
from streamer.accuracy.rolling_accuracy import AccuracySnapshot, RollingAccuracy

__all__ = [
    "DEFAULT_HORIZONS",
    "LEDGER_LEVELS",
    "NOMINAL_COVERAGE",
    "AccuracyConfigError",
    "AccuracyError",
    "AccuracyInputError",
    "AccuracySnapshot",
    "AccuracyStateDecodeError",
    "FleetAccuracy",
    "ForecastLedger",
    "HorizonAccuracy",
    "LedgerConfig",
    "Match",
    "RollingAccuracy",
    "quantile_columns",
]

"""Errors of the evaluation area (metrics, backtests, history files)."""

from __future__ import annotations

from streamer.errors import StreamerError


class EvaluateError(StreamerError):
    """Base of the errors raised by :mod:`streamer.evaluate`."""


class MetricInputError(EvaluateError):
    """Arrays handed to a metric do not fit together (shapes, levels)."""


class HistoryFileError(EvaluateError):
    """A history file cannot be read as ``meter_id, ts, kwh`` rows."""


class BacktestConfigError(EvaluateError):
    """The backtest settings do not fit the history (holdout, horizon, lookback)."""

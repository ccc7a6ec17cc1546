"""Evaluation: accuracy metrics and a rolling-origin backtest over stored meter history."""

from __future__ import annotations

from streamer.evaluate.backtest import run_backtest
from streamer.evaluate.buckets import HorizonBucket, horizon_buckets
from streamer.evaluate.errors import (
    BacktestConfigError,
    EvaluateError,
    HistoryFileError,
    MetricInputError,
)
from streamer.evaluate.history import load_history
from streamer.evaluate.metric_set import MetricSet
from streamer.evaluate.metrics import (
    MapeResult,
    PinballResult,
    crps_from_quantiles,
    interval_coverage,
    mae,
    mape,
    mase,
    nrmse,
    pinball,
    rmse,
    smape,
)
from streamer.evaluate.report import BacktestReport, ModelReport

__all__ = [
    "BacktestConfigError",
    "BacktestReport",
    "EvaluateError",
    "HistoryFileError",
    "HorizonBucket",
    "MapeResult",
    "MetricInputError",
    "MetricSet",
    "ModelReport",
    "PinballResult",
    "crps_from_quantiles",
    "horizon_buckets",
    "interval_coverage",
    "load_history",
    "mae",
    "mape",
    "mase",
    "nrmse",
    "pinball",
    "rmse",
    "run_backtest",
    "smape",
]

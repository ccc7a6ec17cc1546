"""What a backtest found: per model, overall and per horizon bucket; as JSON and Markdown."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from streamer.evaluate.buckets import HorizonBucket
from streamer.evaluate.metric_set import MetricSet, json_float
from streamer.timeutil import format_ts


@dataclass(frozen=True, slots=True)
class ModelReport:
    """One forecaster's results. ``rows_invalid`` of ``rows_forecast`` meter-origins came back
    ``valid=False`` (their pairs are not in the metrics); ``forecast_seconds`` is wall time."""

    name: str
    version: str
    overall: MetricSet
    by_bucket: tuple[tuple[HorizonBucket, MetricSet], ...]
    rows_forecast: int
    rows_invalid: int
    forecast_seconds: float
    fit_stats: dict[str, object] | None = None

    def to_json(self) -> dict[str, object]:
        """Plain JSON types."""
        out: dict[str, object] = {
            "name": self.name,
            "version": self.version,
            "overall": self.overall.to_json(),
            "by_horizon": [
                {"first_slot": b.first, "last_slot": b.last, "label": b.label, **m.to_json()}
                for b, m in self.by_bucket
            ],
            "rows_forecast": self.rows_forecast,
            "rows_invalid": self.rows_invalid,
            "forecast_seconds": json_float(self.forecast_seconds),
        }
        if self.fit_stats is not None:
            out["fit_stats"] = self.fit_stats
        return out


@dataclass(frozen=True, slots=True)
class BacktestReport:
    """Rolling-origin backtest results (see :func:`streamer.evaluate.backtest.run_backtest`)."""

    resolution_seconds: int
    lookback_slots: int
    horizon_slots: int
    holdout_slots: int
    origin_step_slots: int
    meters: int
    origins: int
    first_origin_ms: int
    last_origin_ms: int
    mase_season_slots: int
    models: tuple[ModelReport, ...] = field(default_factory=tuple)
    holdout_per_meter: bool = False
    day_ahead_zone: str | None = None

    def model(self, name: str) -> ModelReport:
        """The report of the model called ``name``."""
        for report in self.models:
            if report.name == name:
                return report
        raise KeyError(f"no model {name!r}; have {[m.name for m in self.models]}")

    def to_json(self) -> dict[str, object]:
        """Plain JSON types (NaN as ``None``); times as RFC 3339 UTC and epoch ms."""
        return {
            "resolution_seconds": self.resolution_seconds,
            "lookback_slots": self.lookback_slots,
            "horizon_slots": self.horizon_slots,
            "holdout_slots": self.holdout_slots,
            "origin_step_slots": self.origin_step_slots,
            "meters": self.meters,
            "origins": self.origins,
            "first_origin_ms": self.first_origin_ms,
            "last_origin_ms": self.last_origin_ms,
            "first_origin": format_ts(self.first_origin_ms),
            "last_origin": format_ts(self.last_origin_ms),
            "mase_season_slots": self.mase_season_slots,
            "holdout_per_meter": self.holdout_per_meter,
            "day_ahead_zone": self.day_ahead_zone,
            "models": [m.to_json() for m in self.models],
        }

    def to_markdown(self) -> str:
        """An overall table, the per-meter means, then MAE and MASE per horizon bucket."""
        holdout = "each meter's own last" if self.holdout_per_meter else "the last (pooled grid)"
        protocol = (
            f"day-ahead, origins at local midnight ({self.day_ahead_zone})"
            if self.day_ahead_zone is not None
            else f"origins every {self.origin_step_slots} slots"
        )
        lines = [
            f"## Backtest: {self.meters} meters, {self.origins} origins "
            f"({format_ts(self.first_origin_ms)} .. {format_ts(self.last_origin_ms)}), "
            f"horizon {self.horizon_slots} x {self.resolution_seconds} s, "
            f"lookback {self.lookback_slots} slots",
            "",
            f"Holdout: {holdout} {self.holdout_slots} slots; {protocol}. "
            "NRMSE = RMSE / mean actual; CRPS ~ 2 x mean pinball loss over the model's "
            "quantile levels. Pooled over all pairs:",
            "",
        ]
        lines += _table(
            [
                "model",
                "MAE kWh",
                "RMSE kWh",
                "NRMSE",
                "MAPE %",
                "zeros skipped",
                "sMAPE %",
                "MASE",
                "pinball kWh",
                "CRPS kWh",
                "coverage",
                "nominal",
                "invalid rows",
                "seconds",
            ],
            [
                [
                    m.name,
                    _fmt(m.overall.mae_kwh),
                    _fmt(m.overall.rmse_kwh),
                    _fmt(m.overall.nrmse),
                    _fmt(m.overall.mape_percent, 2),
                    str(m.overall.mape_skipped_zero),
                    _fmt(m.overall.smape_percent, 2),
                    _fmt(m.overall.mase),
                    _fmt(m.overall.pinball_kwh),
                    _fmt(m.overall.crps_kwh),
                    _fmt(m.overall.coverage, 3),
                    _fmt(m.overall.nominal_coverage, 2),
                    f"{m.rows_invalid}/{m.rows_forecast}",
                    _fmt(m.forecast_seconds, 2),
                ]
                for m in self.models
            ],
        )
        lines += [
            "",
            "### Per-meter mean (each meter's own metric, averaged over meters)",
            "",
        ]
        lines += _table(
            ["model", "meters", "MAE kWh", "NRMSE", "MASE", "coverage"],
            [
                [
                    m.name,
                    str(m.overall.meters_scored),
                    _fmt(m.overall.mae_kwh_per_meter),
                    _fmt(m.overall.nrmse_per_meter),
                    _fmt(m.overall.mase_per_meter),
                    _fmt(m.overall.coverage_per_meter, 3),
                ]
                for m in self.models
            ],
        )
        for title, attr in (("MAE kWh", "mae_kwh"), ("MASE", "mase")):
            buckets = self.models[0].by_bucket if self.models else ()
            lines += ["", f"### {title} by horizon (slots)", ""]
            lines += _table(
                ["model", *[b.label for b, _ in buckets]],
                [[m.name, *[_fmt(getattr(s, attr)) for _, s in m.by_bucket]] for m in self.models],
            )
        return "\n".join(lines) + "\n"


def _fmt(value: float, digits: int = 4) -> str:
    return f"{value:.{digits}f}" if math.isfinite(value) else "n/a"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(row) + " |" for row in rows]
    return out

"""What a backtest found: per model, overall and per horizon bucket; as JSON and Markdown."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

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
class GroupReport:
    """One forecaster's group forecasts for one kind of group (feeder, substation, ...),
    scored after the warm-up (see :mod:`streamer.evaluate.group_backtest`).

    Errors are forecast minus realised total over ``pairs`` (group, slot) pairs. ``mae_kwh``,
    ``bias_percent`` (mean error as a share of ``mean_total_kwh``, the mean realised total) and
    ``coverage`` (share of realised totals inside the published p10..p90) are of the published
    group forecast: centred on the sum of the members' expected values, its band and bias
    calibrated online. ``expected_bias_percent`` is the bias of that sum before calibration,
    ``p50_bias_percent`` the bias of the sum of the members' p50s (the centre that does not add
    up). ``mae_ratio`` divides ``mae_kwh`` by the MAE of seasonal naive 7d of the group's own
    total; ``meter_mae_ratio`` is the same model's MAE on the member meters divided by that of
    seasonal naive 7d on them. ``filled_members``: member forecasts (member x origin) the model
    could not make, filled with seasonal naive 7d; ``incomplete_slots``: (group, slot) pairs
    left out because a member's reading was missing."""

    model: str
    kind: str
    groups: int
    members: int
    origins: int
    pairs: int
    mae_kwh: float
    mean_total_kwh: float
    bias_percent: float
    expected_bias_percent: float
    p50_bias_percent: float
    coverage: float
    nominal_coverage: float
    mae_ratio: float
    meter_mae_ratio: float
    filled_members: int
    incomplete_slots: int
    calibrated_share: float

    def to_json(self) -> dict[str, object]:
        """Plain JSON types (NaN as ``None``)."""
        out: dict[str, object] = {}
        for item in fields(self):
            value = getattr(self, item.name)
            out[item.name] = json_float(value) if isinstance(value, float) else value
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
    #: Group results per (model, kind); empty when the backtest had no groups.
    groups: tuple[GroupReport, ...] = ()
    #: Origins of the group warm-up (not scored) and member ids absent from the history.
    group_warmup_origins: int = 0
    group_meters_missing: int = 0

    def model(self, name: str) -> ModelReport:
        """The report of the model called ``name``."""
        for report in self.models:
            if report.name == name:
                return report
        raise KeyError(f"no model {name!r}; have {[m.name for m in self.models]}")

    def to_json(self) -> dict[str, object]:
        """Plain JSON types (NaN as ``None``); times as RFC 3339 UTC and epoch ms."""
        out: dict[str, object] = {
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
        if self.groups:
            out["groups"] = {
                "warmup_origins": self.group_warmup_origins,
                "meters_missing": self.group_meters_missing,
                "results": [g.to_json() for g in self.groups],
            }
        return out

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
        if self.groups:
            lines += self._groups_markdown()
        return "\n".join(lines) + "\n"

    def _groups_markdown(self) -> list[str]:
        """The "Groups" section: a table per kind of group."""
        lines = [
            "",
            "### Groups",
            "",
            "Centre: the sum of the members' expected values, bias-corrected online; band: "
            "p10..p90 calibrated online against realised group totals. Scored after a warm-up "
            f"of {self.group_warmup_origins} origins; bias = mean (forecast - realised) / mean "
            "realised total; MAE ratio: to seasonal naive 7d of the group's own total; per-meter "
            "ratio: the same model on the member meters, to seasonal naive 7d on them"
            + (
                f"; {self.group_meters_missing} member id(s) not in the history ignored."
                if self.group_meters_missing
                else "."
            ),
        ]
        for kind in sorted({g.kind for g in self.groups}):
            rows = [g for g in self.groups if g.kind == kind]
            lines += ["", f"#### {kind}", ""]
            lines += _table(
                [
                    "model",
                    "groups",
                    "members",
                    "MAE kWh",
                    "mean total kWh",
                    "bias %",
                    "coverage",
                    "nominal",
                    "MAE ratio to seasonal naive 7d",
                    "per-meter MAE ratio",
                    "bias % sum of p50",
                    "bias % uncalibrated",
                    "filled",
                    "incomplete",
                ],
                [
                    [
                        g.model,
                        str(g.groups),
                        str(g.members),
                        _fmt(g.mae_kwh, 3),
                        _fmt(g.mean_total_kwh, 2),
                        _fmt(g.bias_percent, 2),
                        _fmt(g.coverage, 3),
                        _fmt(g.nominal_coverage, 2),
                        _fmt(g.mae_ratio, 3),
                        _fmt(g.meter_mae_ratio, 3),
                        _fmt(g.p50_bias_percent, 2),
                        _fmt(g.expected_bias_percent, 2),
                        str(g.filled_members),
                        str(g.incomplete_slots),
                    ]
                    for g in rows
                ],
            )
        return lines


def _fmt(value: float, digits: int = 4) -> str:
    return f"{value:.{digits}f}" if math.isfinite(value) else "n/a"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(row) + " |" for row in rows]
    return out

"""Build the committed default model ``models/lstm/<version>`` and prove it on held-out data.

``python -m streamer.train.default_model --out models/lstm/2`` (the train extra installed):

1. simulates ``--meters`` meters for ``--days`` days (fixed seed) into ``<work>/history.parquet``,
   split evenly over the fleets of ``--zones`` (each its own seed, zone, hemisphere and
   holidays; the file's ``time_zone`` column names each meter's zone), so that the model learns
   its calendar in local time across daylight-saving changes in both hemispheres;
2. trains on all but the last ``--holdout-days`` days (the last 7 of those for validation);
3. backtests ``lstm:<version>`` against the weekly and daily seasonal naive and ETS over the
   held-out days (rolling origins), on ``--ets-meters`` meters when ETS should see fewer;
4. writes ``BACKTEST.md`` (tables and the command) beside the model, records the metrics in the
   card, and fails when the targets are missed (MASE < 0.9, p10-p90 coverage 70-90 %).
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from streamer.evaluate.backtest import run_backtest
from streamer.evaluate.history import load_history
from streamer.evaluate.report import BacktestReport
from streamer.forecast.protocol import Forecaster
from streamer.forecast.registry import make_forecaster
from streamer.inference.onnx_forecaster import OnnxForecaster
from streamer.inference.onnx_model import OnnxModel
from streamer.modelrepo.card import (
    BacktestMetrics,
    BacktestSummary,
    ModelCard,
    load_card,
    parse_card,
    write_card,
)
from streamer.modelrepo.layout import CARD_FILE
from streamer.simulate.fleet import FleetModel
from streamer.simulate.history import generate_history, write_history
from streamer.train.config import TrainConfig
from streamer.train.errors import TrainError
from streamer.train.main import train_main

logger = logging.getLogger(__name__)

MASE_TARGET = 0.9
#: The training fleets: both hemispheres, daylight saving on either side and none.
DEFAULT_ZONES = ("Europe/London", "America/New_York", "Australia/Sydney", "Asia/Kolkata")
#: Days everyone behaves as on a Sunday (the same in every training fleet: a broad prior).
HOLIDAYS = ("2025-12-25", "2025-12-26", "2026-01-01")
COVERAGE_TARGET = (0.70, 0.90)


@dataclass(frozen=True, slots=True)
class DefaultModelArgs:
    """Arguments of the recipe (``--help`` lists them)."""

    out: Path
    work: Path
    meters: int = 300
    days: int = 120
    seed: int = 42
    start: str = "2025-09-01"
    holdout_days: int = 14
    origin_step_slots: int = 24
    ets_meters: int | None = None
    skip_train: bool = False
    epochs: int = 30
    threads: int | None = None
    zones: tuple[str, ...] = DEFAULT_ZONES


def simulate(args: DefaultModelArgs) -> Path:
    """The simulator history (written once; reused when it exists)."""
    tag = "-".join(zone.split("/")[-1].lower() for zone in args.zones)
    path = args.work / f"history-{args.meters}m-{args.days}d-seed{args.seed}-{tag}.parquet"
    if path.exists():
        return path
    start_ms = int(pd.Timestamp(args.start, tz="UTC").value // 1_000_000)
    frames = []
    share, extra = divmod(args.meters, len(args.zones))
    for k, zone in enumerate(args.zones):
        fleet = FleetModel(
            share + (k < extra),
            seed=args.seed + k,
            resolution_seconds=1800,
            id_prefix=f"z{k}-",
            time_zone=zone,
            holidays=HOLIDAYS,
        )
        frame = generate_history(fleet, start_ms, start_ms + args.days * 86_400_000)
        frames.append(frame.assign(time_zone=zone))
    return write_history(path, pd.concat(frames, ignore_index=True))


def backtest(
    history: pd.DataFrame, card: ModelCard, model_dir: Path, args: DefaultModelArgs
) -> tuple[BacktestReport, BacktestReport | None]:
    """All meters: lstm and the seasonal naives (and ETS unless ``ets_meters``); then ETS with
    lstm on the first ``ets_meters`` meters when asked."""
    model = OnnxModel(model_dir, providers=["CPUExecutionProvider"])
    horizon, res = card.horizon_slots, card.resolution_seconds

    def forecasters(with_ets: bool) -> list[Forecaster]:
        out: list[Forecaster] = [
            OnnxForecaster(model),
            make_forecaster("seasonal_naive_week", horizon_slots=horizon, resolution_seconds=res),
            make_forecaster("seasonal_naive_day", horizon_slots=horizon, resolution_seconds=res),
        ]
        if with_ets:
            out.append(make_forecaster("ets", horizon_slots=horizon, resolution_seconds=res))
        return out

    def run(chosen: list[Forecaster], max_meters: int | None) -> BacktestReport:
        return run_backtest(
            history,
            chosen,
            resolution_seconds=res,
            lookback_slots=card.lookback_slots,
            horizon_slots=horizon,
            holdout_slots=args.holdout_days * 86_400 // res,
            origin_step_slots=args.origin_step_slots,
            max_meters=max_meters,
        )

    full = run(forecasters(args.ets_meters is None), None)
    subset = None if args.ets_meters is None else run(forecasters(True), args.ets_meters)
    return full, subset


def summary_of(report: BacktestReport, command: str, history: Path) -> BacktestSummary:
    """The card's record of a backtest."""
    return BacktestSummary(
        command=command,
        history=str(history),
        meters=report.meters,
        origins=report.origins,
        holdout_slots=report.holdout_slots,
        origin_step_slots=report.origin_step_slots,
        lookback_slots=report.lookback_slots,
        mase_season_slots=report.mase_season_slots,
        models=tuple(
            BacktestMetrics(
                model=m.name,
                version=m.version,
                mae_kwh=_num(m.overall.mae_kwh),
                rmse_kwh=_num(m.overall.rmse_kwh),
                smape_percent=_num(m.overall.smape_percent),
                mase=_num(m.overall.mase),
                pinball_kwh=_num(m.overall.pinball_kwh),
                coverage=_num(m.overall.coverage),
                nominal_coverage=_num(m.overall.nominal_coverage),
            )
            for m in report.models
        ),
    )


def _num(value: float) -> float | None:
    return round(float(value), 6) if value == value and abs(value) != float("inf") else None


def targets_met(report: BacktestReport, name: str) -> tuple[bool, str]:
    """Whether ``name`` meets the MASE and coverage targets, and a sentence saying so."""
    overall = report.model(name).overall
    low, high = COVERAGE_TARGET
    ok = overall.mase < MASE_TARGET and low <= overall.coverage <= high
    text = (
        f"{name}: MASE {overall.mase:.3f} (target < {MASE_TARGET}), p10-p90 coverage "
        f"{overall.coverage:.3f} (target {low:.2f}-{high:.2f}): {'met' if ok else 'MISSED'}"
    )
    return ok, text


def write_backtest_md(
    path: Path,
    command: str,
    full: BacktestReport,
    subset: BacktestReport | None,
    card: ModelCard,
    verdict: str,
) -> Path:
    """``BACKTEST.md``: how the model was made and how it scored."""
    data = card.training_data
    lines = [
        f"# {card.name}:{card.version} backtest",
        "",
        "Produced by:",
        "",
        "```",
        command,
        "```",
        "",
        f"Training data: {data.source if data else '?'} ({data.meters if data else '?'} "
        f"simulated meters, {data.first_ts:%Y-%m-%d} .. {data.last_ts:%Y-%m-%d} used for "
        f"training and validation; the last {data.holdout_days:g} days held out)"
        if data
        else "Training data: unknown",
        "",
        f"Result: {verdict}",
        "",
        "MASE is scaled by each meter's in-sample weekly seasonal-naive MAE; coverage is the "
        "share of actuals inside p10..p90 (nominal 0.80).",
        "",
        full.to_markdown(),
    ]
    if subset is not None:
        lines += ["", "### With ETS (first meters only)", "", subset.to_markdown()]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def build(args: DefaultModelArgs, command: str) -> bool:
    """Run the recipe; ``True`` when the targets are met."""
    args.work.mkdir(parents=True, exist_ok=True)
    history_path = simulate(args)
    logger.info("history: %s", history_path)
    if not args.skip_train:
        config = TrainConfig(
            holdout_days=float(args.holdout_days),
            epochs=args.epochs,
            threads=args.threads,
            notes=(
                f"Default model: trained on {args.meters} simulated meters x {args.days} days "
                f"in {len(args.zones)} fleets ({', '.join(args.zones)}; FleetModel seeds "
                f"{args.seed}..{args.seed + len(args.zones) - 1}, from {args.start}), calendar "
                f"features in each meter's local time, last {args.holdout_days} days held out "
                "for the backtest."
            ),
        )
        report = train_main(history_path, args.out, config=config)
        logger.info(
            "trained: %d epochs (best %d), validation pinball %.4f, %.0f s",
            report.epochs_run,
            report.best_epoch,
            report.best_validation_pinball,
            report.seconds,
        )
    card = load_card(args.out / CARD_FILE)
    history = load_history(history_path)
    full, subset = backtest(history, card, args.out, args)
    ok, verdict = targets_met(full, card.name)
    logger.info(verdict)
    card = card.model_copy(update={"backtest": summary_of(full, command, history_path)})
    write_card(load_card_checked(card, args.out), args.out / CARD_FILE)
    write_backtest_md(args.out / "BACKTEST.md", command, full, subset, card, verdict)
    return ok


def load_card_checked(card: ModelCard, model_dir: Path) -> ModelCard:
    """Re-validate an updated card (``model_copy`` skips validation)."""
    return parse_card(card.model_dump(mode="json"), where=str(model_dir / CARD_FILE))


def parse_args(argv: Sequence[str]) -> DefaultModelArgs:
    d = DefaultModelArgs(out=Path("models/lstm/2"), work=Path("build/default-model"))
    parser = argparse.ArgumentParser(
        prog="python -m streamer.train.default_model", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--out", type=Path, default=d.out)
    parser.add_argument("--work", type=Path, default=d.work)
    parser.add_argument("--meters", type=int, default=d.meters)
    parser.add_argument("--days", type=int, default=d.days)
    parser.add_argument("--seed", type=int, default=d.seed)
    parser.add_argument("--start", default=d.start)
    parser.add_argument("--holdout-days", type=int, default=d.holdout_days)
    parser.add_argument("--origin-step-slots", type=int, default=d.origin_step_slots)
    parser.add_argument("--ets-meters", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=d.epochs)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument(
        "--zones",
        default=",".join(d.zones),
        help="comma-separated IANA zones, one simulated fleet each (meters split evenly)",
    )
    parser.add_argument("--skip-train", action="store_true", help="backtest the model in --out")
    ns = parser.parse_args(list(argv))
    return replace(
        d,
        out=ns.out,
        work=ns.work,
        meters=ns.meters,
        days=ns.days,
        seed=ns.seed,
        start=ns.start,
        holdout_days=ns.holdout_days,
        origin_step_slots=ns.origin_step_slots,
        ets_meters=ns.ets_meters,
        skip_train=ns.skip_train,
        epochs=ns.epochs,
        threads=ns.threads,
        zones=tuple(z.strip() for z in ns.zones.split(",") if z.strip()),
    )


def main(argv: Sequence[str] | None = None) -> int:
    args_list = sys.argv[1:] if argv is None else list(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    args = parse_args(args_list)
    command = shlex.join(["python", "-m", "streamer.train.default_model", *args_list])
    try:
        return 0 if build(args, command) else 1
    except TrainError as exc:
        logger.error("%s", exc)
        return 2


if __name__ == "__main__":
    sys.exit(main())

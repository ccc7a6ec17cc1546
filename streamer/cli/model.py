"""``streamer train`` and ``streamer backtest``: build a model version, compare forecasters."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
from faust.cli import AppCommand, option

from streamer.cli.errors import fail
from streamer.errors import StreamerError
from streamer.settings import Settings
from streamer.typed_decorators import typed

DAY_SECONDS = 86400


class _Progress:
    """A one-line progress bar on stderr (no extra dependency)."""

    def __init__(self, label: str) -> None:
        self.label = label
        self._last = -1

    def __call__(self, done: int, total: int) -> None:
        percent = int(100 * done / total) if total else 100
        if percent == self._last:
            return
        self._last = percent
        bar = "#" * (percent // 4)
        sys.stderr.write(f"\r{self.label} [{bar:<25}] {percent:3d}% ({done}/{total})")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()


def _write_json(path: Path, data: object) -> None:
    path.write_text(json.dumps(data, indent=2))


def register_model_commands(app: Any, settings: Settings) -> None:
    @typed(
        app.command(
            option(
                "--history",
                type=click.Path(exists=True, dir_okay=False, path_type=Path),
                required=True,
                help="CSV/CSV.GZ/Parquet with meter_id, ts, kwh.",
            ),
            option(
                "--out",
                type=click.Path(file_okay=False, path_type=Path),
                required=True,
                help="Version directory to write, e.g. models/lstm/2.",
            ),
            option("--epochs", type=int, default=None, help="Maximum epochs (early stopping)."),
            option("--seed", type=int, default=None),
            option("--validation-days", type=float, default=None),
            option(
                "--holdout-days",
                type=float,
                default=None,
                help="Days at the end never seen by training (kept for backtests).",
            ),
            option("--device", type=str, default=None, help="auto, cpu or cuda."),
            option(
                "--samples-per-epoch",
                type=int,
                default=None,
                help="Training windows drawn per epoch.",
            ),
            option("--hidden-size", type=int, default=None, help="LSTM hidden units."),
        )
    )
    async def train(
        self: AppCommand,
        history: Path,
        out: Path,
        epochs: int | None,
        seed: int | None,
        validation_days: float | None,
        holdout_days: float | None,
        device: str | None,
        samples_per_epoch: int | None,
        hidden_size: int | None,
    ) -> None:
        """Train the global LSTM on a history file and export it to ONNX with its model card."""
        try:
            from streamer.train.main import train_main
        except ImportError as exc:
            fail(f"training needs PyTorch ({exc}); install the extra: pip install -e '.[train]'")
        overrides: dict[str, Any] = {
            key: value
            for key, value in {
                "epochs": epochs,
                "seed": seed,
                "validation_days": validation_days,
                "holdout_days": holdout_days,
                "device": device,
                "samples_per_epoch": samples_per_epoch,
                "hidden_size": hidden_size,
                "resolution_seconds": settings.resolution_seconds,
            }.items()
            if value is not None
        }
        try:
            report = train_main(history, out, **overrides)
        except StreamerError as exc:
            fail(str(exc))
        click.echo(
            f"Wrote {report.model_path}, {report.card_path} and {report.triton_config_path}: "
            f"{report.epochs_run} epochs on {report.device} in {report.seconds:.0f} s, best epoch "
            f"{report.best_epoch} (validation pinball {report.best_validation_pinball:.4f}); "
            f"torch/ONNX parity max |diff| by batch size {report.parity_max_abs_diff}"
        )

    @typed(
        app.command(
            option(
                "--history",
                type=click.Path(exists=True, dir_okay=False, path_type=Path),
                required=True,
                help="CSV/CSV.GZ/Parquet with meter_id, ts, kwh.",
            ),
            option(
                "--models",
                type=str,
                default="lstm,seasonal_naive_week,seasonal_naive_day,ets",
                show_default=True,
                help="Comma-separated forecaster specs (lstm:1, ets, ...).",
            ),
            option("--holdout-days", type=float, default=14.0, show_default=True),
            option(
                "--origin-step-slots",
                type=int,
                default=12,
                show_default=True,
                help="Slots between forecast origins in the held-out period.",
            ),
            option("--max-meters", type=int, default=None, help="Use only the first N meters."),
            option(
                "--calibrate/--no-calibrate",
                default=True,
                show_default=True,
                help="Also score each model with its p10..p90 band calibrated online as a worker "
                "calibrates it (STREAMER_CALIBRATION_STEP), as '<model> (calibrated)'.",
            ),
            option(
                "--json-out",
                type=click.Path(dir_okay=False, path_type=Path),
                default=None,
                help="Also write the report as JSON here.",
            ),
        )
    )
    async def backtest(
        self: AppCommand,
        history: Path,
        models: str,
        holdout_days: float,
        origin_step_slots: int,
        max_meters: int | None,
        calibrate: bool,
        json_out: Path | None,
    ) -> None:
        """Rolling-origin backtest of forecasters over the held-out end of a history file."""
        from streamer.evaluate.backtest import run_backtest
        from streamer.evaluate.history import load_history
        from streamer.forecast.registry import builtin_factories, make_forecaster
        from streamer.inference.providers import parse_providers
        from streamer.inference.registration import register_lstm
        from streamer.pipeline.config import PipelineConfig

        try:
            factories = builtin_factories()
            register_lstm(
                settings.models_dir,
                parse_providers(settings.onnx_providers),
                factories=factories,
            )
            forecasters = [
                make_forecaster(
                    spec.strip(),
                    horizon_slots=settings.horizon_slots,
                    resolution_seconds=settings.resolution_seconds,
                    factories=factories,
                )
                for spec in models.split(",")
                if spec.strip()
            ]
            frame = load_history(history)
            report = run_backtest(
                frame,
                forecasters,
                resolution_seconds=settings.resolution_seconds,
                lookback_slots=settings.lookback_slots,
                horizon_slots=settings.horizon_slots,
                holdout_slots=int(holdout_days * DAY_SECONDS / settings.resolution_seconds),
                origin_step_slots=origin_step_slots,
                max_meters=max_meters,
                progress=_Progress("backtest"),
                calibration=PipelineConfig.from_settings(settings).record.calibration
                if calibrate
                else None,
            )
        except StreamerError as exc:
            fail(str(exc))
        click.echo(report.to_markdown())
        if json_out is not None:
            _write_json(json_out, report.to_json())
            click.echo(f"JSON report written to {json_out}")

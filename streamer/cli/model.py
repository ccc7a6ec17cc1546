"""``streamer train`` and ``streamer backtest``: build a model version, compare forecasters."""

from __future__ import annotations

import asyncio
import functools
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import click
from faust.cli import AppCommand, option

from streamer.cli.errors import fail
from streamer.errors import StreamerError
from streamer.settings import Settings
from streamer.train.config import TrainConfig
from streamer.train.errors import TrainingStopped
from streamer.typed_decorators import typed

DAY_SECONDS = 86400
_SIGNAL_EXIT: dict[int, int] = {int(signal.SIGINT): 130, int(signal.SIGTERM): 143}


def _train_env(name: str) -> dict[str, Any]:
    return {"envvar": f"STREAMER_TRAIN_{name}", "show_envvar": True, "show_default": True}


class _Progress:
    """A one-line progress bar on stderr (no extra dependency): the model being scored (set by
    :meth:`model` before each step), the share done and an ETA from the mean step time so far."""

    def __init__(self, label: str) -> None:
        self.label = label
        self._model = ""
        self._done, self._total = 0, 0
        self._last: tuple[int, str] = (-1, "")
        self._started = time.monotonic()
        self._width = 0

    def model(self, name: str) -> None:
        self._model = name
        if self._total:
            self._draw()

    def __call__(self, done: int, total: int) -> None:
        self._done, self._total = done, total
        self._draw()

    def _draw(self) -> None:
        done, total = self._done, self._total
        percent = int(100 * done / total) if total else 100
        finished = done >= total
        if (percent, self._model) == self._last and not finished:
            return
        self._last = (percent, self._model)
        elapsed = time.monotonic() - self._started
        if finished:
            tail = f"done in {_duration(elapsed)}"
        else:
            eta = _duration(elapsed / done * (total - done)) if done else "?"
            tail = f"ETA {eta}, scoring {self._model}"
        bar = "#" * (percent // 4)
        line = f"{self.label} [{bar:<25}] {percent:3d}% ({done}/{total}) {tail}"
        sys.stderr.write(f"\r{line:<{self._width}}")
        self._width = len(line)
        if finished:
            sys.stderr.write("\n")
        sys.stderr.flush()


def _duration(seconds: float) -> str:
    """``1:02:03`` or ``2:03``."""
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _write_json(path: Path, data: object) -> None:
    path.write_text(json.dumps(data, indent=2))


def register_model_commands(app: Any, settings: Settings) -> None:
    defaults = TrainConfig()

    @typed(
        app.command(
            option(
                "--history",
                type=click.Path(exists=True, dir_okay=False, path_type=Path),
                required=True,
                **_train_env("HISTORY"),
                help="CSV/CSV.GZ/Parquet with meter_id, ts, kwh.",
            ),
            option(
                "--out",
                type=click.Path(file_okay=False, path_type=Path),
                required=True,
                **_train_env("OUT"),
                help="Version directory to write, e.g. models/lstm/2.",
            ),
            option(
                "--epochs",
                type=click.IntRange(min=1),
                default=defaults.epochs,
                **_train_env("EPOCHS"),
                help="Maximum epochs (early stopping).",
            ),
            option(
                "--patience",
                type=click.IntRange(min=1),
                default=defaults.patience,
                **_train_env("PATIENCE"),
                help="Stop after this many epochs without a better validation loss.",
            ),
            option("--seed", type=int, default=defaults.seed, **_train_env("SEED")),
            option(
                "--lookback-slots",
                type=click.IntRange(min=1),
                default=settings.lookback_slots,
                **_train_env("LOOKBACK_SLOTS"),
                help="Input slots (default: STREAMER_LOOKBACK_SLOTS); a multiple of "
                f"{defaults.patch_slots}.",
            ),
            option(
                "--horizon-slots",
                type=click.IntRange(min=1),
                default=settings.horizon_slots,
                **_train_env("HORIZON_SLOTS"),
                help="Slots forecast ahead (default: STREAMER_HORIZON_SLOTS), at "
                "STREAMER_RESOLUTION_SECONDS per slot.",
            ),
            option(
                "--validation-days",
                type=float,
                default=defaults.validation_days,
                **_train_env("VALIDATION_DAYS"),
                help="Days at the end of each meter's own history used for early stopping.",
            ),
            option(
                "--holdout-days",
                type=float,
                default=defaults.holdout_days,
                **_train_env("HOLDOUT_DAYS"),
                help="Days at the end never seen by training (kept for backtests).",
            ),
            option(
                "--device",
                type=click.Choice(["auto", "cpu", "cuda"]),
                default=defaults.device,
                **_train_env("DEVICE"),
                help="auto: cuda when torch sees a GPU, else cpu.",
            ),
            option(
                "--samples-per-epoch",
                type=click.IntRange(min=1),
                default=defaults.samples_per_epoch,
                **_train_env("SAMPLES_PER_EPOCH"),
                help="Training windows drawn per epoch.",
            ),
            option(
                "--hidden-size",
                type=click.IntRange(min=1),
                default=defaults.hidden_size,
                **_train_env("HIDDEN_SIZE"),
                help="LSTM hidden units.",
            ),
            option(
                "--time-zone",
                type=str,
                default=settings.time_zone,
                **_train_env("TIME_ZONE"),
                help="IANA zone of meters the history's time_zone column does not place "
                "(default: STREAMER_TIME_ZONE).",
            ),
            option(
                "--calendar-time",
                type=click.Choice(["local", "utc"]),
                default=defaults.calendar_time,
                **_train_env("CALENDAR_TIME"),
                help="Clock of the calendar features: each meter's local time, or UTC (how "
                "lstm:1 was trained).",
            ),
            option(
                "--init-from",
                type=str,
                default=None,
                **_train_env("INIT_FROM"),
                help="Fine-tune a trained version (lstm:2, or its directory): start from its "
                "weights, with its lookback, horizon, features and layer sizes.",
            ),
            option(
                "--keep-best-on-stop/--no-keep-best-on-stop",
                default=False,
                **_train_env("KEEP_BEST_ON_STOP"),
                help="On Ctrl-C or SIGTERM, export the best epoch so far (with its card) "
                "instead of exiting without a model.",
            ),
        )
    )
    async def train(
        self: AppCommand,
        history: Path,
        out: Path,
        epochs: int,
        patience: int,
        seed: int,
        lookback_slots: int,
        horizon_slots: int,
        validation_days: float,
        holdout_days: float,
        device: str,
        samples_per_epoch: int,
        hidden_size: int,
        time_zone: str,
        calendar_time: str,
        init_from: str | None,
        keep_best_on_stop: bool,
    ) -> None:
        """Train the global LSTM on a history file and export it to ONNX with its model card.

        Ctrl-C or SIGTERM stops it within seconds: without a model (exit 130 / 143), or with
        --keep-best-on-stop, exporting the best epoch so far.
        """
        try:
            from streamer.train.main import train_main
        except ImportError as exc:
            fail(f"training needs PyTorch ({exc}); install the extra: pip install -e '.[train]'")
        overrides: dict[str, Any] = {
            "epochs": epochs,
            "patience": patience,
            "seed": seed,
            "lookback_slots": lookback_slots,
            "horizon_slots": horizon_slots,
            "validation_days": validation_days,
            "holdout_days": holdout_days,
            "device": device,
            "samples_per_epoch": samples_per_epoch,
            "hidden_size": hidden_size,
            "time_zone": time_zone,
            "calendar_time": calendar_time,
            "resolution_seconds": settings.resolution_seconds,
        }
        if init_from is not None:
            from streamer.modelrepo.layout import version_dir_of

            try:
                overrides["init_from"] = version_dir_of(settings.models_dir, init_from)
            except StreamerError as exc:
                fail(f"--init-from: {exc}")
        stop = threading.Event()
        received: list[int] = []

        def on_signal(signum: int) -> None:
            if received:  # a second Ctrl-C: leave now
                os._exit(_SIGNAL_EXIT[received[0]])
            received.append(signum)
            stop.set()
            name = signal.Signals(signum).name
            then = (
                "exporting the best epoch so far"
                if keep_best_on_stop
                else "exiting without writing a model"
            )
            click.echo(
                f"\n{name} received: stopping training after this batch, {then} "
                "(again to exit at once).",
                err=True,
            )

        loop = asyncio.get_running_loop()
        for sig in _SIGNAL_EXIT:
            loop.add_signal_handler(sig, on_signal, sig)
        try:
            report = await asyncio.to_thread(
                functools.partial(
                    train_main,
                    history,
                    out,
                    on_summary=lambda summary: click.echo(summary.describe()),
                    stop=stop,
                    keep_best_on_stop=keep_best_on_stop,
                    **overrides,
                )
            )
        except TrainingStopped as exc:
            code = _SIGNAL_EXIT[received[0]] if received else 130
            click.echo(f"streamer: {exc}", err=True)
            raise SystemExit(code) from None
        except StreamerError as exc:
            fail(str(exc))
        finally:
            for sig in _SIGNAL_EXIT:
                loop.remove_signal_handler(sig)
        if report.stopped:
            click.echo(
                f"Stopped by {signal.Signals(received[0]).name if received else 'a signal'} "
                f"after {report.epochs_run} epochs: exported the best epoch so far "
                f"({report.best_epoch})."
            )
        click.echo(
            f"Wrote {report.model_path}, {report.card_path} and {report.triton_config_path}: "
            f"{report.epochs_run} epochs on {report.device} in {report.seconds:.0f} s, best epoch "
            f"{report.best_epoch} (validation pinball {report.best_validation_pinball:.4f}); "
            f"torch/ONNX parity max |diff| by batch size {report.parity_max_abs_diff}"
        )
        if report.stopped:
            raise SystemExit(_SIGNAL_EXIT[received[0]] if received else 130)

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
                help="Comma-separated forecaster specs (lstm:1, ets, ...); several versions of "
                "one model (lstm:1,lstm:4) are reported as name:version.",
            ),
            option("--holdout-days", type=float, default=14.0, show_default=True),
            option(
                "--holdout-per-meter/--pooled-holdout",
                default=True,
                show_default=True,
                help="Hold out the last --holdout-days of each meter's own history (histories "
                "may end on different dates), or the last days of the pooled history.",
            ),
            option(
                "--origin-step-slots",
                type=int,
                default=12,
                show_default=True,
                help="Slots between forecast origins in the held-out period (not with "
                "--day-ahead).",
            ),
            option(
                "--day-ahead",
                is_flag=True,
                default=False,
                help="Day-ahead protocol: one origin per day at local midnight (--time-zone), "
                "horizon one day of slots (24 h).",
            ),
            option(
                "--time-zone",
                type=str,
                default=settings.time_zone,
                show_default=True,
                help="IANA zone of meters the history's time_zone column does not place "
                "(default: STREAMER_TIME_ZONE); --day-ahead origins fall at its midnight (e.g. "
                "Australia/Sydney).",
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
                "--groups",
                "groups_file",
                type=click.Path(exists=True, dir_okay=False, path_type=Path),
                default=None,
                help="Also forecast the groups of this membership CSV (meter_id,group_id,kind; "
                "e.g. from 'streamer simulate --groups-out'): each group's total from its "
                "members' expected values, its band calibrated online against realised totals, "
                "scored per kind after a week's warm-up.",
            ),
            option(
                "--json-out",
                type=click.Path(dir_okay=False, path_type=Path),
                default=None,
                help="Also write the report as JSON here.",
            ),
            option(
                "--plot",
                type=click.Path(file_okay=False, path_type=Path),
                default=None,
                help="Write a PNG per chosen meter here: actuals, each model's p50 and the "
                "first model's p10-p90 band (needs the plot extra: matplotlib).",
            ),
            option(
                "--plot-meters",
                type=str,
                default="4",
                show_default=True,
                help="Meters for --plot: comma-separated ids, or a number N for the first N.",
            ),
        )
    )
    async def backtest(
        self: AppCommand,
        history: Path,
        models: str,
        holdout_days: float,
        holdout_per_meter: bool,
        origin_step_slots: int,
        day_ahead: bool,
        time_zone: str,
        max_meters: int | None,
        calibrate: bool,
        groups_file: Path | None,
        json_out: Path | None,
        plot: Path | None,
        plot_meters: str,
    ) -> None:
        """Rolling-origin backtest of forecasters over the held-out end of a history file."""
        from streamer.evaluate.backtest import run_backtest
        from streamer.evaluate.forecast_plot import ForecastPlots
        from streamer.evaluate.history import load_history
        from streamer.forecast.registry import builtin_factories, make_forecaster
        from streamer.groups.membership import members_of, read_membership_csv
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
            groups = None if groups_file is None else members_of(read_membership_csv(groups_file))
            progress = _Progress("backtest")
            plots = None
            if plot is not None:
                chosen = plot_meters.strip()
                plots = ForecastPlots(
                    int(chosen)
                    if chosen.isdigit()
                    else [m.strip() for m in chosen.split(",") if m.strip()]
                )
            report = run_backtest(
                frame,
                forecasters,
                resolution_seconds=settings.resolution_seconds,
                lookback_slots=settings.lookback_slots,
                horizon_slots=settings.horizon_slots,
                holdout_slots=int(holdout_days * DAY_SECONDS / settings.resolution_seconds),
                origin_step_slots=origin_step_slots,
                max_meters=max_meters,
                progress=progress,
                on_model=progress.model,
                calibration=PipelineConfig.from_settings(settings).record.calibration
                if calibrate
                else None,
                holdout_per_meter=holdout_per_meter,
                day_ahead_zone=time_zone if day_ahead else None,
                time_zone=time_zone,
                on_forecast=plots,
                groups=groups,
            )
            pictures = (
                [] if plots is None or plot is None else plots.write(plot, time_zone=time_zone)
            )
        except StreamerError as exc:
            fail(str(exc))
        click.echo(report.to_markdown())
        if json_out is not None:
            _write_json(json_out, report.to_json())
            click.echo(f"JSON report written to {json_out}")
        if plots is not None:
            if plots.missing:
                click.echo(
                    f"--plot-meters: not in the history: {', '.join(plots.missing)}", err=True
                )
            click.echo(f"{len(pictures)} plot(s) written to {plot}")

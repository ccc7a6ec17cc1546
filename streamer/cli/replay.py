"""``streamer replay``: a user's history file to the readings topic, paced at a speedup."""

from __future__ import annotations

import asyncio
import functools
import signal
from pathlib import Path
from typing import Any

import click
from faust.cli import AppCommand, option

from streamer.cli.errors import fail
from streamer.errors import StreamerError
from streamer.settings import Settings
from streamer.typed_decorators import typed


def _env(name: str) -> dict[str, Any]:
    return {"envvar": f"STREAMER_REPLAY_{name}", "show_envvar": True}


def register_replay_command(app: Any, settings: Settings) -> None:
    @typed(
        app.command(
            option(
                "--history",
                type=click.Path(dir_okay=False, path_type=Path),
                required=True,
                **_env("HISTORY"),
                help="CSV/CSV.GZ/Parquet with columns meter_id, ts, kwh (what `streamer "
                "simulate --history-out` writes and `streamer train --history` reads).",
            ),
            option(
                "--speedup",
                type=float,
                default=3600.0,
                show_default=True,
                **_env("SPEEDUP"),
                help="Simulated seconds per wall second (0: as fast as possible).",
            ),
            option(
                "--meters",
                type=int,
                default=None,
                **_env("METERS"),
                help="Replay only the first N meter ids (sorted).",
            ),
            option(
                "--start",
                type=str,
                default=None,
                **_env("START"),
                help="Skip readings dated before this time (RFC 3339; no offset: UTC).",
            ),
            option(
                "--end",
                type=str,
                default=None,
                **_env("END"),
                help="Skip readings dated after this time (RFC 3339; no offset: UTC).",
            ),
            option(
                "--meter-type",
                type=click.Choice(["auto", "consumption", "net"]),
                default="auto",
                show_default=True,
                **_env("METER_TYPE"),
                help="meter_type sent; auto: net for a meter with a negative kwh, else "
                "consumption.",
            ),
        )
    )
    async def replay(
        self: AppCommand,
        history: Path,
        speedup: float,
        meters: int | None,
        start: str | None,
        end: str | None,
        meter_type: str,
    ) -> None:
        """Send a history file's readings to the readings topic in time order, keyed by meter.

        Each timestamp's readings go out (ts - first ts) / SPEEDUP wall seconds after the
        start, to STREAMER_READINGS_TOPIC at STREAMER_KAFKA_BOOTSTRAP.
        """
        from streamer.evaluate.history import load_history
        from streamer.kafka_security import aiokafka_security
        from streamer.replay.runner import run_replay
        from streamer.replay.schedule import parse_time, prepare_rows, send_schedule
        from streamer.simulate.producer import kafka_producer
        from streamer.simulate.wire import rfc3339
        from streamer.timeutil import now_ms

        try:
            start_ms = parse_time(start, "--start") if start else None
            end_ms = parse_time(end, "--end") if end else None
            rows = prepare_rows(
                load_history(history),
                meters=meters,
                start_ms=start_ms,
                end_ms=end_ms,
                meter_type=meter_type,
            )
            steps = send_schedule(rows, speedup)
        except StreamerError as exc:
            fail(str(exc))
        if not steps:
            fail(f"{history}: no readings to replay (check --meters, --start and --end)")
        pace = "as fast as possible" if speedup == 0 else f"speedup {speedup:g}"
        click.echo(
            f"Replaying {len(rows):,} readings of {rows.meters:,} meters "
            f"({rfc3339(steps[0].ts_ms)} .. {rfc3339(steps[-1].ts_ms)}, {len(steps):,} "
            f"timestamps) from {history} into {settings.readings_topic} at "
            f"{settings.kafka_bootstrap}, {pace}"
            + (f" (about {steps[-1].at_seconds:,.0f} s)" if speedup else "")
            + "; Ctrl-C stops."
        )
        if rows.skipped_empty:
            click.echo(f"Skipping {rows.skipped_empty:,} rows with an empty kwh.")
        future = int((rows.ts_ms > now_ms() + settings.future_tolerance_seconds * 1000).sum())
        if future:
            click.echo(
                f"Warning: {future:,} readings are dated more than "
                f"STREAMER_FUTURE_TOLERANCE_SECONDS ({settings.future_tolerance_seconds}) after "
                "now; workers dead-letter them.",
                err=True,
            )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        factory = functools.partial(kafka_producer, security=aiokafka_security(settings))
        try:
            summary = await run_replay(
                rows,
                steps,
                factory(settings.kafka_bootstrap),
                settings.readings_topic,
                bootstrap_servers=settings.kafka_bootstrap,
                on_progress=lambda progress: click.echo(progress.describe()),
                stop=stop,
            )
        except StreamerError as exc:
            fail(str(exc))
        click.echo(summary.describe())

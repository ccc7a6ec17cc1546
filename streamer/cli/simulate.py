"""``streamer simulate``: a synthetic fleet producing readings to Kafka and/or history files."""

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

DAY_SECONDS = 86400


def _env(name: str) -> dict[str, Any]:
    return {"envvar": f"STREAMER_SIM_{name}", "show_envvar": True}


def register_simulate_command(app: Any, settings: Settings) -> None:
    @typed(
        app.command(
            option(
                "--meters",
                type=int,
                default=500,
                show_default=True,
                **_env("METERS"),
                help="Number of meters.",
            ),
            option(
                "--rate",
                type=float,
                default=0.0,
                show_default=True,
                **_env("RATE"),
                help="Max messages per second (0: as fast as the clock allows).",
            ),
            option(
                "--speedup",
                type=float,
                default=10000.0,
                show_default=True,
                **_env("SPEEDUP"),
                help="Simulated seconds per wall second while catching up to now.",
            ),
            option("--seed", type=int, default=7, show_default=True, **_env("SEED")),
            option(
                "--backfill-days",
                type=float,
                default=8.0,
                show_default=True,
                **_env("BACKFILL_DAYS"),
                help="Start this many days before now.",
            ),
            option(
                "--duration-seconds",
                type=float,
                default=0.0,
                show_default=True,
                **_env("DURATION_SECONDS"),
                help="Stop after this much wall time (0: never).",
            ),
            option(
                "--missing-rate",
                type=float,
                default=0.01,
                show_default=True,
                **_env("MISSING_RATE"),
            ),
            option(
                "--duplicate-rate",
                type=float,
                default=0.01,
                show_default=True,
                **_env("DUPLICATE_RATE"),
            ),
            option(
                "--out-of-order-rate",
                type=float,
                default=0.02,
                show_default=True,
                **_env("OUT_OF_ORDER_RATE"),
            ),
            option(
                "--malformed-rate",
                type=float,
                default=0.001,
                show_default=True,
                **_env("MALFORMED_RATE"),
            ),
            option(
                "--history-out",
                type=click.Path(dir_okay=False, path_type=Path),
                default=None,
                **_env("HISTORY_OUT"),
                help="Write clean history (meter_id, ts, kwh) to this .csv/.csv.gz/.parquet.",
            ),
            option(
                "--history-days",
                type=float,
                default=120.0,
                show_default=True,
                **_env("HISTORY_DAYS"),
                help="Days of history for --history-out.",
            ),
            option(
                "--history-end",
                type=str,
                default=None,
                **_env("HISTORY_END"),
                help="End of --history-out (RFC 3339, e.g. 2026-10-11T00:00:00Z), so that a "
                "file can be made again byte for byte; default: now.",
            ),
            option(
                "--groups-out",
                type=click.Path(dir_okay=False, path_type=Path),
                default=None,
                **_env("GROUPS_OUT"),
                help="Write the fleet's network to this CSV (meter_id,group_id,kind; for "
                "'streamer backtest --groups'): each meter on one of --feeders feeders, the "
                "feeders in --substations substations.",
            ),
            option(
                "--feeders",
                type=click.IntRange(min=1),
                default=20,
                show_default=True,
                **_env("FEEDERS"),
                help="Feeders in --groups-out (meters placed by a hash of the seed, sizes "
                "balanced).",
            ),
            option(
                "--substations",
                type=click.IntRange(min=1),
                default=4,
                show_default=True,
                **_env("SUBSTATIONS"),
                help="Substations in --groups-out (the feeders in order, sizes balanced).",
            ),
            option(
                "--meter-prefix",
                type=str,
                default="m-",
                show_default=True,
                **_env("METER_PREFIX"),
                help="Meter ids are this prefix and a zero-padded index (m-000042).",
            ),
            option(
                "--time-zone",
                type=str,
                default="UTC",
                show_default=True,
                **_env("TIME_ZONE"),
                help="IANA zone the fleet lives in (e.g. Europe/London, Australia/Sydney): "
                "schedules follow its clocks, the sun its standard time.",
            ),
            option(
                "--southern-hemisphere/--northern-hemisphere",
                default=None,
                **_env("SOUTHERN_HEMISPHERE"),
                help="Seasons of the southern (winter in June-August) or northern hemisphere "
                "[default: inferred: southern when the zone keeps daylight saving in January].",
            ),
            option(
                "--no-send",
                is_flag=True,
                default=False,
                help="Only write --history-out and --groups-out; produce nothing to Kafka.",
            ),
        )
    )
    async def simulate(
        self: AppCommand,
        meters: int,
        rate: float,
        speedup: float,
        seed: int,
        backfill_days: float,
        duration_seconds: float,
        missing_rate: float,
        duplicate_rate: float,
        out_of_order_rate: float,
        malformed_rate: float,
        history_out: Path | None,
        history_days: float,
        history_end: str | None,
        groups_out: Path | None,
        feeders: int,
        substations: int,
        meter_prefix: str,
        time_zone: str,
        southern_hemisphere: bool | None,
        no_send: bool,
    ) -> None:
        """Simulate a fleet of smart meters (households, small businesses, rooftop PV)."""
        from streamer.kafka_security import aiokafka_security
        from streamer.simulate.faults import FaultConfig
        from streamer.simulate.fleet import FleetModel
        from streamer.simulate.history import generate_history, write_history
        from streamer.simulate.producer import kafka_producer
        from streamer.simulate.region import zone_of
        from streamer.simulate.runner import SimulationConfig, run_simulation
        from streamer.timeutil import format_ts, now_ms

        try:
            zone_of(time_zone)
        except StreamerError as exc:
            fail(f"--time-zone (STREAMER_SIM_TIME_ZONE): {exc}")
        try:
            if history_out is not None:
                model = FleetModel(
                    meters,
                    seed,
                    settings.resolution_seconds,
                    id_prefix=meter_prefix,
                    time_zone=time_zone,
                    southern_hemisphere=southern_hemisphere,
                )
                end_ms = (
                    (now_ms() if history_end is None else _history_end_ms(history_end))
                    // (settings.resolution_seconds * 1000)
                    * (settings.resolution_seconds * 1000)
                )
                start_ms = end_ms - int(history_days * DAY_SECONDS * 1000)
                click.echo(
                    f"Writing {history_days:g} days of history for {meters} meters in "
                    f"{time_zone} ({format_ts(start_ms)} .. {format_ts(end_ms)}) to "
                    f"{history_out} ..."
                )
                frame = generate_history(model, start_ms, end_ms)
                write_history(history_out, frame)
                click.echo(f"Wrote {len(frame):,} rows to {history_out}.")
            if groups_out is not None:
                _write_groups(groups_out, meters, seed, meter_prefix, feeders, substations)
            if no_send:
                return
            config = SimulationConfig(
                meters=meters,
                seed=seed,
                resolution_seconds=settings.resolution_seconds,
                backfill_seconds=int(backfill_days * DAY_SECONDS),
                speedup=speedup,
                rate_limit_per_second=rate,
                duration_seconds=duration_seconds or None,
                faults=FaultConfig(
                    missing_rate=missing_rate,
                    duplicate_rate=duplicate_rate,
                    out_of_order_rate=out_of_order_rate,
                    malformed_rate=malformed_rate,
                ),
                meter_id_prefix=meter_prefix,
                time_zone=time_zone,
                southern_hemisphere=southern_hemisphere,
            )
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            click.echo(
                f"Simulating {meters} meters into {settings.readings_topic} at "
                f"{settings.kafka_bootstrap} (seed {seed}); Ctrl-C stops."
            )
            summary = await run_simulation(
                config,
                settings.kafka_bootstrap,
                settings.readings_topic,
                on_progress=lambda progress: click.echo(progress.describe()),
                stop=stop,
                producer_factory=functools.partial(
                    kafka_producer, security=aiokafka_security(settings)
                ),
            )
            click.echo(summary.describe())
        except StreamerError as exc:
            fail(str(exc))


def _write_groups(
    path: Path, meters: int, seed: int, meter_prefix: str, feeders: int, substations: int
) -> None:
    """``--groups-out``: the fleet's feeders and substations as a membership CSV."""
    from streamer.groups.membership import write_membership_csv
    from streamer.simulate.fleet import FleetModel
    from streamer.simulate.hierarchy import feeder_hierarchy

    ids = FleetModel(meters, seed, id_prefix=meter_prefix).meter_ids.tolist()
    write_membership_csv(path, feeder_hierarchy(ids, seed, feeders, substations))
    click.echo(
        f"Wrote {meters} meters on {feeders} feeders in {substations} substations to {path}."
    )


def _history_end_ms(text: str) -> int:
    """``--history-end`` as UTC epoch ms; exits 2 with the expected form when unreadable."""
    from streamer.contract.reading import parse_ts_ms

    try:
        return parse_ts_ms(text)
    except StreamerError:
        fail(
            f"--history-end {text!r}: write an RFC 3339 time with an offset, e.g. "
            "2026-10-11T00:00:00Z"
        )

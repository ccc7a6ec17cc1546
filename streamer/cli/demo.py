"""``streamer demo``: local Kafka, a worker, the simulator, and a live summary in the terminal.

The worker and the simulator run as child processes (their logs go to
``<state_dir>/demo/``); the summary reads the worker's ``/metrics`` every two seconds.

Readings flow for the whole run: the simulator's clock starts far enough in the past that at the
demo's speedup it is still behind the wall clock when the demo stops (:func:`plan_simulator`), so
it never reaches the present, where it would send one slot per real half hour, and no reading is
dated in the future. Each run simulates meters of its own (ids prefixed with the run's start
time): a meter's state only moves forward in event time, so a second run reusing the first run's
meters would have all its (older) readings refused as too late.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import click
from faust.cli import AppCommand, option
from prometheus_client.parser import text_string_to_metric_families

from streamer.cli.errors import fail
from streamer.errors import StreamerError
from streamer.settings import Settings
from streamer.typed_decorators import typed


@dataclass(frozen=True, slots=True)
class MetricsSnapshot:
    at: float
    consumed: float
    forecasts: float
    dead_letters: dict[str, float]
    fallback_forecasts: float

    @property
    def dead_letters_total(self) -> float:
        return sum(self.dead_letters.values())


def parse_metrics(text: str, at: float) -> MetricsSnapshot:
    consumed = forecasts = fallback = 0.0
    dead: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "streamer_readings_consumed_total":
                consumed += sample.value
            elif sample.name == "streamer_forecasts_total":
                forecasts += sample.value
                if sample.labels.get("fallback") == "true":
                    fallback += sample.value
            elif sample.name == "streamer_dead_letters_total" and sample.value:
                dead[sample.labels["reason"]] = sample.value
    return MetricsSnapshot(at, consumed, forecasts, dead, fallback)


def scrape(url: str, timeout_seconds: float = 2.0) -> MetricsSnapshot | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout_seconds) as response:
            return parse_metrics(response.read().decode(), time.monotonic())
    except OSError:
        return None


def summary_line(previous: MetricsSnapshot | None, current: MetricsSnapshot, elapsed: float) -> str:
    readings_rate = forecasts_rate = 0.0
    if previous is not None and current.at > previous.at:
        span = current.at - previous.at
        readings_rate = (current.consumed - previous.consumed) / span
        forecasts_rate = (current.forecasts - previous.forecasts) / span
    reasons = ", ".join(
        f"{reason} {int(count)}" for reason, count in sorted(current.dead_letters.items())
    )
    return (
        f"[{elapsed:6.0f}s] readings {readings_rate:8.0f}/s (total {int(current.consumed):,}) | "
        f"forecasts {forecasts_rate:7.0f}/s (total {int(current.forecasts):,}) | "
        f"dead letters {int(current.dead_letters_total):,}" + (f" ({reasons})" if reasons else "")
    )


class DemoConfigError(StreamerError):
    """A demo option has a value the demo cannot use."""


#: Without --duration-seconds: readings flow this long, then the simulator follows the wall clock.
FLOW_SECONDS_UNTIL_STOPPED: Final = 3600.0
#: The simulator's clock starts this much wall time (at the speedup) further back than needed.
CLOCK_MARGIN_SECONDS: Final = 60.0
#: The simulator stops by itself this long after the demo should have stopped it.
SIMULATOR_GRACE_SECONDS: Final = 30.0


@dataclass(frozen=True, slots=True)
class SimulatorPlan:
    """How the demo runs the simulator so that readings flow until the demo stops."""

    backfill_days: float
    """The simulated clock starts this long before now."""
    duration_seconds: float
    """The simulator stops by itself after this long (0: never), a safety net."""
    flow_seconds: float
    """Wall seconds before the simulated clock would reach the present."""
    meter_prefix: str

    def simulate_args(self, meters: int, seed: int, speedup: float) -> list[str]:
        return [
            "simulate",
            "--meters",
            str(meters),
            "--seed",
            str(seed),
            "--speedup",
            repr(speedup),
            "--backfill-days",
            repr(self.backfill_days),
            "--duration-seconds",
            repr(self.duration_seconds),
            "--meter-prefix",
            self.meter_prefix,
        ]


def plan_simulator(duration_seconds: float, speedup: float, wall_time: float) -> SimulatorPlan:
    """The clock starts ``(duration + margin) * speedup`` seconds back, so it stays in the past.

    ``duration_seconds`` 0 (until Ctrl-C): readings flow for :data:`FLOW_SECONDS_UNTIL_STOPPED`,
    then one slot per real slot. ``wall_time`` (epoch seconds) names the run's meters.
    """
    if not speedup > 0:
        raise DemoConfigError(f"--speedup {speedup}: use a positive factor (1 = real time)")
    if duration_seconds < 0:
        raise DemoConfigError(
            f"--duration-seconds {duration_seconds}: use a positive number of seconds, "
            "or 0 to run until Ctrl-C"
        )
    flow = duration_seconds or FLOW_SECONDS_UNTIL_STOPPED
    backfill_seconds = (flow + CLOCK_MARGIN_SECONDS) * speedup
    stamp = time.strftime("%y%m%d%H%M%S", time.gmtime(wall_time))
    return SimulatorPlan(
        backfill_days=backfill_seconds / 86400.0,
        duration_seconds=duration_seconds + SIMULATOR_GRACE_SECONDS if duration_seconds else 0.0,
        flow_seconds=flow + CLOCK_MARGIN_SECONDS,
        meter_prefix=f"demo{stamp}-",
    )


def _spawn(args: list[str], log_path: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    log_file = log_path.open("ab")
    return subprocess.Popen(
        args,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )


def _stop(proc: subprocess.Popen[bytes], timeout_seconds: float = 20.0) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout_seconds)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def register_demo_command(app: Any, settings: Settings) -> None:
    @typed(
        app.command(
            option("--meters", type=int, default=500, show_default=True, help="Simulated meters."),
            option(
                "--duration-seconds",
                type=float,
                default=600.0,
                show_default=True,
                help="Readings flow and the demo stops by itself after this long (0: run until "
                "Ctrl-C; readings flow for the first hour, then one slot per real half hour).",
            ),
            option(
                "--speedup",
                type=float,
                default=10000.0,
                show_default=True,
                help="Simulated seconds per wall second.",
            ),
            option("--seed", type=int, default=7, show_default=True),
            option(
                "--keep-kafka/--stop-kafka",
                default=True,
                show_default=True,
                help="Leave the local broker running when the demo ends.",
            ),
        )
    )
    async def demo(
        self: AppCommand,
        meters: int,
        duration_seconds: float,
        speedup: float,
        seed: int,
        keep_kafka: bool,
    ) -> None:
        """The live demo: local Kafka, simulator, worker and a live summary."""
        from streamer.kafka_admin import ensure_topics
        from streamer.localkafka.broker import LocalKafka, port_open
        from streamer.simulate.wire import rfc3339

        try:
            plan = plan_simulator(duration_seconds, speedup, time.time())
        except StreamerError as exc:
            fail(str(exc))

        demo_dir = settings.state_dir / "demo"
        demo_dir.mkdir(parents=True, exist_ok=True)
        broker = LocalKafka(settings, say=lambda m: click.echo(f"[setup] {m}"))
        try:
            was_running = broker.status().running or port_open(broker.host, broker.port)
            if was_running and not broker.status().running:
                click.echo(f"[setup] using the Kafka already at {settings.kafka_bootstrap}")
            else:
                broker.start()
            await ensure_topics(settings)
            groups = await _publish_demo_groups(settings, meters, seed, plan.meter_prefix)
        except StreamerError as exc:
            fail(str(exc))
        click.echo("[setup] topics ready")
        click.echo(
            f"[setup] the meters in {groups} feeders and one substation ({settings.groups_topic}): "
            f"group forecasts on {settings.group_forecasts_topic}, e.g. "
            f"http://{settings.web_host}:{settings.web_port}/groups/feeder-0/forecast"
        )
        env = dict(os.environ)
        python = sys.executable
        worker_log = demo_dir / "worker.log"
        sim_log = demo_dir / "simulator.log"
        worker = _spawn([python, "-m", "streamer", "worker", "-l", "info"], worker_log, env)
        simulator = _spawn(
            [python, "-m", "streamer", *plan.simulate_args(meters, seed, speedup)], sim_log, env
        )
        first_ms = int(time.time() - plan.backfill_days * 86400.0) * 1000
        click.echo(f"[setup] worker pid {worker.pid} (log {worker_log})")
        click.echo(f"[setup] simulator pid {simulator.pid} (log {sim_log})")
        click.echo(
            f"[demo] {meters} meters ({plan.meter_prefix}...) from {rfc3339(first_ms)} at "
            f"{speedup:g}x: "
            + (
                f"readings flow for {duration_seconds:g} s, then the demo stops"
                if duration_seconds
                else f"readings flow for {plan.flow_seconds:g} s, then one slot per real slot"
            )
        )
        click.echo(
            f"[demo] forecasts on topic {settings.forecasts_topic}; metrics at "
            f"http://{settings.web_host}:{settings.web_port}/metrics; Ctrl-C stops"
        )
        url = f"http://{settings.web_host}:{settings.web_port}/metrics"
        started = time.monotonic()
        previous: MetricsSnapshot | None = None
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=2.0)
                elapsed = time.monotonic() - started
                current = await asyncio.to_thread(scrape, url)
                if current is None:
                    click.echo(f"[{elapsed:6.0f}s] waiting for the worker to serve {url} ...")
                else:
                    click.echo(summary_line(previous, current, elapsed))
                    previous = current
                for name, proc, log_path in (
                    ("worker", worker, worker_log),
                    ("simulator", simulator, sim_log),
                ):
                    if proc.poll() is not None:
                        click.echo(
                            f"[demo] the {name} exited with code {proc.returncode}; see {log_path}",
                            err=True,
                        )
                        stop.set()
                if duration_seconds and elapsed >= duration_seconds:
                    stop.set()
        finally:
            click.echo("[demo] stopping simulator and worker ...")
            _stop(simulator)
            _stop(worker)
            if not keep_kafka and not was_running:
                broker.stop()
            click.echo("[demo] done")


async def _publish_demo_groups(settings: Settings, meters: int, seed: int, prefix: str) -> int:
    """Put the demo's meters in feeders of about 100 and one substation; the feeder count."""
    from streamer.groups.membership_topic import publish_membership
    from streamer.simulate.fleet import FleetModel
    from streamer.simulate.hierarchy import feeder_hierarchy

    feeders = max(1, meters // 100)
    ids = FleetModel(meters, seed=seed, id_prefix=prefix).meter_ids.tolist()
    await publish_membership(settings, feeder_hierarchy(ids, seed, feeders, 1))
    return feeders

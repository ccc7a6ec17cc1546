"""Running the fleet against Kafka: backfill at ``speedup`` x wall time, then live.

The simulated clock starts at ``start_ms`` and runs ``speedup`` x faster than the wall clock
until it catches up with it; from then on it follows the wall clock. Whenever the clock passes a
slot end, every meter's reading for that slot is produced (``ts`` = the slot end exactly),
through the fault model. A slot's messages are queued without awaiting each and acknowledged
together; a slot is always sent whole, so stopping takes effect between slots. On stop, late
messages still held back are sent, so the tallies account for every reading generated.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date

from streamer.simulate.clock import SimulatedClock
from streamer.simulate.errors import SimulationConfigError
from streamer.simulate.faults import FaultConfig, FaultTally
from streamer.simulate.fleet import FleetModel
from streamer.simulate.producer import (
    ProducerFactory,
    kafka_producer,
    send_messages,
    start_producer,
)
from streamer.simulate.progress import Phase, SimulationProgress, SimulationSummary
from streamer.simulate.ratelimit import RateLimiter
from streamer.simulate.region import holiday_dates, zone_of
from streamer.simulate.slots import SlotChunk, SlotStream
from streamer.simulate.wire import Message, rfc3339
from streamer.timeutil import now_ms

logger = logging.getLogger(__name__)

PROGRESS_INTERVAL_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class SimulationConfig:
    """What to simulate and how fast."""

    meters: int = 1000
    seed: int = 0
    resolution_seconds: int = 1800
    start_ms: int | None = None
    """First simulated time; default: now - ``backfill_seconds``."""
    backfill_seconds: int = 2 * 86_400
    speedup: float = 3600.0
    """Simulated seconds per wall second while backfilling."""
    rate_limit_per_second: float = 0.0
    """At most this many messages per second (0 = unlimited)."""
    duration_seconds: float | None = None
    """Stop after this much wall time (``None``: until stopped)."""
    faults: FaultConfig = field(default_factory=FaultConfig)
    meter_id_prefix: str = "m-"
    """Meter ids are this prefix and a zero-padded index (``m-000042``)."""
    time_zone: str = "UTC"
    """IANA zone the fleet lives in: its clocks drive schedules, its standard offset the sun."""
    southern_hemisphere: bool | None = None
    """Seasons of the southern hemisphere (``None``: inferred from the zone's daylight saving)."""
    holidays: frozenset[date] = frozenset()
    """Local dates on which the fleet behaves as on a Sunday."""

    def __post_init__(self) -> None:
        zone_of(self.time_zone)
        object.__setattr__(self, "holidays", holiday_dates(self.holidays))
        if self.meters < 1:
            raise SimulationConfigError(f"meters={self.meters}: simulate at least one meter")
        if self.backfill_seconds < 0:
            raise SimulationConfigError(
                f"backfill_seconds={self.backfill_seconds}: use 0 or more seconds"
            )
        if not self.speedup > 0:
            raise SimulationConfigError(
                f"speedup={self.speedup}: use a positive factor (1 = real time)"
            )
        if self.rate_limit_per_second < 0:
            raise SimulationConfigError(
                f"rate_limit_per_second={self.rate_limit_per_second}: use 0 (unlimited) or more"
            )
        if self.duration_seconds is not None and not self.duration_seconds > 0:
            raise SimulationConfigError(
                f"duration_seconds={self.duration_seconds}: use a positive number of seconds, "
                "or None to run until stopped"
            )

    def build_model(self) -> FleetModel:
        return FleetModel(
            self.meters,
            self.seed,
            self.resolution_seconds,
            id_prefix=self.meter_id_prefix,
            time_zone=self.time_zone,
            southern_hemisphere=self.southern_hemisphere,
            holidays=self.holidays,
        )

    def resolve_start_ms(self, wall_now_ms: int) -> int:
        if self.start_ms is None:
            return wall_now_ms - self.backfill_seconds * 1000
        if self.start_ms > wall_now_ms:
            raise SimulationConfigError(
                f"start_ms={self.start_ms} is in the future; the simulated clock never passes "
                "the wall clock, so start at or before now"
            )
        return self.start_ms


class _Run:
    """Counters of one run and the progress callback."""

    def __init__(
        self,
        clock: SimulatedClock,
        on_progress: Callable[[SimulationProgress], None] | None,
    ) -> None:
        self.clock = clock
        self.on_progress = on_progress
        self.tally = FaultTally()
        self.sent = 0
        self.slots = 0
        self.first_ts_ms: int | None = None
        self.last_ts_ms: int | None = None
        self.phase: Phase = "backfill"
        self.reached_live = False
        self._last_report = time.monotonic()
        self._sent_at_last_report = 0

    def record(self, chunk: SlotChunk) -> None:
        self.sent += len(chunk.messages)
        self.tally = self.tally + chunk.tally
        if not chunk.is_flush:
            self.slots += 1
            self.last_ts_ms = chunk.slot_end_ms
            if self.first_ts_ms is None:
                self.first_ts_ms = chunk.slot_end_ms

    def seconds_to_report(self) -> float:
        return max(0.0, self._last_report + PROGRESS_INTERVAL_SECONDS - time.monotonic())

    def report(self, *, force: bool = False) -> None:
        if not force and self.seconds_to_report() > 0:
            return
        now = time.monotonic()
        interval = max(now - self._last_report, 1e-9)
        progress = SimulationProgress(
            phase=self.phase,
            clock_ms=self.clock.now_ms(),
            simulated_ms=self.last_ts_ms,
            messages_sent=self.sent,
            messages_per_second=(self.sent - self._sent_at_last_report) / interval,
            wall_elapsed_seconds=self.clock.elapsed_seconds(),
            tally=self.tally,
        )
        self._last_report = now
        self._sent_at_last_report = self.sent
        if self.on_progress is not None:
            self.on_progress(progress)

    def summary(self) -> SimulationSummary:
        return SimulationSummary(
            messages_sent=self.sent,
            tally=self.tally,
            slots=self.slots,
            first_ts_ms=self.first_ts_ms,
            last_ts_ms=self.last_ts_ms,
            wall_seconds=self.clock.elapsed_seconds(),
            reached_live=self.reached_live,
        )

    def mark_live(self) -> None:
        """Enter the live phase (reported at once, not only at the next tick)."""
        if self.phase == "live":
            return
        logger.info("simulator caught up with the wall clock after %d slots; live", self.slots)
        self.phase = "live"
        self.reached_live = True
        self.report(force=True)


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    if seconds <= 0:
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


async def run_simulation(
    config: SimulationConfig,
    bootstrap_servers: str,
    topic: str,
    on_progress: Callable[[SimulationProgress], None] | None = None,
    stop: asyncio.Event | None = None,
    *,
    model: FleetModel | None = None,
    producer_factory: ProducerFactory = kafka_producer,
) -> SimulationSummary:
    """Produce the fleet's readings to ``topic`` until ``stop`` is set or the duration is over.

    ``model`` replaces the fleet built from ``config`` (e.g. one with ``with_shift`` drift);
    ``producer_factory`` replaces aiokafka (tests).
    """
    fleet = model if model is not None else config.build_model()
    stop_event = stop if stop is not None else asyncio.Event()
    start_ms = config.resolve_start_ms(now_ms())
    clock = SimulatedClock(start_ms, config.speedup)
    stream = SlotStream(fleet, config.faults, start_ms)
    limiter = RateLimiter(config.rate_limit_per_second)
    run = _Run(clock, on_progress)
    deadline = (
        None if config.duration_seconds is None else time.monotonic() + config.duration_seconds
    )
    logger.info(
        "simulating %d meters at %d s in %s (%s hemisphere) from %s, speedup %.0f, to %s on %s",
        fleet.n_meters,
        fleet.resolution_seconds,
        fleet.time_zone,
        "southern" if fleet.southern_hemisphere else "northern",
        rfc3339(start_ms),
        config.speedup,
        topic,
        bootstrap_servers,
    )
    producer = producer_factory(bootstrap_servers)
    await start_producer(producer, bootstrap_servers)
    try:
        while not stop_event.is_set():
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                break
            wait = clock.seconds_until(stream.next_slot_end_ms)
            if wait > 0:
                if clock.is_live():
                    run.mark_live()
                timeout = min(wait, max(run.seconds_to_report(), 0.05))
                if remaining is not None:
                    timeout = min(timeout, remaining)
                await _wait(stop_event, timeout)
                run.report()
                continue
            chunk = stream.next_chunk(now_ms=clock.wall_ms())
            await send_messages(producer, topic, chunk.messages, limiter)
            run.record(chunk)
            run.report()
        late = stream.flush()
        if late.messages:
            await send_messages(producer, topic, late.messages, limiter)
            run.record(late)
    finally:
        await producer.stop()
    run.phase = "done"
    run.report(force=True)
    summary = run.summary()
    logger.info("simulation done: %s", summary.as_dict())
    return summary


async def produce_messages(
    bootstrap_servers: str,
    topic: str,
    messages: Iterable[Message],
    *,
    producer_factory: ProducerFactory = kafka_producer,
) -> int:
    """Send ``(key, value)`` messages as they are (tests, replays); returns how many were sent."""
    batch = list(messages)
    producer = producer_factory(bootstrap_servers)
    await start_producer(producer, bootstrap_servers)
    try:
        await send_messages(producer, topic, batch)
    finally:
        await producer.stop()
    return len(batch)

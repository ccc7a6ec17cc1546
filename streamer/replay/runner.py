"""Sending a replay to Kafka on its schedule, with progress about once a second.

Steps due by now are encoded and sent together (up to ``max_batch_messages``), acknowledged
before the next ones; when Kafka is slower than the schedule the replay falls behind and sends
as fast as it can, it never skips. Stopping takes effect between batches.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from streamer.replay.schedule import ReplayRows, ReplayStep, encode_rows
from streamer.simulate.producer import MessageProducer, send_messages, start_producer
from streamer.simulate.runner import PROGRESS_INTERVAL_SECONDS
from streamer.simulate.wire import rfc3339

MAX_BATCH_MESSAGES = 20_000


def _duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


@dataclass(frozen=True, slots=True)
class ReplayProgress:
    """A snapshot, emitted about once a second (and once at the end)."""

    sent: int
    total: int
    reached_ts_ms: int | None
    """Timestamp of the last reading sent (``None`` before the first)."""
    messages_per_second: float
    """Over the time since the previous snapshot."""
    elapsed_seconds: float
    eta_seconds: float

    def describe(self) -> str:
        at = rfc3339(self.reached_ts_ms) if self.reached_ts_ms is not None else "-"
        percent = 100.0 * self.sent / self.total if self.total else 100.0
        return (
            f"[replay] simulated {at}  sent {self.sent:,}/{self.total:,} ({percent:.1f}%)  "
            f"{self.messages_per_second:,.0f} msg/s  {self.elapsed_seconds:.1f} s  "
            f"ETA {_duration(self.eta_seconds)}"
        )


@dataclass(frozen=True, slots=True)
class ReplaySummary:
    sent: int
    total: int
    meters: int
    first_ts_ms: int | None
    last_ts_ms: int | None
    """Timestamp of the last reading sent."""
    wall_seconds: float
    stopped: bool

    def describe(self) -> str:
        first = rfc3339(self.first_ts_ms) if self.first_ts_ms is not None else "-"
        last = rfc3339(self.last_ts_ms) if self.last_ts_ms is not None else "-"
        rate = self.sent / self.wall_seconds if self.wall_seconds > 0 else 0.0
        return (
            f"replayed {self.sent:,} of {self.total:,} readings of {self.meters:,} meters "
            f"({first} .. {last}) in {self.wall_seconds:.1f} s ({rate:,.0f} msg/s)"
            + ("; stopped before the end" if self.stopped else "")
        )


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    if seconds <= 0:
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


async def run_replay(
    rows: ReplayRows,
    steps: Sequence[ReplayStep],
    producer: MessageProducer,
    topic: str,
    *,
    bootstrap_servers: str,
    on_progress: Callable[[ReplayProgress], None] | None = None,
    stop: asyncio.Event | None = None,
    max_batch_messages: int = MAX_BATCH_MESSAGES,
    monotonic: Callable[[], float] = time.monotonic,
) -> ReplaySummary:
    """Send ``rows`` to ``topic`` step by step, each not before its ``at_seconds``."""
    stop_event = stop if stop is not None else asyncio.Event()
    total = len(rows)
    await start_producer(producer, bootstrap_servers)
    started = monotonic()
    last_report = started
    sent_at_report = 0
    sent = 0
    reached: int | None = None
    index = 0

    def report(now: float) -> None:
        nonlocal last_report, sent_at_report
        elapsed = now - started
        rate = (sent - sent_at_report) / max(now - last_report, 1e-9)
        average = sent / elapsed if elapsed > 0 else 0.0
        by_rate = (total - sent) / average if average > 0 else 0.0
        by_schedule = steps[-1].at_seconds - elapsed if steps else 0.0
        eta = 0.0 if sent >= total else max(by_rate, by_schedule)
        last_report, sent_at_report = now, sent
        if on_progress is not None:
            on_progress(ReplayProgress(sent, total, reached, rate, elapsed, eta))

    try:
        while index < len(steps) and not stop_event.is_set():
            now = monotonic()
            due = steps[index].at_seconds - (now - started)
            if due > 0:
                until_report = last_report + PROGRESS_INTERVAL_SECONDS - now
                await _wait(stop_event, min(due, max(until_report, 0.05)))
                if monotonic() - last_report >= PROGRESS_INTERVAL_SECONDS:
                    report(monotonic())
                continue
            elapsed = now - started
            last = index
            count = steps[index].size
            while (
                last + 1 < len(steps)
                and steps[last + 1].at_seconds <= elapsed
                and count + steps[last + 1].size <= max_batch_messages
            ):
                last += 1
                count += steps[last].size
            messages = encode_rows(rows, steps[index].begin, steps[last].end)
            await send_messages(producer, topic, messages)
            sent += len(messages)
            reached = steps[last].ts_ms
            index = last + 1
            if monotonic() - last_report >= PROGRESS_INTERVAL_SECONDS:
                report(monotonic())
    finally:
        await producer.stop()
    end = monotonic()
    report(end)
    return ReplaySummary(
        sent=sent,
        total=total,
        meters=rows.meters,
        first_ts_ms=steps[0].ts_ms if steps and sent else None,
        last_ts_ms=reached,
        wall_seconds=end - started,
        stopped=index < len(steps),
    )

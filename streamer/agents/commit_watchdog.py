"""Repairs a readings partition whose offset commits have stalled on a hole (faust 0.15.3).

See :mod:`streamer.faust_glue.consumer_fixes`: every ``CHECK_SECONDS`` the worker looks for
assigned readings partitions that faust cannot commit (acknowledged offsets starting past the
committed offset, or a never-committed partition with records and none read). One found with
the same hole ``STALL_CHECKS`` times running is logged, counted in
``streamer_commit_stalls_total`` and read again from its committed offset
(:func:`streamer.faust_glue.consumer_fixes.reread`): the messages faust never delivered are
processed, and those after them again (at-least-once; the state ledger recognises them as
duplicates).
"""

from __future__ import annotations

import logging
from typing import Any

from streamer.agents.runtime import WorkerRuntime
from streamer.faust_glue.consumer_fixes import bookkeeping, commit_holes, reread
from streamer.typed_decorators import typed

log = logging.getLogger(__name__)

CHECK_SECONDS = 5.0
STALL_CHECKS = 3


class HoleTracker:
    """How many checks running each partition has shown the same hole.

    A stall is a partition that cannot commit, not one between owners: a hole counts only
    while no rebalance comes between the checks (the consumer generation unchanged, faust
    not rebalancing at any check). A check during a rebalance, or the first one in a new
    generation, starts every count again. Holes are only found on assigned partitions, and
    a hole whose committed offset moves is a new hole, so a count also needs the partition
    to have stayed assigned and its commits to have stood still.
    """

    def __init__(self, stall_checks: int = STALL_CHECKS) -> None:
        self.stall_checks = stall_checks
        self._seen: dict[Any, tuple[tuple[int, int], int]] = {}
        self._generation: int | None = None

    def stalled(
        self, holes: dict[Any, tuple[int, int]], *, generation: int | None, rebalancing: bool
    ) -> list[tuple[Any, int]]:
        """Update with this check's holes, the consumer generation and whether faust is
        rebalancing; the partitions stalled, with their offset."""
        if rebalancing:
            self._seen = {}
            self._generation = None
            return []
        if generation != self._generation:
            self._seen = {}
            self._generation = generation
        seen: dict[Any, tuple[tuple[int, int], int]] = {}
        out: list[tuple[Any, int]] = []
        for tp, hole in holes.items():
            previous = self._seen.get(tp)
            count = previous[1] + 1 if previous is not None and previous[0] == hole else 1
            if count >= self.stall_checks:
                out.append((tp, hole[0]))
                count = 0
            seen[tp] = (hole, count)
        self._seen = seen
        return out


def register_commit_watchdog(app: Any, runtime: WorkerRuntime) -> None:
    tracker = HoleTracker()
    topic = runtime.settings.readings_topic

    @typed(app.timer(CHECK_SECONDS))
    async def reread_stalled_partitions() -> None:
        consumer = app.consumer
        holes = commit_holes(consumer, topic)
        stalled = tracker.stalled(
            holes,
            generation=app.consumer_generation_id,
            rebalancing=bool(app.rebalancing),
        )
        for tp, committed in stalled:
            runtime.metrics.commit_stalls.inc()
            seen = bookkeeping(consumer, tp)
            # the hole was never delivered: its messages are not replays of the state's
            hole = holes.get(tp)
            async with runtime.core.batch_lock:
                runtime.processor.note_unread(
                    tp.partition, committed, hole[1] if hole else committed
                )
            done = await reread(app, tp, committed)
            log.warning(
                "offset commits of %s[%d] stalled at %d (%s): faust lost messages after it "
                "(streamer.faust_glue.consumer_fixes); %s",
                tp.topic,
                tp.partition,
                committed,
                seen,
                "reading the partition again from there"
                if done
                else "not read again now (a rebalance or a stopped flow came first)",
            )

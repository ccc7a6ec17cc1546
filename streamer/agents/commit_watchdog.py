"""Rewinds a readings partition whose offset commits have stalled on a hole (faust 0.15.3).

See :mod:`streamer.faust_fixes`: every ``CHECK_SECONDS`` the worker looks for assigned readings
partitions whose acknowledged offsets start past the committed offset. One found with the same
hole ``STALL_CHECKS`` times running is sought back to its committed offset, so the messages in
the hole are read (again) and the commits can move on. Counted in
``streamer_commit_rewinds_total``.
"""

from __future__ import annotations

import logging
from typing import Any

from streamer.agents.runtime import WorkerRuntime
from streamer.faust_fixes import commit_holes
from streamer.typed_decorators import typed

log = logging.getLogger(__name__)

CHECK_SECONDS = 5.0
STALL_CHECKS = 3


class HoleTracker:
    """How many checks running each partition has shown the same hole."""

    def __init__(self, stall_checks: int = STALL_CHECKS) -> None:
        self.stall_checks = stall_checks
        self._seen: dict[Any, tuple[tuple[int, int], int]] = {}

    def stalled(self, holes: dict[Any, tuple[int, int]]) -> list[tuple[Any, int]]:
        """Update with this check's holes; the partitions to rewind, with their offset."""
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
    async def rewind_stalled_partitions() -> None:
        consumer = app.consumer
        for tp, committed in tracker.stalled(commit_holes(consumer, topic)):
            log.warning(
                "offset commits of %s[%d] stalled at %d (faust lost track of the "
                "acknowledged offsets after it); reading again from there",
                tp.topic,
                tp.partition,
                committed,
            )
            runtime.metrics.commit_rewinds.inc()
            await consumer.seek(tp, committed)

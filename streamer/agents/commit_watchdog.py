"""Reports a readings partition whose offset commits have stalled on a hole (faust 0.15.3).

See :mod:`streamer.faust_fixes`: every ``CHECK_SECONDS`` the worker looks for assigned readings
partitions that faust cannot commit (acknowledged offsets starting past the committed offset,
or a never-committed partition with records and nothing acknowledged). One found with the same
hole ``STALL_CHECKS`` times running is logged and counted in ``streamer_commit_stalls_total``.

It is not rewound: a seek while faust's fetch loop still holds records fetched before it lost
readings in a crash test (55 of 4,680: the stale records moved faust's read offset past the
seek and faust then dropped the records read again). Nothing is lost while a partition stalls:
its committed offset stays behind, so a restart or rebalance reads the hole again.
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
        """Update with this check's holes; the partitions stalled, with their offset."""
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
    async def report_stalled_partitions() -> None:
        for tp, committed in tracker.stalled(commit_holes(app.consumer, topic)):
            log.warning(
                "offset commits of %s[%d] stalled at %d: faust lost track of the acknowledged "
                "offsets after it (streamer.faust_fixes); the lag reads high until a restart "
                "or rebalance reads the partition from there again",
                tp.topic,
                tp.partition,
                committed,
            )
            runtime.metrics.commit_stalls.inc()

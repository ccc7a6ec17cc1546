"""Which partitions of a topic this worker owns, for timers that write table state.

faust runs timers straight through rebalances. From a revoke until the end of the table
recovery that follows, the memory store still holds the keys of partitions now given to another
worker (its ``on_recovery_completed`` drops them only then), and a partition just assigned may
be half restored. A timer that wrote state in that window (the group lateness timer, the silence
timer's expiry) could issue again what the new owner issues, from an older state, and send that
older state to the changelog the new owner recovers from.

:func:`settled_partitions` is None while a rebalance or its recovery runs, and otherwise the
partitions of the topic assigned to this worker. A timer checks it before each key it writes:
the check and the write are made with no ``await`` between them, and a revoke can only start at
an ``await``.
"""

from __future__ import annotations

from typing import Any


def settled_partitions(app: Any, topic: str) -> frozenset[int] | None:
    """The partitions of ``topic`` this worker owns; None while a rebalance (or the table
    recovery that ends it) is in progress."""
    if app.rebalancing or not app.tables.recovery.completed.is_set():
        return None
    return frozenset(tp.partition for tp in app.consumer.assignment() if tp.topic == topic)

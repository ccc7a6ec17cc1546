"""Which partitions of a topic this worker owns, for timers that write table state.

A table's memory store holds more than the worker's own partitions:

- the standby copies of other workers' partitions (``STREAMER_TABLE_STANDBY_REPLICAS``), which
  faust keeps up to date from their changelogs in the same store, all the time;
- from a revoke until the end of the table recovery that follows, the partitions now given to
  another worker (the store's ``on_recovery_completed`` drops them only then); and a partition
  just assigned may be half restored.

faust runs timers straight through all of this. A timer that wrote state for such a key (the
group lateness timer, the silence timer's expiry) would issue again what the owner issues, from
its own copy, and send that copy to the changelog the owner recovers from; a gauge counted over
the store would count the copies too.

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

"""Consumer lag per assigned partition: how far this worker's processing is behind the log end.

The readings agent reports the offsets it processed (per batch, see
:func:`streamer.agents.batch_metrics.record_batch`); a timer asks the broker for the end offsets
of the assigned partitions and calls :meth:`ConsumerLag.update`. Lag is
``end offset - next offset to process``: what the worker still has to do, counted by what it
really processed, not by what the consumer fetched into its buffer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from prometheus_client import Gauge

TopicPartition = tuple[str, int]


class ConsumerLag:
    """The processed offsets of one worker and the lag gauge (labels ``topic``, ``partition``)."""

    def __init__(self, gauge: Gauge) -> None:
        self._gauge = gauge
        self._next: dict[TopicPartition, int] = {}
        self._published: set[TopicPartition] = set()

    def processed(self, offsets: Iterable[tuple[str, int, int]]) -> None:
        """Note ``(topic, partition, offset)`` of processed messages (any order)."""
        nxt = self._next
        for topic, partition, offset in offsets:
            key = (topic, partition)
            if offset + 1 > nxt.get(key, -1):
                nxt[key] = offset + 1

    def next_offset(self, topic: str, partition: int) -> int | None:
        """The next offset this worker will process in the partition (None: none seen yet)."""
        return self._next.get((topic, partition))

    def update(
        self,
        end_offsets: Mapping[TopicPartition, int],
        positions: Mapping[TopicPartition, int] | None = None,
    ) -> dict[TopicPartition, int]:
        """Set the gauge for exactly the partitions in ``end_offsets`` (the assigned ones).

        ``positions`` stands in for partitions with nothing processed yet (the consumer's fetch
        position, which runs ahead of processing by what is buffered). A partition with neither
        is left out. Partitions no longer assigned lose their series and their processed offset
        (another worker moves them on meanwhile). Returns the lag published per partition.
        """
        positions = positions or {}
        lags: dict[TopicPartition, int] = {}
        for key, end in end_offsets.items():
            position = self._next.get(key)
            if position is None:
                position = positions.get(key)
            if position is None:
                continue
            lags[key] = max(0, end - position)
        for topic, partition in self._published - lags.keys():
            self._gauge.remove(topic, str(partition))
        for key in list(self._next):
            if key not in end_offsets:
                del self._next[key]
        for (topic, partition), lag in lags.items():
            self._gauge.labels(topic=topic, partition=str(partition)).set(lag)
        self._published = set(lags)
        return lags

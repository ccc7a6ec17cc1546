"""The readings topic's records made as the pipeline's messages inside aiokafka's fetcher.

aiokafka 0.14's fetcher makes a ``ConsumerRecord`` of every record it reads
(``PartitionRecords._consumer_record``: eleven fields, each read from the C record, about 1 us),
which the bulk feed then turned into an :class:`~streamer.pipeline.messages.InMessage`
(0.2 us). For the feed's topic, on the worker's own consumer only, the fetcher now makes the
:class:`InMessage` itself (0.5 us for both, measured on batches of 2,000 records).

The consumer is marked through its fetcher's key deserializer, the one thing of the consumer
that ``PartitionRecords`` is given: a :class:`MessagesFor` returns every key unchanged (what no
deserializer does), so records of other topics are made as before. A fetch that was read
before the mark still gives ``ConsumerRecord`` s: :func:`~.bulk_readings.in_messages` takes
either.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from aiokafka.consumer.fetcher import PartitionRecords

from streamer.faust_glue.consumer_options import set_on_consumer
from streamer.pipeline.messages import InMessage

_MARK = "_streamer_messages_for"


class MessagesFor:
    """The key deserializer of a consumer whose records of ``topics`` are made as messages."""

    __slots__ = ("topics",)

    def __init__(self, topics: Iterable[str]) -> None:
        self.topics = frozenset(topics)

    def __call__(self, key: bytes | None) -> bytes | None:
        return key


def install() -> None:
    """Patch ``PartitionRecords._consumer_record`` (once per process): unmarked consumers and
    other topics get aiokafka's own record."""
    if getattr(PartitionRecords, _MARK, False):
        return
    original: Callable[[Any, Any, Any], Any] = PartitionRecords._consumer_record

    def _consumer_record(self: Any, tp: Any, record: Any) -> Any:
        marker = self._key_deserializer
        if type(marker) is MessagesFor and tp.topic in marker.topics:
            return InMessage(
                record.key,
                record.value,
                tp.topic,
                tp.partition,
                record.offset,
                record.timestamp,  # milliseconds (None when the broker gives none)
            )
        return original(self, tp, record)

    setattr(PartitionRecords, "_consumer_record", _consumer_record)  # noqa: B010 (a library's)
    setattr(PartitionRecords, _MARK, True)


def make_messages(consumer: Any, topic: str) -> None:
    """Have faust's started consumer's fetcher make ``topic``'s records as messages."""
    install()
    set_on_consumer(consumer, "_key_deserializer", MessagesFor({topic}))

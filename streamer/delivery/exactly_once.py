"""exactly_once delivery of a batch: one transaction per readings partition, holding the
records that follow from its readings and its next offset
(:class:`~streamer.delivery.transactional_sender.TransactionalSender`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from aiokafka import AIOKafkaProducer

from streamer.delivery.bulk_sender import OutRecord
from streamer.delivery.transactional_sender import TransactionalSender
from streamer.kafka_security import aiokafka_security
from streamer.settings import Settings

#: How long the broker keeps a transaction of a vanished worker open before aborting it (when no
#: new owner fenced it first). Read-committed consumers wait behind an open transaction.
TRANSACTION_TIMEOUT_MS = 30_000


def producer_factory(settings: Settings) -> Callable[[str], AIOKafkaProducer]:
    """Transactional aiokafka producers with the worker's broker and security settings."""

    def make(transactional_id: str) -> AIOKafkaProducer:
        return AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap,
            transactional_id=transactional_id,
            enable_idempotence=True,
            acks="all",
            linger_ms=5,
            compression_type=settings.compression_type,
            max_batch_size=settings.producer_batch_bytes,
            max_request_size=max(settings.producer_batch_bytes, 1_048_576),
            transaction_timeout_ms=TRANSACTION_TIMEOUT_MS,
            **aiokafka_security(settings),
        )

    return make


def next_offsets(partitions_and_offsets: Iterable[tuple[int, int]]) -> dict[int, int]:
    """The next offset to read of each readings partition in a batch."""
    out: dict[int, int] = {}
    for partition, offset in partitions_and_offsets:
        if offset + 1 > out.get(partition, -1):
            out[partition] = offset + 1
    return out


def by_source(
    records: Sequence[OutRecord], partitions: Iterable[int]
) -> dict[int, list[OutRecord]]:
    """Records grouped by the readings partition they came from. A record that does not say
    (``source`` None) goes with the batch's first partition."""
    groups: dict[int, list[OutRecord]] = {p: [] for p in partitions}
    first = min(groups) if groups else 0
    for record in records:
        source = record.source if record.source is not None else first
        groups.setdefault(source, []).append(record)
    return groups


async def deliver_exactly_once(
    sender: TransactionalSender,
    records: Sequence[OutRecord],
    offsets: dict[int, int],
    *,
    published: Callable[[], None] | None = None,
) -> set[int]:
    """Commit ``records`` with the batch's next ``offsets``, one transaction per readings
    partition; returns the partitions committed (a fenced one is not)."""
    committed = await sender.commit(by_source(records, offsets), offsets)
    if published is not None:
        published()
    return committed

"""The worker's exactly_once mode: how it is wired into faust and how a batch is delivered.

faust runs with its at-least-once settings (its own transactions are not used: see
:mod:`streamer.agents.transactional_sender`); this module

- makes the worker's Kafka consumer read committed records only, so that neither the readings
  nor the changelogs restored into tables ever include an aborted transaction, and
- delivers a batch as one transaction per readings partition (records and offsets together).

faust still acknowledges the batch's messages afterwards, but does not commit the readings'
offsets itself: the transactions do (:func:`transactions_commit_offsets`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from aiokafka import AIOKafkaProducer

from streamer.agents.bulk_sender import OutRecord
from streamer.agents.runtime import WorkerRuntime
from streamer.agents.transactional_sender import TransactionalSender
from streamer.kafka_security import aiokafka_security
from streamer.settings import Settings
from streamer.typed_decorators import typed

log = logging.getLogger(__name__)

#: How long the broker keeps a transaction of a vanished worker open before aborting it (when no
#: new owner fenced it first). Read-committed consumers wait behind an open transaction.
TRANSACTION_TIMEOUT_MS = 30_000


def read_committed(app: Any) -> None:
    """Make faust's worker consumer read with ``isolation_level=read_committed``.

    faust 0.15.3 chooses the isolation level from its own processing guarantee, which stays
    at-least-once here; the hook wraps the factory of its aiokafka consumer.
    """
    thread = app.consumer._thread
    create = thread._create_worker_consumer

    def create_read_committed(transport: Any) -> Any:
        consumer = create(transport)
        consumer._isolation_level = "read_committed"
        return consumer

    thread._create_worker_consumer = create_read_committed


class _RecoveryView:
    """The app as faust's table recovery sees it: in a transaction.

    A changelog written in transactions ends with a commit marker, an offset no record is read
    at; faust's recovery waits for that offset forever unless the app is "in a transaction", in
    which case it accepts a consumer position at the end instead. Everything else is the app's.
    """

    in_transaction = True

    def __init__(self, app: Any) -> None:
        object.__setattr__(self, "_app", app)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._app, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._app, name, value)


def recover_past_markers(app: Any) -> None:
    """Let faust's table recovery finish at a changelog's transaction markers."""
    recovery = app.tables.recovery
    recovery.app = _RecoveryView(app)


def transactions_commit_offsets(app: Any, topic: str) -> None:
    """Keep faust from committing ``topic``'s offsets itself: the transactions do. (faust would
    commit them after the fact, and a late commit of an older offset would move the group back.)"""
    consumer = app.consumer
    commit = consumer._commit

    async def commit_others(offsets: Any) -> bool:
        others = {tp: offset for tp, offset in offsets.items() if tp.topic != topic}
        return bool(await commit(others)) if others else True

    consumer._commit = commit_others


def producer_factory(settings: Settings) -> Callable[[str], AIOKafkaProducer]:
    """Transactional aiokafka producers with the worker's broker and security settings."""

    def make(transactional_id: str) -> AIOKafkaProducer:
        return AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap,
            transactional_id=transactional_id,
            enable_idempotence=True,
            acks="all",
            linger_ms=5,
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


def register_exactly_once(app: Any, runtime: WorkerRuntime) -> None:
    """Read committed, and give the runtime its transactional sender; its producers of the
    readings partitions a rebalance takes away are closed (the others end with the process:
    between batches none holds an open transaction)."""
    settings = runtime.settings
    read_committed(app)
    recover_past_markers(app)
    transactions_commit_offsets(app, settings.readings_topic)
    readings = settings.readings_topic

    def owns(partition: int) -> bool:
        return any(
            tp.topic == readings and tp.partition == partition for tp in app.consumer.assignment()
        )

    sender = runtime.transactional_sender = TransactionalSender(
        producer_factory(settings), app_id=settings.app_id, readings_topic=readings, owns=owns
    )

    @typed(app.on_partitions_revoked.connect)
    async def release(app: Any, revoked: set[Any], **kwargs: Any) -> None:
        await sender.release({tp.partition for tp in revoked if tp.topic == readings})


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

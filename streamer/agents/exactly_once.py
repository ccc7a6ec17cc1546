"""Registers the worker's exactly_once mode: faust's hooks (read committed, recovery past
markers, readings offsets committed by the transactions) and the transactional sender, whose
producers of revoked readings partitions are closed."""

from __future__ import annotations

from typing import Any

from streamer.delivery.exactly_once import producer_factory
from streamer.delivery.transactional_sender import TransactionalSender
from streamer.faust_glue.exactly_once_hooks import (
    read_committed,
    recover_past_markers,
    transactions_commit_offsets,
)
from streamer.settings import Settings
from streamer.typed_decorators import typed


def make_transactional_sender(app: Any, settings: Settings) -> TransactionalSender:
    """Read committed, and a transactional sender for the worker; its producers of the readings
    partitions a rebalance takes away are closed (the others end with the process: between
    batches none holds an open transaction)."""
    read_committed(app)
    recover_past_markers(app)
    transactions_commit_offsets(app, settings.readings_topic)
    readings = settings.readings_topic

    def owns(partition: int) -> bool:
        return any(
            tp.topic == readings and tp.partition == partition for tp in app.consumer.assignment()
        )

    sender = TransactionalSender(
        producer_factory(settings), app_id=settings.app_id, readings_topic=readings, owns=owns
    )

    @typed(app.on_partitions_revoked.connect)
    async def release(app: Any, revoked: set[Any], **kwargs: Any) -> None:
        await sender.release({tp.partition for tp in revoked if tp.topic == readings})

    return sender

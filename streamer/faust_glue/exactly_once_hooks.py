"""faust hooks of the worker's exactly_once mode.

faust runs with its at-least-once settings (its own transactions are not used: see
:mod:`streamer.delivery.transactional_sender`); these hooks

- make the worker's Kafka consumer read committed records only, so that neither the readings
  nor the changelogs restored into tables ever include an aborted transaction,
- let faust's table recovery finish at a changelog's transaction markers, and
- keep faust from committing the readings' offsets itself: the transactions do.
"""

from __future__ import annotations

from typing import Any


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

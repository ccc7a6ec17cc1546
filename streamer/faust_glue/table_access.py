"""faust tables read and written without faust's per-key machinery.

The worker's tables use faust's memory store with raw bytes keys and values: the store's
``data`` is a plain dict, which the batch code reads and writes directly, sending the
changelog records itself (:mod:`streamer.delivery.batch_records`). Each key's readings
partition is noted where faust notes it for keys it recovers, so that faust's end of recovery
drops the keys of partitions the worker no longer owns.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from typing import Any

from streamer.delivery.batch_records import TableSink


def table_sink(table: Any) -> TableSink:
    """The dict behind a faust table on the memory store, its key partitions and changelog."""
    store = table.data
    return TableSink(
        data=store.data,
        key_partition=store._key_partition,
        changelog=str(table.changelog_topic.get_topic_name()),
    )


def state_loader(store: MutableMapping[bytes, bytes]) -> Callable[[str], bytes | None]:
    """The stored record bytes of a meter (None for a meter not seen or expired).

    Returns the very object the table holds: the processor's decoded-record cache relies on it.
    """
    get = store.get

    def load(meter_id: str) -> bytes | None:
        value = get(meter_id.encode())
        return value if isinstance(value, bytes) else None

    return load

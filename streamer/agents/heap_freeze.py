"""Freeze the heap after slow full collections, after start-up, after every table recovery
(before the readings partitions resume) and periodically (:mod:`streamer.heap`)."""

from __future__ import annotations

import time
from typing import Any

from streamer.heap import FreezeAfterRecovery, SlowCollectionFreezer, set_collection_thresholds
from streamer.typed_decorators import typed

CHECK_SECONDS = 1.0


def register_heap_freeze(app: Any) -> None:
    freezer = FreezeAfterRecovery()
    on_slow_collection = SlowCollectionFreezer()

    @typed(app.on_rebalance_complete.connect)
    async def freeze_before_streams_resume(sender: Any, **kwargs: Any) -> None:
        # sent by faust's recovery once the tables are recovered, before it resumes the
        # readings partitions: the full collection's pause costs no batch
        freezer.recovery_completed(time.monotonic())

    @typed(app.timer(CHECK_SECONDS, name="streamer.heap_freeze"))
    async def freeze_after_recovery() -> None:
        if on_slow_collection.install():  # once the worker runs (not when an app is only built)
            set_collection_thresholds()
        freezer.tick(app.tables.recovery.completed.is_set(), time.monotonic())

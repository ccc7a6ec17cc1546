"""Freeze the heap after slow full collections, after start-up, after every table recovery and
periodically (:mod:`streamer.heap`)."""

from __future__ import annotations

import time
from typing import Any

from streamer.heap import FreezeAfterRecovery, SlowCollectionFreezer
from streamer.typed_decorators import typed

CHECK_SECONDS = 1.0


def register_heap_freeze(app: Any) -> None:
    freezer = FreezeAfterRecovery()
    on_slow_collection = SlowCollectionFreezer()

    @typed(app.timer(CHECK_SECONDS, name="streamer.heap_freeze"))
    async def freeze_after_recovery() -> None:
        on_slow_collection.install()  # once the worker runs (not when an app is only built)
        freezer.tick(app.tables.recovery.completed.is_set(), time.monotonic())

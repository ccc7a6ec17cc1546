"""The worker's heap and Python's cyclic garbage collector.

A worker holds its meters' state for as long as it runs: hundreds of thousands of long-lived
objects that every full collection walks again (100-150 ms pauses every few seconds at 2,000
meters, each one a latency spike). Frozen objects (``gc.freeze``) are out of the collector's
sight; they are still freed by reference counting when dropped.

- :class:`SlowCollectionFreezer`, a collector callback: when a full collection took longer than
  :data:`SLOW_FULL_COLLECTION_SECONDS`, what survived it is frozen at once (a list splice, no
  walk), so the next full collections walk only what came after.
- :func:`set_collection_thresholds`: young collections every :data:`YOUNG_COLLECTION_OBJECTS`
  new container objects (Python's default is 700) and middle ones every
  :data:`MIDDLE_COLLECTION_YOUNG` young ones (10): a batch of 2,000 forecasts makes hundreds of
  thousands of short-lived objects (matches, records, JSON pieces), most gone by the batch's
  end; at 700 the collector ran hundreds of times a batch and walked the batch's live objects
  again at each. A young collection of 20,000 objects is a pause of a few milliseconds.
- :func:`freeze_heap`: unfreeze, collect everything, freeze what is left. A frozen object that
  later becomes part of an unreachable cycle is never collected while frozen; this reclaims
  it. The worker runs it after start-up, after each table recovery and every
  :data:`REFREEZE_SECONDS` (:class:`FreezeAfterRecovery`): one full pause that often. After a
  recovery it runs before the readings partitions resume (faust's ``on_rebalance_complete``
  signal), so the pause falls while the stream is stopped anyway, not on the first batches.
"""

from __future__ import annotations

import gc
import logging
import math
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

#: a full collection slower than this freezes its survivors
SLOW_FULL_COLLECTION_SECONDS = 0.010
#: the heap is unfrozen, collected and frozen again this often
REFREEZE_SECONDS = 300.0
#: new container objects between young collections (Python's default: 700)
YOUNG_COLLECTION_OBJECTS = 20_000
#: young collections between middle-generation ones (Python's default: 10)
MIDDLE_COLLECTION_YOUNG = 20


def set_collection_thresholds() -> tuple[int, int, int]:
    """Set the collector's thresholds for a worker (the oldest generation's as it was); the
    thresholds now."""
    _, _, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_OBJECTS, MIDDLE_COLLECTION_YOUNG, oldest)
    return gc.get_threshold()


def freeze_heap(level: int = logging.DEBUG, why: str = "") -> int:
    """Unfreeze and collect everything, then freeze every object left; how many are frozen
    (logged at ``level``, after ``why``)."""
    started = time.perf_counter()
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    frozen = gc.get_freeze_count()
    log.log(
        level,
        "%sheap frozen: %d objects out of the garbage collector's sight (%.0f ms)",
        why,
        frozen,
        (time.perf_counter() - started) * 1000,
    )
    return frozen


class SlowCollectionFreezer:
    """A ``gc.callbacks`` entry that freezes the survivors of a slow full collection."""

    def __init__(
        self,
        slow_seconds: float = SLOW_FULL_COLLECTION_SECONDS,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.slow_seconds = slow_seconds
        self.freezes = 0
        self._clock = clock
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if info.get("generation") != 2:
            return
        if phase == "start":
            self._started = self._clock()
        elif self._clock() - self._started >= self.slow_seconds:
            gc.freeze()  # the survivors, all in the oldest generation now
            self.freezes += 1

    def install(self) -> bool:
        """Install the callback; whether it was not installed before."""
        if self in gc.callbacks:
            return False
        gc.callbacks.append(self)
        return True

    def remove(self) -> None:
        if self in gc.callbacks:
            gc.callbacks.remove(self)


class FreezeAfterRecovery:
    """Freezes the heap each time table recovery completes (start-up, every rebalance) and
    every ``refreeze_seconds`` while it stays complete."""

    def __init__(self, refreeze_seconds: float = REFREEZE_SECONDS) -> None:
        self._recovered = False
        self._refreeze_seconds = refreeze_seconds
        self._frozen_at = -math.inf

    def recovery_completed(self, now_seconds: float) -> None:
        """Recovery has just completed and the streams are about to resume: freeze now, while
        nothing is consumed (a later :meth:`tick` then finds the heap freshly frozen)."""
        freeze_heap(logging.INFO, "recovery complete, before the streams resume: ")
        self._frozen_at = now_seconds
        self._recovered = True

    def tick(self, recovered: bool, now_seconds: float) -> bool:
        """Called periodically with whether recovery is complete and a monotonic clock;
        whether it froze."""
        froze = recovered and (
            not self._recovered or now_seconds - self._frozen_at >= self._refreeze_seconds
        )
        if froze:
            freeze_heap()
            self._frozen_at = now_seconds
        self._recovered = recovered
        return froze

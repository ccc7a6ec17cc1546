from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from streamer.heap import (
    MIDDLE_COLLECTION_YOUNG,
    YOUNG_COLLECTION_OBJECTS,
    FreezeAfterRecovery,
    SlowCollectionFreezer,
    freeze_heap,
    set_collection_thresholds,
)


@pytest.fixture(autouse=True)
def unfrozen() -> Iterator[None]:
    callbacks = list(gc.callbacks)
    gc.callbacks.clear()  # only the callbacks a test installs
    gc.unfreeze()
    yield
    gc.unfreeze()
    gc.callbacks[:] = callbacks


def test_freeze_heap_moves_live_objects_out_of_the_collectors_sight() -> None:
    kept = [[i] for i in range(1000)]  # container objects, tracked by the collector
    frozen = freeze_heap()
    assert frozen >= len(kept)
    assert gc.get_freeze_count() == frozen
    seen = {id(obj) for generation in range(3) for obj in gc.get_objects(generation)}
    assert not any(id(x) in seen for x in kept)  # no collection walks them any more


def test_freezes_after_each_completed_recovery_and_then_periodically() -> None:
    freezer = FreezeAfterRecovery(refreeze_seconds=60.0)
    assert freezer.tick(False, 0.0) is False  # recovering
    assert freezer.tick(True, 1.0) is True  # recovery completed: freeze
    assert freezer.tick(True, 2.0) is False  # still complete, frozen a second ago
    assert freezer.tick(True, 61.0) is True  # a minute on: again
    assert freezer.tick(False, 62.0) is False  # a rebalance: recovering again
    assert freezer.tick(True, 63.0) is True  # completed again: freeze at once


def test_a_cycle_frozen_then_dropped_is_collected_at_the_next_freeze() -> None:
    class Node:
        other: object = None

    a, b = Node(), Node()
    a.other, b.other = b, a  # a reference cycle: reference counting alone never frees it
    probe = weakref.ref(a)
    freeze_heap()
    del a, b
    freeze_heap()  # unfreezes, collects, freezes
    assert probe() is None


def test_a_slow_full_collection_freezes_its_survivors() -> None:
    ticks = iter([0.0, 0.5])  # start, stop: 500 ms
    freezer = SlowCollectionFreezer(slow_seconds=0.01, clock=lambda: next(ticks))
    freezer.install()
    try:
        kept = [[i] for i in range(1000)]
        gc.collect()  # a full collection, "slow" by the clock above
    finally:
        freezer.remove()
    assert freezer.freezes == 1
    assert gc.get_freeze_count() >= len(kept)


def test_a_fast_or_young_collection_freezes_nothing() -> None:
    freezer = SlowCollectionFreezer(slow_seconds=10.0)
    freezer.install()
    try:
        gc.collect(0)
        gc.collect()
    finally:
        freezer.remove()
    assert freezer.freezes == 0
    assert gc.get_freeze_count() == 0


def test_a_freeze_as_recovery_completes_is_not_repeated_by_the_next_tick() -> None:
    freezer = FreezeAfterRecovery(refreeze_seconds=60.0)
    assert freezer.tick(False, 0.0) is False  # recovering
    freezer.recovery_completed(1.0)  # before the streams resume: frozen then
    assert gc.get_freeze_count() > 0
    assert freezer.tick(True, 1.5) is False  # the timer finds it frozen already
    assert freezer.tick(True, 61.0) is True  # and refreezes on its period
    assert freezer.tick(False, 62.0) is False  # a rebalance
    freezer.recovery_completed(63.0)
    assert freezer.tick(True, 64.0) is False


def test_the_worker_thresholds_leave_the_oldest_generation_as_it_was() -> None:
    before = gc.get_threshold()
    try:
        assert set_collection_thresholds() == (
            YOUNG_COLLECTION_OBJECTS,
            MIDDLE_COLLECTION_YOUNG,
            before[2],
        )
        assert gc.get_threshold()[0] == YOUNG_COLLECTION_OBJECTS
    finally:
        gc.set_threshold(*before)


def test_install_says_whether_it_installed() -> None:
    freezer = SlowCollectionFreezer()
    assert freezer.install() is True
    assert freezer.install() is False
    assert gc.callbacks.count(freezer) == 1

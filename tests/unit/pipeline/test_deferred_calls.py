"""Calls deferred on a thread are made later, in order, where replayed."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from streamer.pipeline.deferred_calls import Calls, deferrable, deferring, replay


def test_outside_deferring_the_call_is_made_at_once() -> None:
    seen: list[int] = []
    deferrable(seen.append)(1)
    assert seen == [1]


def test_calls_made_on_threads_are_replayed_in_the_order_asked() -> None:
    seen: list[tuple[int, str]] = []
    observe = deferrable(lambda i: seen.append((i, threading.current_thread().name)))
    kept: list[Calls] = [[] for _ in range(4)]

    def run(i: int) -> None:
        with deferring(kept[i]):
            observe(i)

    with ThreadPoolExecutor(max_workers=4, thread_name_prefix="inference") as pool:
        list(pool.map(run, [3, 1, 0, 2]))
    assert seen == []  # kept, not made
    for calls in kept:
        replay(calls)
    assert [i for i, _ in seen] == [0, 1, 2, 3]
    assert all(name == threading.main_thread().name for _, name in seen)
    assert all(calls == [] for calls in kept)


def test_deferring_ends_with_its_block() -> None:
    seen: list[int] = []
    observe = deferrable(seen.append)
    kept: Calls = []
    with deferring(kept):
        observe(1)
    observe(2)
    assert seen == [2] and len(kept) == 1

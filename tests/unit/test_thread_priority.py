"""The inference threads' lower priority: the nice value of the thread itself, not the process."""

from __future__ import annotations

import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from streamer.thread_priority import MAX_NICE, lower_thread_priority


def _nice_of_thread() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice is Linux's")
def test_the_pool_threads_are_lowered_and_the_caller_is_not() -> None:
    before = _nice_of_thread()
    with ThreadPoolExecutor(
        max_workers=2, initializer=lower_thread_priority, initargs=(3,)
    ) as pool:
        nices = set(pool.map(lambda _: _nice_of_thread(), range(8)))
    assert nices == {min(MAX_NICE, before + 3)}
    assert _nice_of_thread() == before  # the calling thread (and the process) unchanged


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice is Linux's")
def test_nice_is_capped_and_zero_leaves_the_thread_as_it_is() -> None:
    with ThreadPoolExecutor(max_workers=1) as pool:
        assert pool.submit(lower_thread_priority, 0).result() is None
        assert pool.submit(_nice_of_thread).result() == _nice_of_thread()
        assert pool.submit(lower_thread_priority, 40).result() == MAX_NICE
        assert pool.submit(_nice_of_thread).result() == MAX_NICE

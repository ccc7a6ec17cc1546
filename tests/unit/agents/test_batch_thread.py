"""The readings loop runs the batch processor on its own thread (STREAMER_BATCH_IN_THREAD)."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from streamer.agents.readings_agent import ReadingsLoop


def loop_with(thread: ThreadPoolExecutor | None) -> ReadingsLoop:
    loop = object.__new__(ReadingsLoop)  # only the runner is exercised here
    loop._thread = thread
    return loop


def test_the_processor_runs_off_the_event_loop_which_stays_free() -> None:
    readings_loop = loop_with(ThreadPoolExecutor(max_workers=1))
    ticks: list[float] = []

    def batch() -> str:
        time.sleep(0.3)  # a long batch (ONNX Runtime releases the GIL like this)
        return threading.current_thread().name

    async def ticker() -> None:
        while True:
            ticks.append(time.perf_counter())
            await asyncio.sleep(0.01)

    async def main() -> str:
        task = asyncio.create_task(ticker())
        try:
            return await readings_loop._run(batch)  # type: ignore[arg-type]
        finally:
            task.cancel()

    name = asyncio.run(main())
    assert name != threading.main_thread().name
    assert len(ticks) >= 10  # the loop ran other tasks meanwhile


def test_without_the_thread_the_processor_runs_inline() -> None:
    readings_loop = loop_with(None)
    name = asyncio.run(readings_loop._run(lambda: threading.current_thread().name))  # type: ignore[arg-type]
    assert name == threading.main_thread().name


def test_a_cancelled_batch_ends_before_the_cancellation_goes_on() -> None:
    readings_loop = loop_with(ThreadPoolExecutor(max_workers=1))
    done = threading.Event()

    def batch() -> None:
        time.sleep(0.2)
        done.set()

    async def main() -> None:
        task = asyncio.create_task(readings_loop._run(batch))  # type: ignore[arg-type]
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert done.is_set()  # the thread's batch finished before the task ended

    asyncio.run(main())

"""The readings loop runs the models' calls (or, with STREAMER_BATCH_IN_THREAD, the whole batch
processor) off the event loop, which stays free meanwhile."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from streamer.agents.readings_agent import ReadingsLoop, _all_done, _finish_in_order


def test_the_processor_runs_off_the_event_loop_which_stays_free() -> None:
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
            with ThreadPoolExecutor(max_workers=1) as pool:
                return await ReadingsLoop._run(pool, batch)
        finally:
            task.cancel()

    name = asyncio.run(main())
    assert name != threading.main_thread().name
    assert len(ticks) >= 10  # the loop ran other tasks meanwhile


def test_a_cancelled_batch_ends_before_the_cancellation_goes_on() -> None:
    done = threading.Event()

    def batch() -> None:
        time.sleep(0.2)
        done.set()

    async def main() -> None:
        with ThreadPoolExecutor(max_workers=1) as pool:
            task = asyncio.create_task(ReadingsLoop._run(pool, batch))
            await asyncio.sleep(0.05)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert done.is_set()  # the thread's batch finished before the task ended

    asyncio.run(main())


def test_cancelled_model_calls_all_end_before_the_cancellation_goes_on() -> None:
    ended: list[int] = []

    def call(i: int) -> None:
        time.sleep(0.1)
        ended.append(i)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        with ThreadPoolExecutor(max_workers=1) as pool:
            calls = [loop.run_in_executor(pool, call, i) for i in range(3)]
            task = asyncio.create_task(_all_done(calls))
            await asyncio.sleep(0.05)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert ended == [0, 1, 2]  # in order, all of them, before the task ended

    asyncio.run(main())


def test_a_failed_model_call_fails_the_batch_once_all_ended() -> None:
    ended: list[int] = []

    def call(i: int) -> None:
        time.sleep(0.02)
        ended.append(i)
        if i == 0:
            raise RuntimeError("model failed")

    async def main() -> None:
        loop = asyncio.get_running_loop()
        with ThreadPoolExecutor(max_workers=1) as pool:
            calls = [loop.run_in_executor(pool, call, i) for i in range(3)]
            with pytest.raises(RuntimeError, match="model failed"):
                await _all_done(calls)
            assert ended == [0, 1, 2]

    asyncio.run(main())


class _Finishes:
    """Stands in for the processor: notes each chunk it is asked to finish."""

    def __init__(self, ended: list[int]) -> None:
        self.ended = ended
        self.finished: list[tuple[int, list[int]]] = []
        self.first = asyncio.Event()

    def finish_next(self, pending: object) -> None:
        self.finished.append((len(self.finished), list(self.ended)))
        self.first.set()


def test_each_chunk_is_finished_once_its_call_returned_in_chunk_order() -> None:
    ended: list[int] = []
    gates = [threading.Event() for _ in range(3)]

    def call(i: int) -> None:
        gates[i].wait(5)
        ended.append(i)

    async def main() -> _Finishes:
        processor = _Finishes(ended)
        loop = asyncio.get_running_loop()
        with ThreadPoolExecutor(max_workers=3) as pool:
            calls = [loop.run_in_executor(pool, call, i) for i in range(3)]
            task = asyncio.create_task(_finish_in_order(processor, None, calls))  # type: ignore[arg-type]
            gates[0].set()
            await asyncio.wait_for(processor.first.wait(), 5)
            # the first chunk is finished while the later calls still run
            assert processor.finished == [(0, [0])]
            gates[2].set()
            await asyncio.sleep(0.05)
            assert len(processor.finished) == 1  # the third waits for the second
            gates[1].set()
            await task
        return processor

    processor = asyncio.run(main())
    assert [index for index, _ in processor.finished] == [0, 1, 2]
    assert processor.finished[1][1] == [0, 2, 1]


def test_a_failed_call_stops_the_finishing_and_fails_once_all_ended() -> None:
    ended: list[int] = []

    def call(i: int) -> None:
        time.sleep(0.02 * (3 - i))
        ended.append(i)
        if i == 1:
            raise RuntimeError("model failed")

    async def main() -> _Finishes:
        processor = _Finishes(ended)
        loop = asyncio.get_running_loop()
        with ThreadPoolExecutor(max_workers=3) as pool:
            calls = [loop.run_in_executor(pool, call, i) for i in range(3)]
            with pytest.raises(RuntimeError, match="model failed"):
                await _finish_in_order(processor, None, calls)  # type: ignore[arg-type]
            assert sorted(ended) == [0, 1, 2]  # every call ended before the error went on
        return processor

    processor = asyncio.run(main())
    assert [index for index, _ in processor.finished] == [0]  # nothing after the failed one


def test_a_cancelled_finishing_waits_for_every_call() -> None:
    ended: list[int] = []

    def call(i: int) -> None:
        time.sleep(0.05)
        ended.append(i)

    async def main() -> None:
        processor = _Finishes(ended)
        loop = asyncio.get_running_loop()
        with ThreadPoolExecutor(max_workers=1) as pool:
            calls = [loop.run_in_executor(pool, call, i) for i in range(3)]
            task = asyncio.create_task(_finish_in_order(processor, None, calls))  # type: ignore[arg-type]
            await asyncio.sleep(0.01)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert ended == [0, 1, 2]
            assert processor.finished == []

    asyncio.run(main())

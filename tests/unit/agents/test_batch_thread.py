"""The readings loop runs the models' calls (or, with STREAMER_BATCH_IN_THREAD, the whole batch
processor) off the event loop, which stays free meanwhile."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from streamer.agents.readings_agent import ReadingsLoop, _all_done, _run_chunks


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


class _Call:
    def __init__(self, call: Callable[[int], None], i: int) -> None:
        self.call, self.i = call, i

    def run(self) -> None:
        self.call(self.i)


class _Processor:
    """Stands in for the processor: chunks whose calls are ``call(i)`` (None: a chunk without
    forecasts), and a note of each chunk it is asked to finish."""

    def __init__(self, call: Callable[[int], None], chunks: list[int | None]) -> None:
        self.call, self.chunks = call, chunks
        self.ended: list[int] = []
        self.applied: list[int | None] = []
        self.finished: list[tuple[int, list[int]]] = []
        self.first = asyncio.Event()

    def apply_chunks(self, pending: object) -> Iterator[_Call | None]:
        for i in self.chunks:
            self.applied.append(i)
            yield None if i is None else _Call(self.call, i)

    def finish_next(self, pending: object) -> None:
        self.finished.append((len(self.finished), list(self.ended)))
        self.first.set()


def test_each_chunk_is_finished_once_its_call_returned_in_chunk_order() -> None:
    gates = [threading.Event() for _ in range(3)]
    ended: list[int] = []

    def call(i: int) -> None:
        gates[i].wait(5)
        ended.append(i)

    async def main() -> _Processor:
        processor = _Processor(call, [0, None, 1, 2])
        processor.ended = ended
        with ThreadPoolExecutor(max_workers=3) as pool:
            task = asyncio.create_task(_run_chunks(processor, None, pool))  # type: ignore[arg-type]
            gates[0].set()
            await asyncio.wait_for(processor.first.wait(), 5)
            # every chunk applied; the first finished while the later calls still run
            assert processor.applied == [0, None, 1, 2]
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


def test_the_event_loop_runs_between_chunks() -> None:
    ticks: list[int | None] = []

    async def main() -> None:
        processor = _Processor(lambda i: None, [None, None, None])

        async def ticker() -> None:
            while True:
                ticks.append(processor.applied[-1] if processor.applied else -1)
                await asyncio.sleep(0)

        task = asyncio.create_task(ticker())
        with ThreadPoolExecutor(max_workers=1) as pool:
            await _run_chunks(processor, None, pool)  # type: ignore[arg-type]
        task.cancel()

    asyncio.run(main())
    assert len(ticks) >= 3  # another task ran while the chunks were applied


def test_a_failed_call_stops_the_finishing_and_fails_once_all_ended() -> None:
    ended: list[int] = []

    def call(i: int) -> None:
        time.sleep(0.02 * (3 - i))
        ended.append(i)
        if i == 1:
            raise RuntimeError("model failed")

    async def main() -> _Processor:
        processor = _Processor(call, [0, 1, 2])
        with ThreadPoolExecutor(max_workers=3) as pool:
            with pytest.raises(RuntimeError, match="model failed"):
                await _run_chunks(processor, None, pool)  # type: ignore[arg-type]
            assert sorted(ended) == [0, 1, 2]  # every call ended before the error went on
        return processor

    processor = asyncio.run(main())
    assert [index for index, _ in processor.finished] == [0]  # nothing after the failed one


def test_a_cancelled_batch_waits_for_every_call_it_started() -> None:
    ended: list[int] = []

    def call(i: int) -> None:
        time.sleep(0.05)
        ended.append(i)

    async def main() -> None:
        processor = _Processor(call, [0, 1, 2])
        with ThreadPoolExecutor(max_workers=1) as pool:
            task = asyncio.create_task(_run_chunks(processor, None, pool))  # type: ignore[arg-type]
            await asyncio.sleep(0.01)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert ended == [0, 1, 2]
            assert processor.finished == []

    asyncio.run(main())


def test_a_chunk_that_fails_to_apply_waits_for_the_calls_already_started() -> None:
    ended: list[int] = []

    def call(i: int) -> None:
        time.sleep(0.05)
        ended.append(i)

    class Failing(_Processor):
        def apply_chunks(self, pending: object) -> Iterator[_Call | None]:
            yield _Call(self.call, 0)
            raise ValueError("preparing the second chunk failed")

    async def main() -> None:
        processor = Failing(call, [])
        with ThreadPoolExecutor(max_workers=1) as pool:
            with pytest.raises(ValueError, match="second chunk"):
                await _run_chunks(processor, None, pool)  # type: ignore[arg-type]
            assert ended == [0]  # the first chunk's call ended before the error went on

    asyncio.run(main())


def test_the_batch_hooks_run_once_all_is_applied_and_after_each_chunk_is_finished() -> None:
    events: list[str] = []
    gates = [threading.Event() for _ in range(3)]

    def call(i: int) -> None:
        gates[i].wait(5)

    async def main() -> None:
        processor = _Processor(call, [0, 1, 2])
        original_finish = processor.finish_next

        def finish_next(pending: object) -> None:
            original_finish(pending)
            events.append(f"finish {len(processor.finished) - 1}")

        processor.finish_next = finish_next  # type: ignore[method-assign]
        with ThreadPoolExecutor(max_workers=3) as pool:
            task = asyncio.create_task(
                _run_chunks(
                    processor,
                    None,  # type: ignore[arg-type]
                    pool,
                    applied=lambda: events.append(f"applied {len(processor.applied)}"),
                    finished=lambda: events.append(f"finished {len(processor.finished) - 1}"),
                    waiting=lambda: events.append("waiting"),
                )
            )
            await asyncio.sleep(0.05)
            # every chunk applied, no call returned yet: the applied hook ran, then the one for
            # the wait
            assert events == ["applied 3", "waiting"]
            for gate in gates:
                gate.set()
            await task

    asyncio.run(main())
    assert events == [
        "applied 3",
        "waiting",
        "finish 0",
        "finished 0",
        "finish 1",
        "finished 1",
        "finish 2",
        "finished 2",
    ]


def test_the_wait_hook_is_left_out_when_no_call_is_running() -> None:
    events: list[str] = []

    async def main() -> None:
        processor = _Processor(lambda i: None, [None, None])  # no chunk due a forecast
        with ThreadPoolExecutor(max_workers=2) as pool:
            await _run_chunks(
                processor,
                None,  # type: ignore[arg-type]
                pool,
                applied=lambda: events.append("applied"),
                waiting=lambda: events.append("waiting"),
            )

    asyncio.run(main())
    assert events == ["applied"]

"""Dynamic batching: concurrent requests share model runs, bounded, in order, never stuck."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest

from streamer.serving.batcher import DynamicBatcher
from streamer.serving.errors import RequestRejected
from streamer.serving.series_forecast import RowForecast


class Model:
    """Stands in for a forecaster: the batcher only groups by identity."""

    name = "m"
    version = "1"


class Recorder:
    def __init__(self, fail_first: bool = False) -> None:
        self.batches: list[tuple[Any, list[int]]] = []
        self.fail_first = fail_first

    async def __call__(
        self, model: Any, windows: np.ndarray, end_ms: np.ndarray, zones: np.ndarray
    ) -> list[Any]:
        self.batches.append((model, end_ms.tolist()))
        await asyncio.sleep(0.01)  # the model is busy: more requests queue meanwhile
        if self.fail_first:
            self.fail_first = False
            raise RuntimeError("model failed")
        return [RowForecast(model, None, None, f"row {e}") for e in end_ms.tolist()]


def windows(ids: list[int]) -> tuple[np.ndarray, np.ndarray]:
    return np.zeros((len(ids), 4), dtype=np.float32), np.array(ids, dtype=np.int64)


def batcher(run: Recorder, **options: Any) -> DynamicBatcher:
    values: dict[str, Any] = {
        "max_batch_series": 8,
        "queue_delay_seconds": 0.005,
        "max_pending_series": 100,
    }
    values.update(options)
    return DynamicBatcher(run, **values)


def reasons(rows: list[RowForecast]) -> list[str | None]:
    return [row.fallback_reason for row in rows]


def test_requests_that_arrive_together_run_as_one_batch_and_get_their_own_rows() -> None:
    run = Recorder()
    sizes: list[int] = []
    dynamic = batcher(run, on_batch=sizes.append)
    model = Model()

    async def main() -> list[list[RowForecast]]:
        return await asyncio.gather(
            *(dynamic.submit(model, *windows([10 * r + i for i in range(2)])) for r in range(4))  # type: ignore[arg-type]
        )

    answers = asyncio.run(main())
    assert len(run.batches) == 1 and sizes == [8]
    for r, rows in enumerate(answers):
        assert reasons(rows) == [f"row {10 * r}", f"row {10 * r + 1}"]
    assert dynamic.pending_series == 0


def test_a_request_larger_than_a_batch_is_split_and_answered_in_order() -> None:
    run = Recorder()
    dynamic = batcher(run)
    ids = list(range(20))
    rows = asyncio.run(dynamic.submit(Model(), *windows(ids)))  # type: ignore[arg-type]
    assert [len(b[1]) for b in run.batches] == [8, 8, 4]
    assert reasons(rows) == [f"row {i}" for i in ids]


def test_batches_never_mix_models_and_keep_arrival_order_per_model() -> None:
    run = Recorder()
    dynamic = batcher(run)
    first, second = Model(), Model()

    async def main() -> None:
        await asyncio.gather(
            dynamic.submit(first, *windows([1])),  # type: ignore[arg-type]
            dynamic.submit(second, *windows([2])),  # type: ignore[arg-type]
            dynamic.submit(first, *windows([3])),  # type: ignore[arg-type]
        )

    asyncio.run(main())
    assert [(model is first, ids) for model, ids in run.batches] == [
        (True, [1, 3]),
        (False, [2]),
    ]


def test_a_full_queue_refuses_with_429_at_once() -> None:
    run = Recorder()
    dynamic = batcher(run, max_pending_series=10)

    async def main() -> None:
        held = asyncio.ensure_future(dynamic.submit(Model(), *windows(list(range(8)))))  # type: ignore[arg-type]
        await asyncio.sleep(0)
        with pytest.raises(RequestRejected) as caught:
            await dynamic.submit(Model(), *windows(list(range(3))))  # type: ignore[arg-type]
        assert caught.value.status == 429 and caught.value.reason == "overloaded"
        assert "at most 10" in caught.value.detail
        await held

    asyncio.run(main())


def test_a_failed_batch_fails_its_requests_and_the_next_batch_still_runs() -> None:
    run = Recorder(fail_first=True)
    dynamic = batcher(run)

    async def main() -> list[RowForecast]:
        with pytest.raises(RuntimeError, match="model failed"):
            await dynamic.submit(Model(), *windows([1]))  # type: ignore[arg-type]
        return await dynamic.submit(Model(), *windows([2]))  # type: ignore[arg-type]

    assert reasons(asyncio.run(main())) == ["row 2"]


def test_a_cancelled_request_is_skipped_and_counts_no_more() -> None:
    run = Recorder()
    dynamic = batcher(run, queue_delay_seconds=0.05)

    async def main() -> None:
        gone = asyncio.ensure_future(dynamic.submit(Model(), *windows([1])))  # type: ignore[arg-type]
        await asyncio.sleep(0.01)
        gone.cancel()
        rows = await dynamic.submit(Model(), *windows([2]))  # type: ignore[arg-type]
        assert reasons(rows) == ["row 2"]

    asyncio.run(main())
    assert [ids for _, ids in run.batches] == [[2]]
    assert dynamic.pending_series == 0


def test_with_two_instances_a_second_batch_starts_while_the_first_runs() -> None:
    running: list[int] = []
    overlapped: list[int] = []

    async def run(model: Any, windows: np.ndarray, end_ms: np.ndarray, zones: Any) -> list[Any]:
        running.append(1)
        await asyncio.sleep(0.02)
        overlapped.append(len(running))
        running.pop()
        return [RowForecast(model, None, None, None) for _ in end_ms.tolist()]

    model = Model()
    for instances, most in [(1, 1), (2, 2)]:
        overlapped.clear()
        dynamic = DynamicBatcher(
            run, max_batch_series=4, queue_delay_seconds=0.0, max_pending_series=100,
            instances=instances,
        )  # fmt: skip

        async def main(dynamic: DynamicBatcher = dynamic) -> None:
            await asyncio.gather(*(dynamic.submit(model, *windows([i] * 4)) for i in range(4)))  # type: ignore[arg-type]

        asyncio.run(main())
        assert max(overlapped) == most, (instances, overlapped)

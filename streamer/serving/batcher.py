"""Dynamic batching: the windows of requests that arrive together run as one model call.

Like Triton's dynamic batcher: a request's windows join a queue; the queue's oldest window waits
at most ``queue_delay_seconds`` for others to fill a batch of ``max_batch_series``, and a full
batch runs at once. While a batch runs, new windows queue; when it ends, the next batch takes
what has queued (continuous batching). A request larger than a batch is split, its parts
answered together. Batches of one model only: windows for another model wait for their turn.
Up to ``instances`` batches run at once (Triton's instance count): while one runs on its thread,
the next is taken and started, so the event loop's parsing and encoding overlap the model.
``max_pending_series`` bounds the queue: past it :meth:`DynamicBatcher.submit` refuses with
429 at once, so a flood of requests costs memory for its bodies only, never an unbounded queue.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from streamer.forecast.protocol import Forecaster
from streamer.serving.errors import RequestRejected
from streamer.serving.series_forecast import RowForecast

log = logging.getLogger(__name__)

#: Runs one batch: ``(model, windows (B, L), end_ms (B,), zones (B,)) -> B row forecasts``.
BatchRunner = Callable[
    [Forecaster, npt.NDArray[np.float32], npt.NDArray[np.int64], npt.NDArray[np.str_]],
    Awaitable[list[RowForecast]],
]


@dataclass(slots=True)
class _Part:
    model: Forecaster
    windows: npt.NDArray[np.float32]
    end_ms: npt.NDArray[np.int64]
    zones: npt.NDArray[np.str_]
    future: asyncio.Future[list[RowForecast]]
    arrived: float = field(default_factory=time.monotonic)

    @property
    def size(self) -> int:
        return int(self.end_ms.shape[0])


class DynamicBatcher:
    def __init__(
        self,
        run: BatchRunner,
        *,
        max_batch_series: int,
        queue_delay_seconds: float,
        max_pending_series: int,
        instances: int = 1,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        self._run = run
        self.max_batch_series = max_batch_series
        self.queue_delay_seconds = queue_delay_seconds
        self.max_pending_series = max_pending_series
        self._on_batch = on_batch
        self._queue: deque[_Part] = deque()
        self._pending = 0
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self.instances = instances
        self._free: asyncio.Semaphore | None = None
        self._running: set[asyncio.Task[None]] = set()

    @property
    def pending_series(self) -> int:
        return self._pending

    async def submit(
        self,
        model: Forecaster,
        windows: npt.NDArray[np.float32],
        end_ms: npt.NDArray[np.int64],
        zones: npt.NDArray[np.str_] | None = None,
    ) -> list[RowForecast]:
        """The forecasts of ``windows`` (in the IANA ``zones``, one per row; UTC when None),
        in order, once their batches have run."""
        count = int(end_ms.shape[0])
        if zones is None:
            zones = np.full(count, "UTC")
        if self._pending + count > self.max_pending_series:
            raise RequestRejected(
                429,
                "overloaded",
                f"{self._pending} series are queued for the model and this request adds "
                f"{count}; at most {self.max_pending_series} may wait "
                "(STREAMER_SERVING_MAX_PENDING_SERIES): retry after a short pause",
            )
        loop = asyncio.get_running_loop()
        self._ensure_running()
        step = self.max_batch_series
        parts = [
            _Part(
                model,
                windows[i : i + step],
                end_ms[i : i + step],
                zones[i : i + step],
                loop.create_future(),
            )
            for i in range(0, count, step)
        ]
        self._queue.extend(parts)
        self._pending += count
        assert self._wake is not None
        self._wake.set()
        results = await asyncio.gather(*(part.future for part in parts))
        return [row for rows in results for row in rows]

    def _ensure_running(self) -> None:
        if self._task is None or self._task.done():
            self._wake = asyncio.Event()
            self._free = asyncio.Semaphore(self.instances)
            self._task = asyncio.get_running_loop().create_task(
                self._loop(), name="streamer-serving-batcher"
            )

    def _take(self) -> list[_Part]:
        """The parts of the next batch: the oldest part's model, up to the batch size."""
        first = self._queue[0]
        taken: list[_Part] = []
        kept: deque[_Part] = deque()
        size = 0
        while self._queue:
            part = self._queue.popleft()
            if part.model is first.model and size + part.size <= self.max_batch_series:
                taken.append(part)
                size += part.size
            else:
                kept.append(part)
        self._queue.extendleft(reversed(kept))
        self._pending -= size
        return taken

    def _queued_for(self, model: Forecaster) -> int:
        return sum(part.size for part in self._queue if part.model is model)

    async def _loop(self) -> None:
        assert self._wake is not None
        wake = self._wake
        while True:
            if not self._queue:
                wake.clear()
                await wake.wait()
                continue
            first = self._queue[0]
            deadline = first.arrived + self.queue_delay_seconds
            while self._queued_for(first.model) < self.max_batch_series:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                wake.clear()
                try:
                    await asyncio.wait_for(wake.wait(), left)
                except TimeoutError:
                    break
            assert self._free is not None
            await self._free.acquire()  # an instance is free: the batch is taken now
            running = asyncio.get_running_loop().create_task(self._run_parts(self._take()))
            self._running.add(running)
            running.add_done_callback(self._running.discard)

    async def _run_parts(self, parts: list[_Part]) -> None:
        try:
            await self._run_live(parts)
        finally:
            assert self._free is not None
            self._free.release()

    async def _run_live(self, parts: list[_Part]) -> None:
        live = [part for part in parts if not part.future.done()]  # a client gone: skip it
        if not live:
            return
        windows = np.concatenate([part.windows for part in live])
        end_ms = np.concatenate([part.end_ms for part in live])
        if self._on_batch is not None:
            self._on_batch(int(end_ms.shape[0]))
        try:
            zones = np.concatenate([part.zones for part in live])
            rows = await self._run(live[0].model, windows, end_ms, zones)
        except Exception as exc:  # one bad batch must not stop the batcher
            log.exception("POST /v1/forecast: a batch of %d series failed", end_ms.shape[0])
            for part in live:
                if not part.future.done():
                    part.future.set_exception(exc)
            return
        start = 0
        for part in live:
            if not part.future.done():
                part.future.set_result(rows[start : start + part.size])
            start += part.size

"""The readings loop goes on processing while a delivery waits for the broker, delivers in the
order it processed, stops on a failed delivery, and leaves no batch counted in flight."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from streamer.agents.readings_agent import ReadingsLoop


class Feed:
    """Hands out ``batches`` one by one, then waits forever; counts batches in flight."""

    def __init__(self, batches: int) -> None:
        self._left = list(range(batches))
        self.in_flight = 0
        self.taken = 0
        self.queued_events = 0

    async def take(self) -> list[Any]:
        if not self._left:
            await asyncio.Event().wait()
        self.in_flight += 1
        self.taken += 1
        return [self._left.pop(0)]

    def delivered(self) -> None:
        self.in_flight -= 1

    def add_in_flight(self) -> None:
        self.in_flight += 1


class Loop(ReadingsLoop):
    """process() tags the batch; deliver() waits for its batch's gate (or raises)."""

    def __init__(self, feed: Feed, fail_at: int | None = None) -> None:
        self.feed = feed  # type: ignore[assignment]
        self.batches = 0
        self.processed: list[int] = []
        self.delivered: list[int] = []
        self.gates: dict[int, asyncio.Event] = {}
        self.fail_at = fail_at

    async def _queue_flush(self, put: Any) -> bool:
        return False  # no state writes held back (the processor is not involved here)

    def gate(self, batch: int) -> asyncio.Event:
        return self.gates.setdefault(batch, asyncio.Event())

    async def process(self, chunks: list[Any]) -> Any:
        self.processed.append(chunks[0])
        return chunks[0]

    async def deliver(self, batch: Any) -> None:
        await self.gate(batch).wait()
        if batch == self.fail_at:
            raise ConnectionError(f"delivery of batch {batch} failed")
        self.delivered.append(batch)


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0.002)


def test_processing_goes_on_while_a_delivery_waits_and_deliveries_keep_their_order() -> None:
    async def scenario() -> None:
        feed = Feed(4)
        loop = Loop(feed)
        task = asyncio.create_task(loop.run())
        await settle()
        # batch 0 is being delivered (its acks not back), batch 1 waits its turn, batch 2 is
        # processed and waits for room: the loop did not wait for batch 0's acknowledgements
        assert loop.processed == [0, 1, 2]
        assert loop.delivered == []
        assert feed.in_flight == 3
        for batch in (2, 1, 3, 0):  # acks in any order: deliveries still one after the other
            loop.gate(batch).set()
        await settle()
        assert loop.delivered == [0, 1, 2, 3]
        assert feed.in_flight == 0
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())


def test_a_failed_delivery_stops_the_loop_with_its_error_and_nothing_stays_in_flight() -> None:
    async def scenario() -> None:
        feed = Feed(5)
        loop = Loop(feed, fail_at=1)
        task = asyncio.create_task(loop.run())
        await settle()
        loop.gate(0).set()
        loop.gate(1).set()
        with pytest.raises(ConnectionError, match="batch 1"):
            await asyncio.wait_for(task, 5)
        assert loop.delivered == [0]
        assert feed.in_flight == 0  # every batch taken is delivered or given up

    asyncio.run(scenario())


def test_a_cancelled_loop_gives_up_the_batches_it_holds() -> None:
    async def scenario() -> None:
        feed = Feed(3)
        loop = Loop(feed)
        task = asyncio.create_task(loop.run())
        await settle()
        assert feed.in_flight == 3
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert feed.in_flight == 0

    asyncio.run(scenario())


def test_a_delivery_failing_while_the_loop_waits_for_room_gives_up_every_batch_taken() -> None:
    async def scenario() -> None:
        feed = Feed(5)
        loop = Loop(feed, fail_at=0)
        task = asyncio.create_task(loop.run())
        await settle()
        assert loop.processed == [0, 1, 2]  # 1 waits for its turn, 2 for room
        loop.gate(0).set()
        with pytest.raises(ConnectionError, match="batch 0"):
            await asyncio.wait_for(task, 5)
        assert loop.delivered == []
        assert feed.taken == 3 and feed.in_flight == 0

    asyncio.run(scenario())


class Processor:
    """What the loop asks of the processor about coalesced state writes."""

    coalesce_state_writes = True
    unflushed_meters = 0

    def __init__(self) -> None:
        self.flushes = 0

    def flush_state(self, result: Any) -> int:
        self.flushes += 1
        return 0


class Runtime:
    def __init__(self) -> None:
        self.processor = Processor()


class CoalescingLoop(Loop):
    """process() holds back its batch's state writes as the worker's does (every
    COMMIT_EVERY_BATCHES batches or when nothing is queued); a batch of the held-back writes
    alone records the chunks it acknowledges."""

    def __init__(self, feed: Feed) -> None:
        super().__init__(feed)
        self.runtime = Runtime()  # type: ignore[assignment]
        self._since_flush = 0
        self._unacknowledged = []
        self._flush_lock = asyncio.Lock()
        self.acknowledged: list[tuple[str, list[Any]]] = []

    async def process(self, chunks: list[Any]) -> Any:
        self.processed.append(chunks[0])
        feed: Any = self.feed
        feed.queued_events = 1 if feed._left else 0
        self.acknowledged.append(("batch", self._flushed(None, chunks)))  # type: ignore[arg-type]
        return chunks[0]

    async def _flush_batch(self) -> Any:
        if not self._unacknowledged:
            return None
        held, self._unacknowledged = self._unacknowledged, []
        self.acknowledged.append(("flush", held))
        return "flush"

    async def _queue_flush(self, put: Any) -> bool:
        return await ReadingsLoop._queue_flush(self, put)


def test_state_writes_are_held_back_through_a_backlog_and_written_when_it_ends() -> None:
    from streamer.delivery.offset_commits import COMMIT_EVERY_BATCHES

    assert COMMIT_EVERY_BATCHES == 4

    async def scenario() -> None:
        feed = Feed(6)
        loop = CoalescingLoop(feed)
        for batch in [*range(6), "flush"]:
            loop.gate(batch).set()
        task = asyncio.create_task(loop.run())
        await settle()
        # batches 0-2 held back; batch 3 ends the run of 4 and carries them; batches 4 and 5:
        # the last one has nothing queued behind it and carries both
        assert loop.acknowledged == [
            ("batch", []),
            ("batch", []),
            ("batch", []),
            ("batch", [0, 1, 2, 3]),
            ("batch", []),
            ("batch", [4, 5]),
        ]
        assert loop.runtime.processor.flushes == 2  # type: ignore[attr-defined]
        assert loop.delivered == [0, 1, 2, 3, 4, 5] and feed.in_flight == 0
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())


def test_state_writes_held_back_when_the_readings_behind_them_went_are_written_alone() -> None:
    async def scenario() -> None:
        feed = Feed(2)
        loop = CoalescingLoop(feed)
        for batch in (0, 1, "flush"):
            loop.gate(batch).set()  # type: ignore[arg-type]

        async def process(chunks: list[Any]) -> Any:  # readings queued behind each batch...
            loop.processed.append(chunks[0])
            feed.queued_events = 1
            loop.acknowledged.append(("batch", loop._flushed(None, chunks)))  # type: ignore[arg-type]
            feed.queued_events = 0  # ...then dropped (a revoke): the loop is about to wait
            return chunks[0]

        loop.process = process  # type: ignore[method-assign]
        task = asyncio.create_task(loop.run())
        await settle()
        # before it waits for readings again, the loop writes what it held back, alone
        assert loop.acknowledged == [("batch", []), ("flush", [0]), ("batch", []), ("flush", [1])]
        assert loop.delivered == [0, "flush", 1, "flush"] and feed.in_flight == 0
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())


class AheadFeed(Feed):
    """Hands batches (a chunk each) to take() and, while it has any, to take_nowait()."""

    def __init__(self, batches: int) -> None:
        super().__init__(batches)
        self.taken_ahead = 0

    def ready_nowait(self) -> bool:
        return bool(self._left)

    def take_nowait(self) -> list[Any]:
        if not self._left:
            return []
        self.in_flight += 1
        self.taken += 1
        self.taken_ahead += 1
        return [SimpleNamespace(tag=self._left.pop(0), messages=[])]

    async def take(self) -> list[Any]:
        chunks = await super().take()
        return [SimpleNamespace(tag=chunks[0], messages=[])]


class BeginningProcessor(Processor):
    def __init__(self, fail: bool = False) -> None:
        super().__init__()
        self.begun = 0
        self.fail = fail

    def begin(self, messages: Any, load: Any, now: int) -> Any:
        self.begun += 1
        if self.fail:
            raise RuntimeError("parsing failed")
        return SimpleNamespace(now_ms=now)


class AheadLoop(Loop):
    """process() picks up the batch taken ahead, if it is this one, then takes the next one
    ahead (as the worker's does while its models run); fails at ``fail_at``."""

    def __init__(self, feed: Feed, fail_at: int | None = None, fail_begin: bool = False) -> None:
        super().__init__(feed)
        self.runtime = SimpleNamespace(processor=BeginningProcessor(fail_begin))  # type: ignore[assignment]
        self._load = None  # type: ignore[assignment]
        self.process_fail_at = fail_at
        self.ahead_of: list[bool] = []
        self._ahead = None

    async def process(self, chunks: list[Any]) -> Any:
        tag = chunks[0].tag
        self.ahead_of.append(self._taken_ahead(chunks) is not None)
        self.processed.append(tag)
        self._take_ahead()
        await asyncio.sleep(0)
        if tag == self.process_fail_at:
            raise ValueError(f"processing batch {tag} failed")
        return tag


def test_a_batch_taken_ahead_is_processed_next_and_delivered_in_order() -> None:
    async def scenario() -> None:
        feed = AheadFeed(4)
        loop = AheadLoop(feed)
        for batch in range(4):
            loop.gate(batch).set()
        task = asyncio.create_task(loop.run())
        await settle()
        assert loop.processed == [0, 1, 2, 3] and loop.delivered == [0, 1, 2, 3]
        # the first was taken by take(); each later one ahead, while the one before it ran
        assert loop.ahead_of == [False, True, True, True] and feed.taken_ahead == 3
        assert loop.runtime.processor.begun == 3  # type: ignore[attr-defined]
        assert feed.in_flight == 0
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())


@pytest.mark.parametrize("how", ["processing fails", "cancelled", "parsing ahead fails"])
def test_a_batch_taken_ahead_is_not_left_in_flight_when_the_loop_stops(how: str) -> None:
    async def scenario() -> None:
        feed = AheadFeed(5)
        loop = AheadLoop(
            feed,
            fail_at=1 if how == "processing fails" else None,
            fail_begin=how == "parsing ahead fails",
        )
        task = asyncio.create_task(loop.run())
        await settle()
        if how == "cancelled":
            assert loop._ahead is not None  # the loop waits for room with one taken ahead
            task.cancel()
        with pytest.raises((ValueError, RuntimeError, asyncio.CancelledError)):
            await asyncio.wait_for(task, 5)
        assert loop._ahead is None
        assert feed.in_flight == 0  # every batch taken is delivered or given up
        assert feed.taken >= 2

    asyncio.run(scenario())


def test_state_writes_are_held_back_while_a_batch_is_taken_ahead() -> None:
    feed = AheadFeed(0)
    loop = CoalescingLoop(feed)
    loop._ahead = object()  # type: ignore[assignment]
    assert loop._flushed(None, ["a"]) == []  # type: ignore[arg-type]  # nothing queued, one ahead
    loop._ahead = None
    assert loop._flushed(None, ["b"]) == ["a", "b"]  # type: ignore[arg-type]

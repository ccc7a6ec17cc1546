"""The bulk readings feed: continuous batching, bounded queue, epochs, and acks into faust's
bookkeeping."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from types import SimpleNamespace
from typing import Any

import pytest
from faust.transport.consumer import Consumer
from faust.types import TP

from streamer.faust_glue.bulk_readings import (
    Chunk,
    ReadingsFeed,
    ack_offsets,
    attach_feed,
    commit_acknowledged,
    in_messages,
    wait_for_feed,
)
from streamer.pipeline.messages import InMessage

TOPIC = "meter-readings"


def msgs(partition: int, offsets: range) -> list[InMessage]:
    return [InMessage(b"m", b"{}", TOPIC, partition, o, 1_000) for o in offsets]


def feed(max_events: int = 10, capacity: int = 20) -> ReadingsFeed:
    return ReadingsFeed(TOPIC, max_events=max_events, capacity_events=capacity)


def test_take_shares_the_batch_maximum_among_partitions() -> None:
    f = feed(max_events=10, capacity=100)
    f.put_nowait(0, msgs(0, range(0, 20)))
    f.put_nowait(1, msgs(1, range(0, 4)))
    f.put_nowait(2, msgs(2, range(0, 20)))
    first = f.take_nowait()
    taken = {c.partition: [m.offset for m in c.messages] for c in first}
    # ceil(10 / 3) = 4 each, the last partition gets what is left of the 10
    assert taken == {0: [0, 1, 2, 3], 1: [0, 1, 2, 3], 2: [0, 1]}
    second = f.take_nowait()
    # partition 1 is empty now: the others share the 10, in order within each partition
    assert sorted((c.partition, c.messages[0].offset, len(c.messages)) for c in second) == [
        (0, 4, 5),
        (2, 2, 5),
    ]
    assert f.in_flight == 2
    assert f.queued_events == 44 - 20


def test_a_large_fetch_is_split_into_batches_of_at_most_the_maximum() -> None:
    f = feed(max_events=10, capacity=100)
    f.put_nowait(3, msgs(3, range(100, 125)))
    sizes = [sum(len(c.messages) for c in f.take_nowait()) for _ in range(3)]
    assert sizes == [10, 10, 5]
    assert f.queued_events == 0


def test_take_waits_only_when_nothing_is_queued() -> None:
    async def scenario() -> list[int]:
        f = feed()
        waiter = asyncio.ensure_future(f.take())
        await asyncio.sleep(0.01)
        assert not waiter.done()
        f.put_nowait(0, msgs(0, range(5)))
        chunks = await asyncio.wait_for(waiter, 1)
        return [m.offset for c in chunks for m in c.messages]

    assert asyncio.run(scenario()) == [0, 1, 2, 3, 4]


def test_take_lingers_for_more_readings_while_fewer_than_a_batch_are_queued() -> None:
    async def scenario() -> tuple[list[int], float]:
        f = ReadingsFeed(TOPIC, max_events=10, capacity_events=20, linger_seconds=0.2)
        started = time.monotonic()
        f.put_nowait(0, msgs(0, range(3)))
        waiter = asyncio.ensure_future(f.take())
        await asyncio.sleep(0.05)
        assert not waiter.done()  # 3 of 10 queued, the oldest 50 ms old: lingering
        f.put_nowait(1, msgs(1, range(2)))
        await asyncio.sleep(0.05)
        assert not waiter.done()  # an arrival does not end the linger
        chunks = await asyncio.wait_for(waiter, 1)
        return [m.offset for c in chunks for m in c.messages], time.monotonic() - started

    offsets, waited = asyncio.run(scenario())
    assert sorted(offsets) == [0, 0, 1, 1, 2]  # both arrivals in one batch
    assert 0.19 <= waited < 0.6  # from the oldest reading's arrival, not the latest


def test_take_lingers_no_longer_once_a_batch_is_queued_or_the_oldest_waited_enough() -> None:
    async def scenario() -> None:
        f = ReadingsFeed(TOPIC, max_events=10, capacity_events=40, linger_seconds=5.0)
        f.put_nowait(0, msgs(0, range(4)))
        waiter = asyncio.ensure_future(f.take())
        await asyncio.sleep(0.02)
        assert not waiter.done()
        f.put_nowait(1, msgs(1, range(8)))  # 12 queued: a full batch
        chunks = await asyncio.wait_for(waiter, 1)
        assert sum(len(c.messages) for c in chunks) == 10
        # the 2 left arrived 5 s ago as far as the linger knows (the oldest queued): taken at
        # once; a backlog never lingers
        f._first_arrival -= 5.0
        chunks = await asyncio.wait_for(f.take(), 0.5)
        assert sum(len(c.messages) for c in chunks) == 2
        # no linger: what has arrived is taken at once
        plain = feed()
        plain.put_nowait(0, msgs(0, range(1)))
        assert len(await asyncio.wait_for(plain.take(), 0.5)) == 1

    asyncio.run(scenario())


def test_ready_now_is_whether_take_would_take_at_once() -> None:
    f = ReadingsFeed(TOPIC, max_events=10, capacity_events=40, linger_seconds=5.0)
    assert not f.ready_nowait()  # nothing queued
    f.put_nowait(0, msgs(0, range(4)))
    assert not f.ready_nowait()  # fewer than a batch, lingering
    f._first_arrival -= 5.0
    assert f.ready_nowait()  # the oldest waited its linger
    f.put_nowait(1, msgs(1, range(8)))
    f._first_arrival += 5.0
    assert f.ready_nowait()  # a full batch queued
    f.hold()
    assert not f.ready_nowait()  # held: take() would wait for the release
    f.release()
    plain = feed()
    plain.put_nowait(0, msgs(0, range(1)))
    assert plain.ready_nowait()  # no linger


def test_a_held_feed_ends_the_linger_and_waits_for_its_release() -> None:
    async def scenario() -> list[int]:
        f = ReadingsFeed(TOPIC, max_events=10, capacity_events=20, linger_seconds=5.0)
        f.put_nowait(0, msgs(0, range(3)))
        waiter = asyncio.ensure_future(f.take())
        await asyncio.sleep(0.02)
        f.hold()
        f.put_nowait(0, msgs(0, range(3, 4)))  # wakes the linger, which sees the hold
        await asyncio.sleep(0.02)
        assert not waiter.done()  # held: nothing taken
        f.revoke()  # the seek dropped what was queued
        f.release()
        f.put_nowait(2, msgs(2, range(7)))
        f._first_arrival -= 5.0  # (as if the new readings had waited their linger)
        chunks = await asyncio.wait_for(waiter, 1)
        return [m.offset for c in chunks for m in c.messages]

    assert asyncio.run(scenario()) == list(range(7))


@pytest.mark.parametrize("queued_before_hold", [True, False])
def test_take_waits_while_the_feed_is_held_and_lets_the_event_loop_run(
    queued_before_hold: bool,
) -> None:
    """A seek holds the feed while readings are queued (fetched around a rebalance): ``take``
    must wait, not spin. It spun once (the event of arrivals stayed set while nothing could be
    taken): the event loop ran nothing else, the seek that holds the feed never released it, and
    the worker hung for good, its log ending at faust's "Seek stream partitions to committed
    offsets" (a coalescing loop run of the worker-crash test)."""

    async def scenario() -> list[int]:
        f = feed()
        if queued_before_hold:
            f.put_nowait(0, msgs(0, range(5)))
        f.hold()
        calls = 0
        take_nowait = f.take_nowait

        def counted() -> list[Chunk]:
            nonlocal calls
            calls += 1
            if calls > 50:
                raise AssertionError("take() spins while the feed is held")
            return take_nowait()

        f.take_nowait = counted  # type: ignore[method-assign]
        waiter = asyncio.ensure_future(f.take())
        await asyncio.sleep(0.01)
        if not queued_before_hold:
            f.put_nowait(0, msgs(0, range(5)))  # arrives during the hold
            await asyncio.sleep(0.01)
        assert not waiter.done(), waiter.exception()
        assert calls <= 2
        f.release()
        chunks = await asyncio.wait_for(waiter, 1)
        return [m.offset for c in chunks for m in c.messages]

    assert asyncio.run(scenario()) == [0, 1, 2, 3, 4]


def test_the_queue_is_bounded_and_frees_space_when_taken() -> None:
    async def scenario() -> None:
        f = feed(max_events=10, capacity=20)
        f.put_nowait(0, msgs(0, range(20)))
        assert not f.has_space()
        waiter = asyncio.ensure_future(f.wait_space())
        await asyncio.sleep(0.01)
        assert not waiter.done()
        f.take_nowait()
        await asyncio.wait_for(waiter, 1)

    asyncio.run(scenario())


def test_revoke_drops_queued_chunks_and_older_epochs() -> None:
    f = feed()
    f.put_nowait(0, msgs(0, range(3)))
    assert f.revoke() == 3
    assert f.take_nowait() == []
    assert f.dropped_events == 3
    f.put_nowait(0, msgs(0, range(3, 5)))
    (chunk,) = f.take_nowait()
    assert chunk.epoch == 1 and chunk.last_offset == 4


def test_wait_delivered_waits_for_every_batch_taken() -> None:
    async def scenario() -> tuple[bool, bool]:
        f = feed()
        f.put_nowait(0, msgs(0, range(3)))
        f.take_nowait()
        early = await f.wait_delivered(0.01)
        asyncio.get_running_loop().call_later(0.02, f.delivered)
        late = await f.wait_delivered(1)
        return early, late

    assert asyncio.run(scenario()) == (False, True)


class Record:
    def __init__(self, offset: int) -> None:
        self.key = b"k"
        self.value = b"v"
        self.topic = TOPIC
        self.partition = 2
        self.offset = offset
        self.timestamp = 1_700_000_000_123


def test_aiokafka_records_become_in_messages_with_millisecond_timestamps() -> None:
    (m,) = in_messages([Record(7)])
    assert m == InMessage(b"k", b"v", TOPIC, 2, 7, 1_700_000_000_123)


class Bookkeeping:
    """The attributes of faust's Consumer that ack_offsets writes."""

    def __init__(self, committed: int | None) -> None:
        self._committed_offset: dict[Any, int | None] = defaultdict(lambda: committed)
        self._acked_index: dict[Any, set[int]] = defaultdict(set)
        self._acked: dict[Any, list[int]] = defaultdict(list)
        self._n_acked = 0
        self._waiting_for_ack: asyncio.Future[None] | None = None


@pytest.mark.parametrize("committed", [None, 5])
def test_ack_offsets_is_faust_acks_bookkeeping(committed: int | None) -> None:
    consumer = Bookkeeping(committed)
    tp = TP(TOPIC, 0)
    assert ack_offsets(consumer, tp, [3, 4, 5, 6]) == (4 if committed is None else 2)
    assert ack_offsets(consumer, tp, [6, 7]) == 1  # 6 was acknowledged already
    expected = [3, 4, 5, 6, 7] if committed is None else [5, 6, 7]
    assert consumer._acked[tp] == expected
    assert consumer._acked_index[tp] == set(expected)
    assert consumer._n_acked == len(expected)


class ChangelogRecord:
    def __init__(self, offset: int, key: bytes, value: bytes | None) -> None:
        self.offset = offset
        self.key = key
        self.value = value


class MemoryStore:
    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}
        self._key_partition: dict[bytes, int] = {}


class FakeTable:
    def __init__(self) -> None:
        self.data = MemoryStore()


class FakeRecovery:
    def __init__(self, tp: Any, table: FakeTable, *, in_recovery: bool = True) -> None:
        self.active_tps = {tp}
        self.standby_tps: set[Any] = set()
        self.in_recovery = in_recovery
        self.active_offsets: dict[Any, int] = {tp: 1}
        self.standby_offsets: dict[Any, int] = {}
        self.tp_to_table = {tp: table}


class FakeApp:
    def __init__(self, recovery: FakeRecovery) -> None:
        self.tables = type("Tables", (), {"recovery": recovery})()


class FakeConsumer:
    def __init__(self, recovery: FakeRecovery) -> None:
        self.app = FakeApp(recovery)
        self._read_offset: dict[Any, int | None] = defaultdict(lambda: None)


def test_recovery_applies_a_fetch_at_once_and_leaves_only_a_signal() -> None:
    from streamer.faust_glue.bulk_readings import recover_in_bulk

    tp = TP("app-state-changelog", 3)
    table = FakeTable()
    table.data.data[b"gone"] = b"old"
    recovery = FakeRecovery(tp, table)
    consumer = FakeConsumer(recovery)
    records = [
        ChangelogRecord(0, b"a", b"stale"),  # at or below the recovery offset (1): skipped
        ChangelogRecord(1, b"a", b"stale"),
        ChangelogRecord(2, b"a", b"v2"),
        ChangelogRecord(3, b"gone", None),  # a tombstone deletes
        ChangelogRecord(4, b"a", b"v4"),
    ]
    rest = recover_in_bulk(consumer, tp, records)
    assert table.data.data == {b"a": b"v4"}
    assert table.data._key_partition == {b"a": 3}
    assert recovery.active_offsets[tp] == 4
    # the last record still goes to faust's recovery, at an offset it has seen: a signal only
    assert [r.offset for r in rest] == [4]


def test_recovery_leaves_partitions_not_in_recovery_to_faust() -> None:
    from streamer.faust_glue.bulk_readings import recover_in_bulk

    tp = TP("app-state-changelog", 0)
    table = FakeTable()
    consumer = FakeConsumer(FakeRecovery(tp, table, in_recovery=False))
    records = [ChangelogRecord(5, b"a", b"v")]
    assert recover_in_bulk(consumer, tp, records) is records
    assert table.data.data == {}
    other = TP("streamer-control", 0)
    assert recover_in_bulk(consumer, other, records) is records


class CommittingConsumer:
    """faust's own ``Consumer.commit`` (one commit at a time; a second caller waits for the
    first and returns without committing) over a ``force_commit`` that commits the offsets
    acknowledged when it starts, once its gate opens."""

    commit: Any = Consumer.commit
    maybe_wait_for_commit_to_finish: Any = Consumer.maybe_wait_for_commit_to_finish

    def __init__(self) -> None:
        self.app = SimpleNamespace(client_only=False)
        self.loop = asyncio.get_running_loop()
        self._commit_fut: asyncio.Future[None] | None = None
        self.acked = 0
        self.committed: list[int] = []
        self.gate = asyncio.Event()

    async def force_commit(self, topics: object = None, start_new_transaction: bool = True) -> bool:
        taken = self.acked
        await self.gate.wait()
        self.committed.append(taken)
        return True


def test_commit_acknowledged_commits_what_faust_s_own_commit_would_skip() -> None:
    async def scenario() -> None:
        consumer = CommittingConsumer()
        consumer.acked = 1
        running = asyncio.ensure_future(consumer.commit())  # faust's interval commit, say
        await asyncio.sleep(0)
        consumer.acked = 2  # the last batch acknowledged meanwhile
        plain = asyncio.ensure_future(consumer.commit())
        ours = asyncio.ensure_future(commit_acknowledged(consumer))
        await asyncio.sleep(0)
        consumer.gate.set()
        assert await running is True
        assert await plain is False  # faust's: waited, committed nothing
        assert await ours is True
        assert consumer.committed == [1, 2]  # offset 2 committed, not left to the interval

    asyncio.run(scenario())


def test_a_revoke_commits_what_a_commit_running_in_the_background_missed() -> None:
    async def scenario() -> None:
        consumer = CommittingConsumer()
        attach_feed(consumer.app, feed())
        consumer.acked = 1
        running = asyncio.ensure_future(consumer.commit())  # the worker's, in the background
        await asyncio.sleep(0)
        consumer.acked = 2  # the last batch, acknowledged before the revoke
        revoke = asyncio.ensure_future(wait_for_feed(consumer))
        await asyncio.sleep(0)
        consumer.gate.set()
        await running
        await revoke
        assert consumer.committed == [1, 2]

    asyncio.run(scenario())


def test_a_revoke_with_no_commit_running_leaves_committing_to_faust() -> None:
    async def scenario() -> None:
        consumer = CommittingConsumer()
        attach_feed(consumer.app, feed())
        consumer.acked = 1
        await wait_for_feed(consumer)
        assert consumer.committed == []

    asyncio.run(scenario())


def test_a_revoke_waits_for_the_worker_s_background_commits_to_settle() -> None:
    async def scenario() -> None:
        consumer = CommittingConsumer()
        readings = feed()
        attach_feed(consumer.app, readings)
        settled: list[bool] = []

        async def settle_commits() -> None:
            settled.append(True)

        readings.settle_commits = settle_commits
        await wait_for_feed(consumer)
        assert settled == [True]

    asyncio.run(scenario())

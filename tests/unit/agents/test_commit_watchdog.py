"""The faust offset-bookkeeping fixes, on a stand-in for faust's consumer state."""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from typing import Any, NamedTuple

from hypothesis import given
from hypothesis import strategies as st

from streamer.agents.commit_watchdog import HoleTracker
from streamer.faust_glue.consumer_fixes import commit_holes, put_back


class TP(NamedTuple):
    topic: str
    partition: int


class FakeConsumer:
    def __init__(self, assigned: set[TP], highwaters: dict[TP, int] | None = None) -> None:
        self._assigned = assigned
        self._acked: defaultdict[TP, list[int]] = defaultdict(list)
        self._acked_index: defaultdict[TP, set[int]] = defaultdict(set)
        self._committed_offset: dict[TP, int | None] = {}
        self._read_offset: dict[TP, int | None] = {}
        self._highwaters = highwaters or {}

    def assignment(self) -> set[TP]:
        return self._assigned

    def highwater(self, tp: TP) -> int | None:
        return self._highwaters.get(tp)

    def ack(self, tp: TP, *offsets: int) -> None:
        self._acked[tp].extend(offsets)
        self._acked_index[tp].update(offsets)


R0, R1, R2, C0 = TP("readings", 0), TP("readings", 1), TP("readings", 2), TP("changelog", 0)


def test_holes_are_found_only_where_faust_cannot_commit() -> None:
    consumer = FakeConsumer({R0, R1, R2, C0}, {R2: 40})
    consumer._committed_offset.update({R0: 717, R1: 100, C0: 5})
    consumer.ack(R0, *range(927, 960))  # the stalled partition of the crash test
    consumer.ack(R1, *range(100, 120))  # committable: starts at the committed offset
    consumer.ack(C0, 50)  # not the readings topic
    # R2: never committed, nothing acknowledged, 40 records
    assert commit_holes(consumer, "readings") == {R0: (717, 927), R2: (0, 40)}
    consumer._read_offset = {R2: 7}  # read, not yet acknowledged: a slow first batch
    assert R2 not in commit_holes(consumer, "readings")
    consumer._read_offset = {}
    consumer.ack(R2, 0)
    assert R2 not in commit_holes(consumer, "readings")


def test_a_hole_must_last_before_it_is_reported_and_then_starts_counting_again() -> None:
    tracker = HoleTracker(stall_checks=3)
    hole = {R0: (717, 927)}

    def check(holes: dict[Any, tuple[int, int]]) -> list[tuple[Any, int]]:
        return tracker.stalled(holes, generation=7, rebalancing=False)

    assert check(hole) == []
    assert check(hole) == []
    assert check(hole) == [(R0, 717)]
    assert check(hole) == []
    # a moving hole is progress, not a stall
    assert check({R0: (800, 927)}) == []
    assert check({}) == []
    assert check(hole) == []


def test_a_rebalance_between_checks_is_not_a_stall() -> None:
    tracker = HoleTracker(stall_checks=3)
    hole = {R0: (717, 927)}
    assert tracker.stalled(hole, generation=7, rebalancing=False) == []
    assert tracker.stalled(hole, generation=7, rebalancing=False) == []
    # faust rebalancing at this check: it reports nothing and forgets the counts
    assert tracker.stalled(hole, generation=7, rebalancing=True) == []
    assert tracker.stalled(hole, generation=8, rebalancing=False) == []
    assert tracker.stalled(hole, generation=8, rebalancing=False) == []
    assert tracker.stalled(hole, generation=8, rebalancing=False) == [(R0, 717)]


def test_a_new_generation_starts_the_counts_again() -> None:
    # the rebalance ran between two checks: neither saw faust rebalancing
    tracker = HoleTracker(stall_checks=3)
    hole = {R0: (717, 927), R1: (10, 20)}
    assert tracker.stalled(hole, generation=7, rebalancing=False) == []
    assert tracker.stalled(hole, generation=7, rebalancing=False) == []
    assert tracker.stalled(hole, generation=8, rebalancing=False) == []
    assert tracker.stalled(hole, generation=8, rebalancing=False) == []
    assert tracker.stalled(hole, generation=8, rebalancing=False) == [(R0, 717), (R1, 10)]


def test_a_partition_between_owners_is_never_reported() -> None:
    # an ordinary rebalance every other check: the hole stands still, but it never stalls
    tracker = HoleTracker(stall_checks=2)
    hole = {R0: (717, 927)}
    for generation in range(1, 10):
        assert tracker.stalled(hole, generation=generation, rebalancing=False) == []
        assert tracker.stalled(hole, generation=generation, rebalancing=True) == []


def test_offsets_of_a_commit_that_did_not_happen_are_put_back() -> None:
    consumer = FakeConsumer({R0, R1})
    consumer._committed_offset.update({R0: 717, R1: 10})
    consumer.ack(R0, *range(717, 927))
    consumer.ack(R1, *range(10, 20))
    before = {
        tp: (list(consumer._acked[tp]), consumer._committed_offset.get(tp)) for tp in (R0, R1)
    }
    # faust's _new_offset took both runs out; R1's commit happened, R0's was discarded
    for tp in (R0, R1):
        consumer._acked_index[tp].difference_update(consumer._acked[tp])
        consumer._acked[tp].clear()
    consumer._committed_offset[R1] = 20
    consumer.ack(R0, 927, 928)  # acknowledged meanwhile
    assert put_back(consumer, before) == 210
    assert consumer._acked[R0] == list(range(717, 929))
    assert consumer._acked[R1] == []


def test_the_patch_wraps_faust_once() -> None:
    from faust.transport.consumer import Consumer

    from streamer.faust_glue.consumer_fixes import fix_faust_consumer

    fix_faust_consumer()
    patched: Any = Consumer._commit_tps
    fix_faust_consumer()
    assert Consumer._commit_tps is patched
    assert asyncio.iscoroutinefunction(patched)


def test_new_offset_merges_gaps_without_duplicates() -> None:
    from intervaltree import IntervalTree

    from streamer.faust_glue.consumer_fixes import new_offset

    consumer: Any = FakeConsumer({R1})
    consumer._gap = defaultdict(IntervalTree)
    consumer._committed_offset[R1] = 100
    consumer.ack(R1, 100, 101)
    consumer._gap[R1].addi(102, 110)  # offsets 102..109: a gap faust noted
    consumer.ack(R1, 110)
    consumer.ack(R1, *range(102, 106))  # some of them acknowledged after all
    assert new_offset(consumer, R1) == 111  # one run, not a crawl
    assert consumer._acked[R1] == []
    # faust's own version would have listed 102..105 twice and committed 102, then 103 ...


def test_new_offset_keeps_faust_s_hole_rule() -> None:
    from intervaltree import IntervalTree

    from streamer.faust_glue.consumer_fixes import new_offset

    consumer: Any = FakeConsumer({R1})
    consumer._gap = defaultdict(IntervalTree)
    consumer._committed_offset[R1] = 717
    consumer.ack(R1, *range(927, 960))
    assert new_offset(consumer, R1) is None
    consumer.ack(R1, *range(717, 927))
    assert new_offset(consumer, R1) == 960


@given(st.lists(st.integers(0, 60), min_size=1, max_size=40, unique=True), st.integers(0, 10**6))
def test_first_run_length_is_faust_s_first_run_of_consecutive_numbers(
    offsets: list[int], base: int
) -> None:
    from faust.utils.functional import consecutive_numbers

    from streamer.faust_glue.consumer_fixes import first_run_length

    acked = sorted(base + o for o in offsets)
    assert first_run_length(acked) == len(next(consecutive_numbers(acked)))


def test_new_offset_takes_the_first_run_only() -> None:
    from intervaltree import IntervalTree

    from streamer.faust_glue.consumer_fixes import new_offset

    consumer: Any = FakeConsumer({R1})
    consumer._gap = defaultdict(IntervalTree)
    consumer._committed_offset[R1] = 10
    consumer.ack(R1, *range(10, 5000), *range(5001, 5003))
    assert new_offset(consumer, R1) == 5000
    assert consumer._acked[R1] == [5001, 5002]
    consumer._committed_offset[R1] = 5000  # (faust notes the commit)
    consumer.ack(R1, 5000)
    assert new_offset(consumer, R1) == 5003
    assert consumer._acked[R1] == []


class FlowConsumer(FakeConsumer):
    """faust's flow switches and seek, recording what was done."""

    def __init__(self, assigned: set[TP]) -> None:
        super().__init__(assigned)
        self._gap: dict[TP, object] = {}
        self._read_offset: dict[TP, int | None] = {}
        self.flow_active = True
        self.seeks: list[dict[TP, int]] = []
        self.calls: list[str] = []

    def stop_flow(self) -> None:
        self.flow_active = False
        self.calls.append("stop")

    def resume_flow(self) -> None:
        self.flow_active = True
        self.calls.append("resume")

    async def seek_wait(self, partitions: dict[TP, int]) -> None:
        self.calls.append("seek")
        self.seeks.append(dict(partitions))


class FakeApp:
    def __init__(self, consumer: FlowConsumer) -> None:
        self.consumer = consumer
        self.rebalancing = False
        self.consumer_generation_id = 3


def test_reread_seeks_only_once_the_fetch_loop_is_parked() -> None:
    from streamer.faust_glue.consumer_fixes import parked_event, reread

    async def scenario() -> tuple[bool, list[str], list[str]]:
        consumer = FlowConsumer({R0})
        consumer._gap[R0] = "stale gap"
        app = FakeApp(consumer)
        task = asyncio.ensure_future(reread(app, R0, 861))
        for _ in range(5):
            await asyncio.sleep(0)
        before_parked = list(consumer.calls)  # stopped, and waiting: no seek yet
        parked_event(consumer).set()  # what the patched _wait_next_records does
        done = await task
        assert consumer.seeks == [{R0: 861}] and R0 not in consumer._gap
        return done, before_parked, consumer.calls

    done, before_parked, calls = asyncio.run(scenario())
    assert done
    assert before_parked == ["stop"]
    assert calls == ["stop", "seek", "resume"]


def test_reread_gives_way_to_a_rebalance() -> None:
    from streamer.faust_glue.consumer_fixes import parked_event, reread

    async def during_rebalance() -> tuple[bool, list[str]]:
        consumer = FlowConsumer({R0})
        app = FakeApp(consumer)
        app.rebalancing = True
        return await reread(app, R0, 861), consumer.calls

    assert asyncio.run(during_rebalance()) == (False, [])

    async def rebalance_starts_while_waiting() -> tuple[bool, list[str], bool]:
        consumer = FlowConsumer({R0})
        app = FakeApp(consumer)
        task = asyncio.ensure_future(reread(app, R0, 861))
        await asyncio.sleep(0)
        app.rebalancing = True  # faust stops the flow itself and resumes it after recovery
        app.consumer_generation_id = 4
        parked_event(consumer).set()
        return await task, consumer.calls, consumer.flow_active

    # no seek, and the flow is left to faust's recovery
    assert asyncio.run(rebalance_starts_while_waiting()) == (False, ["stop"], False)


def test_reread_resumes_the_flow_when_the_fetch_loop_does_not_park() -> None:
    from streamer.faust_glue.consumer_fixes import reread

    async def scenario() -> tuple[bool, list[str]]:
        consumer = FlowConsumer({R0})
        return await reread(FakeApp(consumer), R0, 861, park_timeout_seconds=0.05), consumer.calls

    assert asyncio.run(scenario()) == (False, ["stop", "resume"])


def test_the_fetch_loop_is_parked_only_while_it_waits_with_the_flow_stopped() -> None:
    from faust.transport.consumer import Consumer

    from streamer.faust_glue.consumer_fixes import fix_faust_consumer, parked_event

    fix_faust_consumer()
    seen: list[bool] = []

    class Stub:
        flow_active = False

        async def _getmany(self, active_partitions: Any, timeout: float) -> dict[Any, Any]:  # noqa: ASYNC109
            seen.append(parked_event(self).is_set())
            return {}

    async def scenario() -> None:
        stub: Any = Stub()
        stub.can_resume_flow = asyncio.Event()
        stub.not_waiting_next_records = asyncio.Event()
        stub.app = type("App", (), {"client_only": True})()

        async def wait(event: asyncio.Event) -> None:
            seen.append(parked_event(stub).is_set())
            stub.flow_active = True

        stub.wait = wait
        await Consumer._wait_next_records(stub, 0.01)
        seen.append(parked_event(stub).is_set())

    asyncio.run(scenario())
    # parked while it waits for the flow only: not while it fetches, nor after
    assert seen == [True, False, False]


def test_faust_s_seek_after_a_rebalance_waits_for_the_fetch_loop_to_park() -> None:
    from streamer.faust_glue.consumer_fixes import parked_event, seek_parked

    async def scenario(draining: bool, flow_active: bool) -> list[str]:
        consumer: Any = FlowConsumer({R0})
        consumer.app = FakeApp(consumer)
        consumer.flow_active = flow_active
        consumer._streamer_draining = draining

        async def seek(c: Any) -> None:
            c.calls.append("seek" if not parked_event(c).is_set() else "seek parked")

        task = asyncio.ensure_future(seek_parked(consumer, seek, park_timeout_seconds=1.0))
        for _ in range(5):
            await asyncio.sleep(0)
        parked_event(consumer).set()
        await task
        return list(consumer.calls)

    # recovery: the flow runs and the fetch loop with it
    assert asyncio.run(scenario(True, True)) == ["stop", "seek parked", "resume"]
    # the fetch loop seeking itself (flow stopped), or no fetch loop yet: faust's seek as is
    assert asyncio.run(scenario(True, False)) == ["seek"]
    assert asyncio.run(scenario(False, True)) == ["seek"]


def test_faust_s_seek_goes_ahead_when_the_fetch_loop_does_not_park() -> None:
    from streamer.faust_glue.consumer_fixes import seek_parked

    async def scenario() -> list[str]:
        consumer: Any = FlowConsumer({R0})
        consumer.app = FakeApp(consumer)
        consumer._streamer_draining = True

        async def seek(c: Any) -> None:
            c.calls.append("seek")

        await seek_parked(consumer, seek, park_timeout_seconds=0.05)
        return list(consumer.calls)

    assert asyncio.run(scenario()) == ["stop", "seek", "resume"]


def test_a_cancelled_wait_for_the_fetch_loop_resumes_the_flow() -> None:
    from streamer.faust_glue.consumer_fixes import reread

    async def scenario() -> tuple[list[str], bool]:
        consumer = FlowConsumer({R0})
        task = asyncio.ensure_future(reread(FakeApp(consumer), R0, 861))
        for _ in range(5):
            await asyncio.sleep(0)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return consumer.calls, consumer.flow_active

    assert asyncio.run(scenario()) == (["stop", "resume"], True)


def test_faust_s_seek_moves_never_committed_readings_partitions_to_their_beginning() -> None:
    """faust seeks only the partitions with a committed offset; one never committed stays where
    the fetcher was, past records its fetch loop dropped around the rebalance (seen: a kept
    partition read from offset 135 on, its first 135 readings lost). It is read again from its
    beginning, and what was queued of it before the seek is dropped."""
    from aiokafka.structs import TopicPartition

    from streamer.faust_glue.bulk_readings import ReadingsFeed, attach_feed
    from streamer.faust_glue.consumer_fixes import seek_parked
    from streamer.pipeline.messages import InMessage

    class Thread:
        def __init__(self) -> None:
            self.to_beginning: list[tuple[Any, ...]] = []

        async def seek_to_beginning(self, *partitions: Any) -> bool:
            assert all(isinstance(p, TopicPartition) for p in partitions)
            self.to_beginning.append(partitions)
            return True

    R3 = TP("readings", 3)

    async def scenario() -> tuple[list[tuple[Any, ...]], int, list[int]]:
        consumer: Any = FlowConsumer({R0, R1, R3, C0})
        consumer.app = FakeApp(consumer)
        consumer._thread = Thread()
        feed = ReadingsFeed("readings", max_events=100, capacity_events=100)
        attach_feed(consumer.app, feed)
        for partition, first in ((0, 135), (1, 40), (3, 7)):
            feed.put_nowait(
                partition,
                [InMessage(b"m", b"{}", "readings", partition, first + i, 0) for i in range(5)],
            )

        async def seek(c: Any) -> None:  # faust's: committed offsets for readings 1 and 3 only
            c._read_offset.update({R0: None, R1: 40, R3: 7, C0: None})

        await seek_parked(consumer, seek, park_timeout_seconds=0.05)
        left = [chunk.partition for chunk in feed.take_nowait()]
        return consumer._thread.to_beginning, feed.dropped_events, left

    to_beginning, dropped, left = asyncio.run(scenario())
    assert to_beginning == [(TopicPartition("readings", 0),)]
    assert dropped == 15 and left == []  # every partition sought: their queued readings go

"""The faust offset-bookkeeping fixes, on a stand-in for faust's consumer state."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any, NamedTuple

from streamer.agents.commit_watchdog import HoleTracker
from streamer.faust_fixes import commit_holes, put_back


class TP(NamedTuple):
    topic: str
    partition: int


class FakeConsumer:
    def __init__(self, assigned: set[TP], highwaters: dict[TP, int] | None = None) -> None:
        self._assigned = assigned
        self._acked: defaultdict[TP, list[int]] = defaultdict(list)
        self._acked_index: defaultdict[TP, set[int]] = defaultdict(set)
        self._committed_offset: dict[TP, int | None] = {}
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
    consumer.ack(R2, 0)
    assert R2 not in commit_holes(consumer, "readings")


def test_a_hole_must_last_before_it_is_reported_and_then_starts_counting_again() -> None:
    tracker = HoleTracker(stall_checks=3)
    hole = {R0: (717, 927)}
    assert tracker.stalled(hole) == []
    assert tracker.stalled(hole) == []
    assert tracker.stalled(hole) == [(R0, 717)]
    assert tracker.stalled(hole) == []
    # a moving hole is progress, not a stall
    assert tracker.stalled({R0: (800, 927)}) == []
    assert tracker.stalled({}) == []
    assert tracker.stalled(hole) == []


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

    from streamer.faust_fixes import restore_acks_of_failed_commits

    restore_acks_of_failed_commits()
    patched: Any = Consumer._commit_tps
    restore_acks_of_failed_commits()
    assert Consumer._commit_tps is patched
    assert asyncio.iscoroutinefunction(patched)


def test_new_offset_merges_gaps_without_duplicates() -> None:
    from intervaltree import IntervalTree

    from streamer.faust_fixes import new_offset

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

    from streamer.faust_fixes import new_offset

    consumer: Any = FakeConsumer({R1})
    consumer._gap = defaultdict(IntervalTree)
    consumer._committed_offset[R1] = 717
    consumer.ack(R1, *range(927, 960))
    assert new_offset(consumer, R1) is None
    consumer.ack(R1, *range(717, 927))
    assert new_offset(consumer, R1) == 960

"""A fix for faust-streaming 0.15.3's offset bookkeeping, applied when a worker's app is built.

**The bug.** faust keeps, per partition, the offsets its streams acknowledged (``_acked``). To
commit, ``Consumer._new_offset`` takes the first run of consecutive acknowledged offsets *out of
that list* and returns the offset after it; the commit is then attempted. When the attempt does
not happen (the partition is momentarily outside the assignment during a rebalance: "Discarded
commit for revoked partitions"), or fails (``CommitFailedError``: "already rebalanced"), the
offsets taken out are gone: the next commit finds a hole between the committed offset and the
first offset still listed and never commits that partition again. Seen in the worker-crash
test: the survivor had processed every reading of a moved partition, its group lag stayed at
243 for minutes (faust's state read from the live process: committed 717, acknowledged 927 to
959, nothing in between).

**The fixes.**

0. ``Consumer._new_offset`` is replaced by :func:`new_offset`, faust's own with the duplicates
   its gap merging leaves in the list removed (they made commits crawl an offset at a time).

1. Around ``Consumer._commit_tps``: the acknowledged offsets of each partition are noted before,
   and those taken out are put back for every partition still assigned whose committed offset
   did not move. Offsets below the committed one are never put back.
2. A hole can also come from messages faust never delivered after a rebalance (its fetch loop
   drops messages below a read offset that a stale fetch may have moved past the committed
   one, and drops the message it was handing over when a rebalance suspends the flow; a
   partition never committed before may not be read at all). :func:`commit_holes` finds such
   partitions; :mod:`streamer.agents.commit_watchdog` reads them again with :func:`reread`.

   A seek made while faust's fetch loop still holds records fetched before it loses readings:
   those records move faust's read offset past the seek, and faust drops the records read
   again (seen: 55 of 4,680 lost). :func:`reread` therefore stops the flow, waits until the
   fetch loop is parked waiting for the flow to resume (:func:`parked_event`, set by the
   wrapped ``Consumer._wait_next_records``), seeks only then, and resumes the flow.
3. faust's own seek after a rebalance (``Consumer.perform_seek``) had the same race, and was
   the source of such holes in crash runs: it is made the same way (:func:`seek_parked`).
   That seek moves only the partitions with a committed offset: a readings partition never
   committed stays where the fetcher was, and records fetched there before the rebalance
   were dropped by faust's fetch loop (no longer among its active partitions then). Seen in
   the exactly_once crash test: a partition kept through a rebalance was read from offset
   135, its first 135 readings never, and its first commit (faust's hole rule needs a
   committed offset) went past them. Such partitions are sought to their beginning too
   (the app's ``consumer_auto_offset_reset`` is ``earliest``: :func:`seek_never_committed`).
4. ``Consumer._drain_messages`` hands the readings over in bulk when the consumer has a feed
   (:mod:`streamer.faust_glue.bulk_readings`), and ``Consumer.wait_empty`` (a revoke, a stop)
   first waits for the batches taken from that feed to be delivered.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from aiokafka.errors import IllegalStateError
from aiokafka.structs import TopicPartition
from faust.transport.consumer import Consumer

from streamer.faust_glue.bulk_readings import bulk_drain, feed_of, wait_for_feed

_MARK = "_streamer_restores_acks"
_PARKED = "_streamer_parked"
_DRAINING = "_streamer_draining"
PARK_TIMEOUT_SECONDS = 5.0

log = logging.getLogger(__name__)


def new_offset(self: Any, tp: Any) -> int | None:
    """faust's ``Consumer._new_offset`` with its duplicates removed.

    faust merges the offsets of known gaps into the acknowledged list without noting them as
    acknowledged, so a message of such a range acknowledged later is listed twice; a list with
    duplicates splits into runs of one or two, and the partition's commits then crawl forward
    by an offset or two a commit (seen after a takeover: 434 behind, falling 1 a second). Here
    the merged offsets are noted and the list is kept free of duplicates; the rest is faust's.
    """
    acked = self._acked[tp]
    if not acked:
        return None
    index = self._acked_index[tp]
    max_offset = max(acked)
    gap_for_tp = self._gap[tp]
    if gap_for_tp:
        candidates = sorted(gap_for_tp.overlap(0, max_offset), key=lambda x: x.begin)
        if candidates:
            stuff_to_add: list[int] = []
            for entry in candidates:
                stuff_to_add.extend(range(entry.begin, entry.end))
            new_max_offset = max(stuff_to_add[-1], max_offset + 1)
            acked.extend(o for o in stuff_to_add if o not in index)
            index.update(stuff_to_add)
            gap_for_tp.chop(0, new_max_offset)
    if len(index) != len(acked):
        acked[:] = set(acked)
    acked.sort()
    committed_offset = self._committed_offset[tp]
    if committed_offset and acked[0] - committed_offset > 1:
        return None
    run = first_run_length(acked)
    batch = acked[:run]
    acked[:run] = []
    index.difference_update(batch)
    return int(batch[-1]) + 1


def first_run_length(acked: list[int]) -> int:
    """How many numbers at the start of ``acked`` (sorted, no duplicates, not empty) run on one
    by one: the first of faust's ``consecutive_numbers(acked)``, without a Python call per
    offset (a commit through a backlog takes thousands)."""
    first = acked[0]
    count = len(acked)
    if acked[-1] - first == count - 1:  # the usual case: one run
        return count
    # acked[i] - i never decreases: the run ends where it first exceeds acked[0]
    low, high = 1, count - 1
    while low < high:
        middle = (low + high) // 2
        if acked[middle] - middle == first:
            low = middle + 1
        else:
            high = middle
    return low


def fix_faust_consumer() -> None:
    """Patch faust's Consumer (once per process): the fixes above, and :func:`parked_event`."""
    if getattr(Consumer, _MARK, False):
        return
    setattr(Consumer, "_new_offset", new_offset)  # noqa: B010 (a method of a library class)
    original = Consumer._commit_tps

    async def _commit_tps(self: Any, tps: Iterable[Any], start_new_transaction: bool) -> bool:
        tps = list(tps)
        before = {tp: (list(self._acked[tp]), self._committed_offset.get(tp)) for tp in tps}
        try:
            return bool(await original(self, tps, start_new_transaction))
        finally:
            put_back(self, before)

    setattr(Consumer, "_commit_tps", _commit_tps)  # noqa: B010 (a method of a library class)
    wait_next_records = Consumer._wait_next_records

    async def _wait_next_records(self: Any, timeout: float) -> Any:  # noqa: ASYNC109 (faust's)
        if not self.flow_active:  # waits for the flow to resume, holding no fetched records
            parked = parked_event(self)
            parked.set()
            try:
                await self.wait(self.can_resume_flow)
            finally:
                parked.clear()
        return await wait_next_records(self, timeout)

    setattr(Consumer, "_wait_next_records", _wait_next_records)  # noqa: B010 (as above)
    drain_messages = Consumer._drain_messages

    async def _drain_messages(self: Any, fetcher: Any) -> None:
        setattr(self, _DRAINING, True)
        try:
            feed = feed_of(self)
            if feed is None:
                await drain_messages(self, fetcher)
            else:  # the readings in bulk (streamer.faust_glue.bulk_readings)
                await bulk_drain(self, fetcher, feed)
        finally:
            setattr(self, _DRAINING, False)

    setattr(Consumer, "_drain_messages", _drain_messages)  # noqa: B010 (as above)
    wait_empty = Consumer.wait_empty

    async def _wait_empty(self: Any) -> None:
        await wait_for_feed(self)  # batches taken from the bulk feed are delivered first
        await wait_empty(self)

    setattr(Consumer, "wait_empty", _wait_empty)  # noqa: B010 (as above)
    perform_seek = Consumer.perform_seek

    async def _perform_seek(self: Any) -> None:
        await seek_parked(self, perform_seek)

    setattr(Consumer, "perform_seek", _perform_seek)  # noqa: B010 (as above)
    setattr(Consumer, _MARK, True)


async def seek_parked(
    consumer: Any,
    seek: Callable[[Any], Awaitable[None]],
    *,
    park_timeout_seconds: float = PARK_TIMEOUT_SECONDS,
) -> None:
    """faust's ``perform_seek`` (every partition to its committed offset) made with the fetch
    loop parked.

    faust seeks so after a rebalance's recovery, with the flow already running: records the
    fetch loop fetched before the seek are handed over after it, and faust takes the offsets
    between the committed one and theirs for a gap it need not wait for (seen: a gap of 160,
    and a partition whose offsets 647..660 were never delivered). Here the flow is stopped
    first and the seek made once the loop holds nothing (or after ``park_timeout_seconds``,
    as faust would have), then the flow resumes (:class:`ParkedFlow`).
    When the flow is already stopped, or the loop not running (the loop itself seeks so when
    it finds the flow stopped), faust's seek is made as it is.
    """
    feed = feed_of(consumer)
    if feed is not None:
        feed.hold()  # nothing queued is taken until it is known which partitions move
    try:
        if not consumer.flow_active or not getattr(consumer, _DRAINING, False):
            await seek(consumer)
            restarted = await seek_never_committed(consumer)
        else:
            async with ParkedFlow(consumer.app, park_timeout_seconds) as parked:
                if not parked:
                    log.warning(
                        "faust's fetch loop did not park in %.0f s; seeking", park_timeout_seconds
                    )
                await seek(consumer)
                restarted = await seek_never_committed(consumer)
        drop_queued_readings(consumer, rewound(consumer) | restarted)
    finally:
        if feed is not None:
            feed.release()


class ParkedFlow:
    """``async with ParkedFlow(app, timeout) as parked``: faust's flow is stopped and the fetch
    loop awaited until it is parked (``parked``: whether it was within ``timeout`` seconds). On
    exit, cancellation included, the flow resumes, unless a rebalance began or ended meanwhile
    (faust's recovery resumes it then)."""

    def __init__(self, app: Any, park_timeout_seconds: float) -> None:
        self._app = app
        self._timeout = park_timeout_seconds
        self._rebalancing = app.rebalancing
        self._generation = app.consumer_generation_id

    def undisturbed(self) -> bool:
        """No rebalance began or ended since the flow was stopped."""
        app = self._app
        return bool(
            app.rebalancing == self._rebalancing and app.consumer_generation_id == self._generation
        )

    async def __aenter__(self) -> bool:
        consumer = self._app.consumer
        consumer.stop_flow()
        try:
            await asyncio.wait_for(parked_event(consumer).wait(), self._timeout)
        except TimeoutError:
            return False
        except BaseException:  # cancelled: __aexit__ will not run
            await self.__aexit__()
            raise
        return True

    async def __aexit__(self, *exc_info: object) -> None:
        consumer = self._app.consumer
        if self.undisturbed() and not consumer.flow_active:
            consumer.resume_flow()


async def seek_never_committed(consumer: Any) -> set[int]:
    """After faust's seek to the committed offsets: the assigned readings partitions it left
    where they were (never committed: no read offset) sought to their beginning, as
    ``auto_offset_reset=earliest`` reads a partition first assigned (the fetcher may have
    moved past records faust dropped around a rebalance); those partitions."""
    feed = feed_of(consumer)
    if feed is None:
        return set()
    read = consumer._read_offset
    never = [tp for tp in consumer.assignment() if tp.topic == feed.topic and read.get(tp) is None]
    if not never:
        return set()
    try:
        await consumer._thread.seek_to_beginning(
            *(TopicPartition(tp.topic, tp.partition) for tp in never)
        )
    except IllegalStateError as exc:  # the assignment changed: the next rebalance seeks again
        log.info("not seeking never-committed readings partitions: %s", exc)
        return set()
    log.info(
        "readings partitions %s were never committed: read from their beginning",
        sorted(tp.partition for tp in never),
    )
    return {tp.partition for tp in never}


def rewound(consumer: Any) -> set[int]:
    """The readings partitions faust's seek to the committed offsets just moved: those with a
    committed offset (it sets their read offset to it). A partition never committed is not
    moved by it (:func:`seek_never_committed` moves it)."""
    feed = feed_of(consumer)
    if feed is None:
        return set()
    read = consumer._read_offset
    return {
        tp.partition
        for tp in consumer.assignment()
        if tp.topic == feed.topic and read.get(tp) is not None
    }


def drop_queued_readings(consumer: Any, partitions: set[int]) -> None:
    """At a seek of ``partitions``: their readings queued in the bulk feed were fetched before
    it and are read again after it; processed first, they would put a meter's newer readings
    before the older ones read again (seen: windows missing days after a restart)."""
    feed = feed_of(consumer)
    if feed is not None and partitions:
        dropped = feed.drop(partitions)
        if dropped:
            log.info("seek: %d queued readings dropped (read again after it)", dropped)


def parked_event(consumer: Any) -> asyncio.Event:
    """Set while faust's fetch loop waits for the flow to resume: it holds no fetched records
    then, so a seek cannot be overtaken by records fetched before it."""
    event = consumer.__dict__.get(_PARKED)
    if not isinstance(event, asyncio.Event):
        event = asyncio.Event()
        setattr(consumer, _PARKED, event)
    return event


async def reread(app: Any, tp: Any, offset: int, *, park_timeout_seconds: float = 10.0) -> bool:
    """Make faust read ``tp`` again from ``offset``; whether it was done.

    The flow is stopped, and the seek made once the fetch loop is parked (see the module's
    docstring). Not done (and the flow left to faust) when a rebalance starts meanwhile: its
    recovery seeks every partition to its committed offset anyway. Messages the streams already
    hold are still processed; those read again are processed again (at-least-once).
    """
    consumer = app.consumer
    if app.rebalancing or not consumer.flow_active:
        return False
    flow = ParkedFlow(app, park_timeout_seconds)
    async with flow as parked:
        if not parked or not flow.undisturbed() or consumer.flow_active:
            return False
        if tp not in consumer.assignment():
            return False
        consumer._gap.pop(tp, None)
        drop_queued_readings(consumer, {tp.partition})
        await consumer.seek_wait({tp: offset})
        return True


def commit_holes(consumer: Any, topic: str) -> dict[Any, tuple[int, int]]:
    """Assigned partitions of ``topic`` that faust cannot commit: ``{tp: (offset to read again
    from, first offset past the hole)}``.

    Either the acknowledged offsets start past the committed one, or the partition was never
    committed, holds records, and faust has read none of them (it may have dropped what it
    fetched around a rebalance and not read since). A partition read but not yet acknowledged
    is not one: its first batch may just be slow.
    """
    holes: dict[Any, tuple[int, int]] = {}
    for tp in consumer.assignment():
        if tp.topic != topic:
            continue
        committed = consumer._committed_offset.get(tp)
        acked = consumer._acked.get(tp)
        if committed is None:
            highwater = consumer.highwater(tp)
            if not acked and highwater and consumer._read_offset.get(tp) is None:
                holes[tp] = (0, int(highwater))
            continue
        if acked:
            first = min(acked)
            if first - committed > 1:
                holes[tp] = (committed, first)
    return holes


def bookkeeping(consumer: Any, tp: Any) -> str:
    """faust's offset bookkeeping of ``tp`` in words (for the log of a stalled partition)."""
    acked = sorted(consumer._acked.get(tp) or ())
    read = consumer._read_offset.get(tp)
    gaps = sorted((gap.begin, gap.end) for gap in consumer._gap.get(tp) or ())
    where = f"read offset {read}, gaps {gaps}"
    if not acked:
        return f"nothing acknowledged, {where}"
    return f"acknowledged {len(acked)} from {acked[0]} to {acked[-1]}, {where}"


def put_back(consumer: Any, before: dict[Any, tuple[list[int], int | None]]) -> int:
    """Return to ``consumer._acked`` the offsets of ``before`` that a commit which did not
    happen took out; how many were put back."""
    assignment = consumer.assignment()
    restored = 0
    for tp, (acked, committed_before) in before.items():
        committed = consumer._committed_offset.get(tp)
        if tp not in assignment or committed != committed_before:
            continue
        index = consumer._acked_index[tp]
        missing = [
            offset
            for offset in dict.fromkeys(acked)  # once each, in order
            if offset not in index and (committed is None or offset >= committed)
        ]
        if missing:
            index.update(missing)
            listed = consumer._acked[tp]
            listed.extend(missing)
            listed.sort()
            restored += len(missing)
    return restored

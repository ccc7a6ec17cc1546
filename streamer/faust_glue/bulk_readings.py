"""The readings topic delivered to the batch processor in bulk, beside faust's per-message path.

faust 0.15.3's fetch loop (``Consumer._drain_messages``) hands each message to its Conductor
through ``wait_first(callback(message), ...)``: four futures and an ``asyncio.wait`` a message,
then an ``Event``, a channel put and an ack, about two thirds of a live worker's CPU. Here the
loop is faust's own, with one change: the records of a readings partition are handed over as
one list (:class:`Chunk`) to a bounded :class:`ReadingsFeed`, which the readings agent takes
from (:mod:`streamer.agents.readings_agent`). Every other topic (changelogs in recovery, the
control topic) still goes through faust's per-message path.

What faust's loop does per message is done per chunk, the same way:

- only partitions faust calls active (assigned, not paused: readings partitions stay paused
  while their tables recover), only while the flow is active and the generation unchanged;
- records below faust's read offset are dropped, gaps in offsets noted as faust notes them, and
  the read offset moved past what was handed over (so ``consumer_fixes``, the commit watchdog and
  its re-reads work as before);
- ``commit_every`` acknowledged messages trigger a commit.

A chunk's offsets are acknowledged into faust's own bookkeeping (:func:`ack_offsets`) only after
its batch's outputs are in Kafka, and faust commits them as it commits any acknowledged offset.

**Rebalances.** faust's revoke stops the flow and then waits for its streams to acknowledge
what they hold (``Consumer.wait_empty``). :func:`install` makes that wait also
:meth:`ReadingsFeed.revoke`: queued chunks are dropped (faust seeks to the committed offsets
after the rebalance, so they are read again), and the wait lasts until every batch already
taken from the feed has been delivered. So a state write of a batch never lands after the
revoke returns, when the partition's new owner may already be restoring its table.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from faust.transport.consumer import CONSUMER_FETCHING
from faust.types import TP
from faust.types.tuples import ack_lock
from mode.utils.futures import notify

from streamer.faust_glue.bulk_records import make_messages
from streamer.faust_glue.consumer_options import set_fetch_max_wait
from streamer.pipeline.messages import InMessage

log = logging.getLogger(__name__)

_FEED = "_streamer_readings_feed"
#: How long a revoke waits for taken batches to be delivered before letting faust go on
REVOKE_WAIT_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class Chunk:
    """Consecutive readings of one partition, as fetched, with the feed epoch they were
    fetched in (a revoke starts a new epoch; older chunks are dropped)."""

    partition: int
    messages: list[InMessage]
    epoch: int

    @property
    def last_offset(self) -> int:
        return self.messages[-1].offset


class ReadingsFeed:
    """A bounded queue of readings chunks between faust's fetch loop and the batch loop.

    ``capacity_events`` bounds the readings queued. :meth:`take` returns what has arrived, up
    to ``max_events``, and waits when nothing is queued: continuous batching. A batch
    shares ``max_events`` fairly among the partitions with readings queued (round robin, as
    faust's own scheduler hands messages over), so that a batch taken from a backlog holds a
    few slots of every meter rather than many slots of one partition's meters. Batches taken
    are counted until :meth:`delivered`; :meth:`wait_delivered` waits for none to be left.
    ``linger_seconds``: fewer than ``max_events`` readings queued are taken once the first of
    them has waited this long (or the queue reaches ``max_events``), so that a worker far from
    busy makes fewer, larger batches (each has a fixed cost: the sends, the models' calls, an
    offset commit); a backlog is taken at once. ``fetch_max_wait_ms``, when set, is applied to
    the consumer when the fetch loop starts
    (:func:`~streamer.faust_glue.consumer_options.set_fetch_max_wait`).
    """

    def __init__(
        self,
        topic: str,
        *,
        max_events: int,
        capacity_events: int,
        linger_seconds: float = 0.0,
        fetch_max_wait_ms: int | None = None,
    ) -> None:
        self.topic = topic
        self.fetch_max_wait_ms = fetch_max_wait_ms
        self.max_events = max_events
        self.capacity_events = max(capacity_events, max_events)
        self.linger_seconds = linger_seconds
        self.epoch = 0
        self._queues: dict[int, deque[Chunk]] = {}
        self._queued = 0
        #: when the oldest reading queued arrived (monotonic seconds; with readings queued)
        self._first_arrival = 0.0
        self._arrived = asyncio.Event()
        self._space = asyncio.Event()
        self._space.set()
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._turn = 0
        self._held = 0
        self.dropped_chunks = 0
        self.dropped_events = 0
        #: awaited at a revoke once the batches taken are delivered, before faust commits: the
        #: batch loop writes the state it holds back (coalesced) and acknowledges its offsets,
        #: and its own background commits end there (the readings agent sets it)
        self.settle_commits: Callable[[], Awaitable[None]] | None = None

    @property
    def queued_events(self) -> int:
        return self._queued

    @property
    def in_flight(self) -> int:
        """Batches taken and not yet delivered."""
        return self._in_flight

    def has_space(self) -> bool:
        return self._queued < self.capacity_events

    def put_nowait(self, partition: int, messages: list[InMessage]) -> None:
        """Queue a partition's messages, in fetch order."""
        if not messages:
            return
        queue = self._queues.get(partition)
        if queue is None:
            queue = self._queues[partition] = deque()
        queue.append(Chunk(partition, messages, self.epoch))
        if not self._queued:
            self._first_arrival = time.monotonic()
        self._queued += len(messages)
        self._arrived.set()
        if self._queued >= self.capacity_events:
            self._space.clear()

    async def wait_space(self) -> None:
        while not self.has_space():
            self._space.clear()
            await self._space.wait()

    def take_nowait(self) -> list[Chunk]:
        """Queued readings of the current epoch, up to ``max_events``, shared among the
        partitions; counted as one batch in flight when any."""
        out: list[Chunk] = []
        budget = 0 if self._held else self.max_events
        while budget > 0:
            partitions = [p for p, queue in self._queues.items() if self._head(queue)]
            if not partitions:
                break
            start = self._turn % len(partitions)
            self._turn += 1
            share = -(-budget // len(partitions))  # ceil: the first ones may take one more
            for partition in partitions[start:] + partitions[:start]:
                if budget <= 0:
                    break
                queue = self._queues[partition]
                chunk = queue[0]
                size = len(chunk.messages)
                n = min(share, size, budget)
                if n == size:
                    queue.popleft()
                    out.append(chunk)
                else:
                    out.append(Chunk(partition, chunk.messages[:n], chunk.epoch))
                    queue[0] = Chunk(partition, chunk.messages[n:], chunk.epoch)
                self._queued -= n
                budget -= n
        for partition in [p for p, queue in self._queues.items() if not queue]:
            del self._queues[partition]
        if self.has_space():
            self._space.set()
        if out:
            self._in_flight += 1
            self._idle.clear()
        return out

    def _head(self, queue: deque[Chunk]) -> bool:
        """Whether ``queue`` has a chunk of the current epoch first (older ones are dropped)."""
        while queue and queue[0].epoch != self.epoch:
            chunk = queue.popleft()
            self._queued -= len(chunk.messages)
            self._drop(chunk)
        return bool(queue)

    def ready_nowait(self) -> bool:
        """Whether :meth:`take` would take readings at once (it would not wait or linger)."""
        if self._held or not self._queued:
            return False
        return (
            self.linger_seconds <= 0
            or self._queued >= self.max_events
            or time.monotonic() >= self._first_arrival + self.linger_seconds
        )

    async def take(self) -> list[Chunk]:
        """What has arrived, up to ``max_events`` readings; waits while nothing can be taken
        (nothing queued, or the feed held), and lingers while fewer than ``max_events`` are
        queued and the oldest of them arrived less than ``linger_seconds`` ago."""
        while True:
            await self._linger()
            out = self.take_nowait()
            if out:
                return out
            # nothing could be taken: wait for the next arrival or release (each sets the
            # event; only here is it cleared). Held with readings queued, the event was still
            # set: waiting on it returned at once, and this loop spun with the event loop never
            # running the seek that was to release the feed (a worker hung for good at a
            # rebalance)
            self._arrived.clear()
            await self._arrived.wait()

    async def _linger(self) -> None:
        """Wait until ``max_events`` readings are queued, or the oldest queued has waited
        ``linger_seconds``, or the feed is held (its readings may be dropped) or empty."""
        if self.linger_seconds <= 0:
            return
        deadline = self._first_arrival + self.linger_seconds
        while 0 < self._queued < self.max_events and not self._held:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            # (take's own wait below clears the event too: no wakeup is lost to this)
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), left)
            except TimeoutError:
                return

    def add_in_flight(self) -> None:
        """A batch made without taking any reading (the coalesced state writes held back) is
        on its way: it counts as a batch taken until :meth:`delivered`."""
        self._in_flight += 1
        self._idle.clear()

    def delivered(self) -> None:
        """A batch taken is delivered (or given up: the worker is stopping)."""
        self._in_flight = max(0, self._in_flight - 1)
        if self._in_flight == 0:
            self._idle.set()

    async def wait_delivered(self, timeout_seconds: float) -> bool:
        """Wait until no batch taken is undelivered; whether that happened in time."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout_seconds)
        except TimeoutError:
            return False
        return True

    def revoke(self) -> int:
        """Start a new epoch: queued chunks are dropped; how many readings were."""
        self.epoch += 1
        return self.drop(set(self._queues))

    def hold(self) -> None:
        """Take nothing until :meth:`release` (a seek is deciding what is stale)."""
        self._held += 1

    def release(self) -> None:
        self._held = max(0, self._held - 1)
        if not self._held and self._queues:
            self._arrived.set()

    def drop(self, partitions: set[int]) -> int:
        """Drop the queued chunks of ``partitions`` (a seek rewinds them: they are read again);
        how many readings were dropped."""
        dropped = 0
        for partition in partitions & self._queues.keys():
            for chunk in self._queues.pop(partition):
                dropped += len(chunk.messages)
                self._drop(chunk)
        self._queued -= dropped
        if self.has_space():
            self._space.set()
        return dropped

    def _drop(self, chunk: Chunk) -> None:
        self.dropped_chunks += 1
        self.dropped_events += len(chunk.messages)


def attach_feed(app: Any, feed: ReadingsFeed) -> None:
    """Make the fetch loop of ``app``'s consumer hand the feed's topic over in bulk
    (:func:`bulk_drain`). (Set on the app: its consumer is made later, at start.)"""
    setattr(app, _FEED, feed)


def feed_of(consumer: Any) -> ReadingsFeed | None:
    feed = getattr(getattr(consumer, "app", None), _FEED, None)
    return feed if isinstance(feed, ReadingsFeed) else None


def in_messages(records: Iterable[Any]) -> list[InMessage]:
    """aiokafka consumer records as the pipeline's messages (records the fetcher made as
    messages already, :mod:`.bulk_records`, as they are)."""
    return [
        r
        if type(r) is InMessage
        else InMessage(
            r.key,
            r.value,
            r.topic,
            r.partition,
            r.offset,
            r.timestamp,  # aiokafka: milliseconds (None when the broker gives none)
        )
        for r in records
    ]


def ack_offsets(consumer: Any, tp: Any, offsets: Sequence[int]) -> int:
    """Acknowledge ``offsets`` of ``tp`` into faust's bookkeeping, as ``Consumer.ack`` does one
    message's; returns how many were new."""
    with ack_lock:
        committed = consumer._committed_offset[tp]
        index = consumer._acked_index[tp]
        if (committed is None or min(offsets, default=0) >= committed) and index.isdisjoint(
            offsets
        ):
            fresh = list(offsets)  # the usual case: none committed or acknowledged before
        else:
            fresh = [o for o in offsets if (committed is None or o >= committed) and o not in index]
        if fresh:
            index.update(fresh)
            consumer._acked[tp].extend(fresh)
            consumer._n_acked += len(fresh)
        notify(consumer._waiting_for_ack)
    return len(fresh)


async def commit_acknowledged(consumer: Any) -> bool:
    """Commit what is acknowledged now. faust's ``Consumer.commit`` returns without committing
    when another commit is running (its offsets were taken before the newest acks): wait for
    any such commit to end first, then commit. Whether a commit was made."""
    while await consumer.maybe_wait_for_commit_to_finish():
        pass
    return bool(await consumer.commit())


def acknowledge_chunks(consumer: Any, chunks: Sequence[Chunk], partitions: set[int] | None) -> None:
    """Acknowledge delivered chunks' offsets to faust (only those of ``partitions`` when given:
    under exactly_once a fenced partition's new owner reads its readings again)."""
    for chunk in chunks:
        if partitions is not None and chunk.partition not in partitions:
            continue
        tp = TP(chunk.messages[0].topic, chunk.partition)
        ack_offsets(consumer, tp, [m.offset for m in chunk.messages])


async def bulk_drain(consumer: Any, fetcher: Any, feed: ReadingsFeed) -> None:
    """faust's ``Consumer._drain_messages`` with the feed's topic handed over per partition.

    Mirrors faust 0.15.3's loop (``getmany`` folded in): see the module's docstring.
    """
    callback = consumer.callback
    consumer_should_stop = consumer._stopped.is_set
    fetcher_should_stop = fetcher._stopped.is_set
    set_flag = consumer.diag.set_flag
    unset_flag = consumer.diag.unset_flag
    app = consumer.app
    topic = feed.topic
    log.info("%s is handed to the batch processor in bulk (faust's fetch loop)", topic)
    if feed.fetch_max_wait_ms is not None:
        set_fetch_max_wait(consumer, feed.fetch_max_wait_ms)
    make_messages(consumer, topic)
    try:
        while not (consumer_should_stop() or fetcher_should_stop()):
            set_flag(CONSUMER_FETCHING)
            records, active = await consumer._wait_next_records(1.0)
            generation = app.consumer_generation_id
            await consumer.sleep(0)
            if records and not consumer.should_stop and consumer.flow_active:
                buffered = consumer._buffered_partitions
                for tp, batch in records.items():
                    if not consumer.flow_active or app.consumer_generation_id != generation:
                        break
                    if active is not None and tp not in active and tp not in buffered:
                        continue
                    app.monitor.track_tp_end_offset(tp, consumer.highwater(tp))
                    if tp.topic == topic:
                        await _hand_over(consumer, tp, batch, feed)
                    else:
                        rest = recover_in_bulk(consumer, tp, batch)
                        await _per_message(consumer, tp, rest, callback, generation)
                # every partition of a fetch is queued (batches share among them), then the
                # next fetch waits for room: the queue holds at most its capacity and a fetch
                await _wait_for_room(consumer, feed)
            unset_flag(CONSUMER_FETCHING)
    except consumer.consumer_stopped_errors:
        if consumer.transport.app.should_stop:
            log.info("Broker stopped consumer, shutting down...")
            return
        raise
    except asyncio.CancelledError:
        if consumer.transport.app.should_stop:
            log.info("Consumer shutting down for user cancel.")
            return
        raise
    except Exception as exc:
        log.exception("Drain messages raised: %r", exc)
        raise
    finally:
        unset_flag(CONSUMER_FETCHING)


async def _maybe_commit(consumer: Any) -> None:
    commit_every = consumer._commit_every
    if commit_every is not None and consumer._n_acked >= commit_every:
        consumer._n_acked = 0
        await consumer.commit()


async def _hand_over(consumer: Any, tp: Any, records: list[Any], feed: ReadingsFeed) -> None:
    """One partition's fetched records to the feed, as faust's loop would hand them over one
    by one (read offset, gaps, commit_every)."""
    read_offset = consumer._read_offset.get(tp)
    if read_offset is not None and records and records[0].offset < read_offset:
        records = [r for r in records if r.offset >= read_offset]
    if not records:
        return
    if read_offset:  # faust's own test: a read offset of 0 notes no gap
        previous = read_offset
        if records[-1].offset - previous != len(records):  # not simply the next ones
            for record in records:
                if record.offset - previous > 1 and previous:
                    await consumer._add_gap(tp, previous + 1, record.offset)
                previous = record.offset
    await _maybe_commit(consumer)
    feed.put_nowait(tp.partition, in_messages(records))
    consumer._read_offset[tp] = records[-1].offset


def recover_in_bulk(consumer: Any, tp: Any, records: list[Any]) -> list[Any]:
    """Changelog records of a table partition in recovery (or a standby) applied to the table's
    memory store at once; the records left for faust's per-message path.

    faust's recovery takes a changelog record at a time from a queue, through the Conductor
    (tens of microseconds each; a restart replays every record of the changelog's uncompacted
    tail). Here the records of a fetch are applied as faust's memory store applies a changelog
    batch (a record without a value deletes its key) and the partition's recovery offset is
    moved to the last of them. That last record still goes through faust's path, only as a
    signal: recovery takes it as seen already (its offset is not past the recovery offset)
    and decides whether recovery is over, as it would have. No record is left in faust's
    recovery buffers to be applied later over a newer value.
    """
    recovery = consumer.app.tables.recovery
    if tp in recovery.active_tps:
        if not recovery.in_recovery:
            return records
        offsets = recovery.active_offsets
    elif tp in recovery.standby_tps:
        offsets = recovery.standby_offsets
    else:
        return records
    table = recovery.tp_to_table.get(tp)
    store = getattr(table, "data", None)
    data = getattr(store, "data", None)
    key_partition = getattr(store, "_key_partition", None)
    if not records or not isinstance(data, dict) or not isinstance(key_partition, dict):
        return records  # not the memory store: faust's own path
    read_offset = consumer._read_offset.get(tp)
    seen = offsets.get(tp)
    floor = max(-1 if seen is None else seen + 1, -1 if read_offset is None else read_offset)
    fresh = records if records[0].offset >= floor else [r for r in records if r.offset >= floor]
    if not fresh:
        return records[-1:]
    partition = tp.partition
    for record in fresh:
        key = record.key
        if record.value is None:
            data.pop(key, None)
            key_partition.pop(key, None)
        else:
            data[key] = record.value
            key_partition[key] = partition
    offsets[tp] = fresh[-1].offset
    return fresh[-1:]


async def _wait_for_room(consumer: Any, feed: ReadingsFeed) -> None:
    """Wait until the feed has room, or the flow is stopped (a rebalance or a seek)."""
    if feed.has_space() or not consumer.flow_active:
        return
    space = asyncio.ensure_future(feed.wait_space())
    stopped = asyncio.ensure_future(consumer.suspend_flow.wait())
    try:
        await asyncio.wait({space, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        space.cancel()
        stopped.cancel()


async def _per_message(
    consumer: Any, tp: Any, records: list[Any], callback: Any, generation: int
) -> None:
    """faust's own per-message hand-over (every topic but the readings)."""
    get_read_offset = consumer._read_offset.__getitem__
    acks_enabled_for = consumer.app.topics.acks_enabled_for
    to_message = consumer._to_message
    app = consumer.app
    for index, record in enumerate(records):
        if not consumer.flow_active or app.consumer_generation_id != generation:
            return
        if index and not index % 100:
            await asyncio.sleep(0)
        offset = record.offset
        r_offset = get_read_offset(tp)
        if r_offset is None or offset >= r_offset:
            gap = offset - (r_offset or 0)
            if gap > 1 and r_offset and acks_enabled_for(record.topic):
                await consumer._add_gap(tp, r_offset + 1, offset)
            await _maybe_commit(consumer)
            await consumer.wait_first(
                callback(to_message(tp, record)), consumer.suspend_flow.wait()
            )
            consumer._read_offset[tp] = offset


async def wait_for_feed(consumer: Any) -> None:
    """At a revoke or a stop, before faust commits what its streams acknowledged: drop the
    queued readings and wait for the batches taken to be delivered, then for the worker's own
    background commits to end (none may start while the group rebalances); a commit still
    running then (faust's own) is followed by one of everything acknowledged, which faust's
    commit at the revoke would skip."""
    feed = feed_of(consumer)
    if feed is None:
        return
    dropped = feed.revoke()
    if feed.in_flight and not await feed.wait_delivered(REVOKE_WAIT_SECONDS):
        log.warning(
            "%d readings batch(es) still undelivered after %.0f s of waiting at a rebalance",
            feed.in_flight,
            REVOKE_WAIT_SECONDS,
        )
    if feed.settle_commits is not None:
        await feed.settle_commits()
    if getattr(consumer, "_commit_fut", None) is not None:
        await commit_acknowledged(consumer)
    if dropped:
        log.info("rebalance: %d queued readings dropped (read again after it)", dropped)

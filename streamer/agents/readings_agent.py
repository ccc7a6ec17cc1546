"""The readings agent: continuous micro-batches from the bulk readings feed.

faust's fetch loop hands the readings over in bulk (:mod:`streamer.faust_glue.bulk_readings`);
the agent stays declared on the readings topic so that faust subscribes to it and assigns its
partitions together with the tables' (co-partitioned), but its stream is never iterated. Its
body is :meth:`ReadingsLoop.run`: take what has arrived (up to the batch maximum; wait only
when nothing is queued), process it, and deliver it (:mod:`streamer.delivery`) while the next
batches are processed. Deliveries are made one after the other on their own task, so a meter's
state writes reach the changelog in order, and processing waits for a broker's
acknowledgements only when deliveries fall behind; a batch's offsets are acknowledged to faust
only once all its records are in Kafka.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from streamer.agents.batch_metrics import record_batch
from streamer.agents.drift_reporting import score_batch
from streamer.agents.runtime import WorkerRuntime
from streamer.contract.drift_record import DriftReport
from streamer.contract.forecast_record import ForecastRecord
from streamer.delivery.at_least_once import deliver
from streamer.delivery.batch_records import OutputTopics, batch_records, encode_new_forecasts
from streamer.delivery.bulk_sender import BulkSender, OutRecord
from streamer.delivery.exactly_once import deliver_exactly_once, next_offsets
from streamer.delivery.offset_commits import COMMIT_EVERY_BATCHES, CoalescedCommits
from streamer.faust_glue.bulk_readings import (
    REVOKE_WAIT_SECONDS,
    Chunk,
    ReadingsFeed,
    acknowledge_chunks,
    commit_acknowledged,
)
from streamer.faust_glue.table_access import state_loader, table_sink
from streamer.groups.contributions import contributions_of, group_partition
from streamer.pipeline.batch_processor import BatchProcessor, BatchResult, PendingBatch
from streamer.pipeline.messages import InMessage
from streamer.thread_priority import lower_thread_priority
from streamer.timeutil import now_ms
from streamer.typed_decorators import typed

log = logging.getLogger(__name__)

_T = TypeVar("_T")

#: how long the loop yields after queueing a delivery (its records leave for the broker meanwhile)
HANDOFF_SECONDS = 0.001
#: processed batches that may wait for the one being delivered (the loop then waits for room)
WAITING_BATCHES = 1


@dataclass(slots=True)
class ProcessedBatch:
    """A batch processed (tables updated in memory) and not yet delivered."""

    chunks: list[Chunk]
    messages: list[InMessage]
    result: BatchResult
    outputs: list[OutRecord]
    state_writes: list[OutRecord]
    started: float
    #: the chunks whose offsets are acknowledged once the batch is delivered: its own and those
    #: of the batches before it whose state writes it carries (coalesced), or none (its state
    #: writes are held back for a later batch)
    acknowledged: list[Chunk]


@dataclass(slots=True)
class _Ahead:
    """The next batch, taken and parsed while the batch before it waited for its models."""

    chunks: list[Chunk]
    messages: list[InMessage]
    pending: PendingBatch
    started: float


class ReadingsLoop:
    """Takes batches from the feed, processes them and delivers them, one delivery at a time,
    overlapping a batch's delivery with the next batch's processing."""

    #: the at-least-once offset commits, made at the first delivery
    _commits: CoalescedCommits | None = None
    #: the delivery queue, while :meth:`run` runs
    _waiting: asyncio.Queue[ProcessedBatch] | None = None
    #: the next batch, taken and parsed ahead (:meth:`_take_ahead`)
    _ahead: _Ahead | None = None

    def __init__(self, runtime: WorkerRuntime, feed: ReadingsFeed) -> None:
        self.runtime = runtime
        self.feed = feed
        settings = runtime.settings
        self._topics = OutputTopics(
            readings=settings.readings_topic,
            forecasts=settings.forecasts_topic,
            dlq=settings.dlq_topic,
            status=settings.status_topic,
            drift=settings.drift_topic,
        )
        self._state = table_sink(runtime.state_table)
        self._latest = table_sink(runtime.latest_forecast_table)
        self._load = state_loader(self._state.data)
        self._bulk_sender: BulkSender | None = None
        self._thread = (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="streamer-batch")
            if settings.batch_in_thread
            else None
        )
        # the models' calls of a batch, a chunk of meters each (ONNX Runtime and numpy release
        # the GIL), STREAMER_INFERENCE_THREADS at once: the event loop applies the next chunks,
        # delivers the previous batch and fetches meanwhile
        self._inference_threads = ThreadPoolExecutor(
            max_workers=settings.inference_threads,
            thread_name_prefix="streamer-inference",
            initializer=lower_thread_priority,
            initargs=(settings.inference_thread_nice,),
        )
        self.batches = 0
        # coalesced state writes (at_least_once): a meter's record is written once per offset
        # commit, by the batch that ends the run (every COMMIT_EVERY_BATCHES, when nothing is
        # queued behind it, at a revoke); the chunks of the batches before it are acknowledged
        # only once it is delivered
        runtime.processor.coalesce_state_writes = (
            settings.coalesce_state_writes and runtime.transactional_sender is None
        )
        self._since_flush = 0
        self._unacknowledged: list[Chunk] = []
        # a batch of held-back state writes is made and queued under it (in the order made)
        self._flush_lock = asyncio.Lock()
        feed.settle_commits = self._settle

    async def process(self, chunks: list[Chunk]) -> ProcessedBatch:
        """Process one batch; its records are made, not yet sent.

        The batch is parsed and applied on the event loop, a chunk of meters at a time; each
        chunk's models are called on an inference thread as soon as it is applied (ONNX Runtime
        and numpy release the GIL there, so the event loop applies the next chunk, sends the
        previous batch, fetches and answers meanwhile). Once every meter is applied, the batch's
        matches are folded into the fleet accuracy, and each chunk's records (and its forecasts'
        JSON) are made on the event loop as soon as its call returned, while the later chunks'
        calls run. With ``STREAMER_BATCH_IN_THREAD`` the batch runs on the batch thread (and is
        scored once it returned). All under the core's batch lock, which every other task that
        touches the processor, the models or the drift monitors takes too.
        """
        started = time.perf_counter()
        runtime = self.runtime
        processor = runtime.processor
        ahead = self._taken_ahead(chunks)
        begun: PendingBatch | None = None
        if ahead is not None:
            started, messages, begun = ahead.started, ahead.messages, ahead.pending
            begun.now_ms = now_ms()  # (its parse had its own)
        else:
            messages = [m for chunk in chunks for m in chunk.messages]
        processor.collect_actuals = bool(runtime.core.membership)
        async with runtime.core.batch_lock:
            drifts: list[DriftReport] = []
            if self._thread is not None:
                result = await self._run(
                    self._thread, processor.process, messages, self._load, now_ms()
                )
                drifts = score_batch(runtime.core, result)
            else:
                pending = begun or processor.begin(messages, self._load, now_ms())
                await _run_chunks(
                    processor,
                    pending,
                    self._inference_threads,
                    # the batch's matches are all made once its meters are applied: folded
                    # into the fleet accuracy while the models run
                    applied=lambda: drifts.extend(score_batch(runtime.core, pending.result)),
                    # each chunk's forecast JSON as soon as its forecasts are issued, while
                    # the later chunks' models run (not once they all returned, when the
                    # event loop is all that runs)
                    finished=lambda: encode_new_forecasts(pending.result),
                    # about to wait for the models: the next batch's parse meanwhile
                    waiting=self._take_ahead,
                )
                result = processor.finish(pending)
            acknowledged = self._flushed(result, chunks)
        outputs, state_writes = batch_records(
            self._topics, self._state, self._latest, result, drifts
        )
        if runtime.core.membership:  # groups configured: members' forecasts and readings
            outputs.extend(self._group_records(result))
        return ProcessedBatch(
            chunks, messages, result, outputs, state_writes, started, acknowledged
        )

    def _take_ahead(self) -> None:
        """Take the next batch now if :meth:`ReadingsFeed.take` would return it at once, and
        parse it (:meth:`BatchProcessor.begin`: nothing of it is applied), so that the event
        loop does that while it would wait for this batch's models; :meth:`run` processes it
        next. Under the batch lock, in the chunked path only."""
        feed = self.feed
        if self._ahead is not None or not feed.ready_nowait():
            return
        chunks = feed.take_nowait()
        if not chunks:
            return
        started = time.perf_counter()
        messages = [m for chunk in chunks for m in chunk.messages]
        try:
            pending = self.runtime.processor.begin(messages, self._load, now_ms())
        except BaseException:
            feed.delivered()  # taken, never to be delivered: the worker stops
            raise
        self._ahead = _Ahead(chunks, messages, pending, started)

    def _taken_ahead(self, chunks: list[Chunk]) -> _Ahead | None:
        """The batch of ``chunks`` as :meth:`_take_ahead` took it, if it did (now the loop's
        to process), else None."""
        ahead = self._ahead
        if ahead is None or ahead.chunks is not chunks:
            return None
        self._ahead = None
        return ahead

    def _give_up_ahead(self) -> None:
        """The batch taken ahead will not be processed (the worker stops): not in flight."""
        if self._ahead is not None:
            self._ahead = None
            self.feed.delivered()

    def _flushed(self, result: BatchResult, chunks: list[Chunk]) -> list[Chunk]:
        """The chunks to acknowledge once ``result`` is delivered: with coalesced state writes,
        ``result`` carries every record changed since the last flush when this batch ends a run
        (COMMIT_EVERY_BATCHES batches, or nothing queued behind it), else none (and its chunks
        wait for the batch that does)."""
        processor = self.runtime.processor
        if not processor.coalesce_state_writes:
            return chunks
        self._since_flush += 1
        behind = self.feed.queued_events or self._ahead is not None
        if self._since_flush < COMMIT_EVERY_BATCHES and behind:
            self._unacknowledged.extend(chunks)
            return []
        return self._flush_into(result, chunks)

    def _flush_into(self, result: BatchResult, chunks: list[Chunk]) -> list[Chunk]:
        """Add the held-back state writes to ``result``; the chunks its delivery acknowledges:
        those held back, then ``chunks``. (Under the core's batch lock.)"""
        self.runtime.processor.flush_state(result)
        self._since_flush = 0
        acknowledged = [*self._unacknowledged, *chunks]
        self._unacknowledged = []
        return acknowledged

    async def _flush_batch(self) -> ProcessedBatch | None:
        """A batch of no reading that carries the state writes held back (and acknowledges
        their batches' offsets), or None when nothing is held back."""
        processor = self.runtime.processor
        if not processor.unflushed_meters and not self._unacknowledged:
            return None
        async with self.runtime.core.batch_lock:
            result = BatchResult()
            acknowledged = self._flush_into(result, [])
        outputs, state_writes = batch_records(self._topics, self._state, self._latest, result, [])
        return ProcessedBatch(
            [], [], result, outputs, state_writes, time.perf_counter(), acknowledged
        )

    async def _queue_flush(self, put: Callable[[ProcessedBatch], Awaitable[object]]) -> bool:
        """Queue a batch of the state writes held back for delivery (:meth:`_flush_batch`), if
        any; whether one was."""
        async with self._flush_lock:
            batch = await self._flush_batch()
            if batch is None:
                return False
            self.feed.add_in_flight()
            await put(batch)
            return True

    async def _settle(self) -> None:
        """At a revoke, once the batches taken are delivered: write the state held back and
        acknowledge its offsets (before faust commits them and the partitions change hands),
        then let the background commits end."""
        waiting = self._waiting
        queued = waiting is not None and await self._queue_flush(waiting.put)
        if queued and not await self.feed.wait_delivered(REVOKE_WAIT_SECONDS):
            log.warning(
                "the state writes held back were not delivered after %.0f s of waiting at "
                "a rebalance",
                REVOKE_WAIT_SECONDS,
            )
        if self._commits is not None:
            await self._commits.settle()

    def _group_records(self, result: BatchResult) -> list[OutRecord]:
        """The batch's contributions to its meters' groups, one record per group and readings
        partition (an exactly_once transaction is per readings partition)."""
        settings = self.runtime.settings
        sources = result.sources
        by_partition: dict[int, tuple[list[ForecastRecord], list[tuple[str, int, float]]]] = {}
        for forecast in result.forecasts:
            source = sources.get(forecast.meter_id)
            if source is not None:
                by_partition.setdefault(source.partition, ([], []))[0].append(forecast)
        for actual in result.actuals:
            source = sources.get(actual[0])
            if source is not None:
                by_partition.setdefault(source.partition, ([], []))[1].append(actual)
        records: list[OutRecord] = []
        res_ms = settings.resolution_seconds * 1000
        for partition, (forecasts, actuals) in by_partition.items():
            touched = contributions_of(forecasts, actuals, self.runtime.core.membership, res_ms)
            for group_id, contribution in touched.items():
                records.append(
                    OutRecord(
                        settings.group_contributions_topic,
                        group_partition(group_id, settings.topic_partitions),
                        group_id.encode(),
                        contribution.to_bytes(),
                        partition,
                    )
                )
        return records

    @staticmethod
    async def _run(thread: ThreadPoolExecutor, function: Callable[..., _T], *args: Any) -> _T:
        future = asyncio.get_running_loop().run_in_executor(thread, function, *args)
        await _all_done([future])
        return future.result()

    async def deliver(self, batch: ProcessedBatch) -> None:
        """Deliver a processed batch, then acknowledge its offsets to faust."""
        runtime = self.runtime
        metrics = runtime.metrics
        published: Callable[[], None] = lambda: record_batch(  # noqa: E731
            metrics,
            batch.messages,
            batch.result,
            last_offsets=[(c.messages[-1].topic, c.partition, c.last_offset) for c in batch.chunks],
        )
        partitions: set[int] | None = None
        sender = runtime.transactional_sender
        if not batch.chunks:  # the state writes held back, alone (at_least_once)
            await deliver(
                self._sender(),
                batch.outputs,
                batch.state_writes,
                published=lambda: metrics.state_writes.inc(len(batch.result.state_writes)),
            )
            self._acknowledge(batch)
            return
        if sender is not None:
            offsets = next_offsets((c.partition, c.last_offset) for c in batch.chunks)
            partitions = await deliver_exactly_once(
                sender, [*batch.outputs, *batch.state_writes], offsets, published=published
            )
        else:
            await deliver(self._sender(), batch.outputs, batch.state_writes, published=published)
        if sender is not None:
            acknowledge_chunks(runtime.app.consumer, batch.acknowledged, partitions)
        else:
            self._acknowledge(batch)
        metrics.batch_size.observe(len(batch.messages))
        metrics.batch_duration.observe(time.perf_counter() - batch.started)

    def _acknowledge(self, batch: ProcessedBatch) -> None:
        """at_least_once: acknowledge the offsets ``batch`` covers (none when its state writes
        are held back); when caught up (nothing queued or processed behind it), commit now
        rather than at faust's next interval or its commit_every, in the background (the next
        delivery does not wait for it). Through a backlog, faust's interval and commit_every
        bound what a crash replays (streamer.app)."""
        if not batch.acknowledged:
            return
        consumer = self.runtime.app.consumer
        acknowledge_chunks(consumer, batch.acknowledged, None)
        if self.feed.queued_events == 0 and self.feed.in_flight <= 1:
            if self._commits is None:
                self._commits = CoalescedCommits(lambda: commit_acknowledged(consumer))
            self._commits.request()

    def _sender(self) -> BulkSender:
        if self._bulk_sender is None:
            # faust's producer wraps one aiokafka producer, started before any agent runs
            self._bulk_sender = BulkSender(self.runtime.app.producer._ensure_producer())
        return self._bulk_sender

    async def run(self) -> None:
        """Take, process, deliver; until cancelled.

        Deliveries run one after the other on their own task (:meth:`_deliver_in_order`), so a
        meter's state writes reach the changelog in order, while this loop goes on taking and
        processing: up to :data:`WAITING_BATCHES` processed batches wait for their turn
        (then the loop waits for room), so processing never waits for a broker's
        acknowledgements unless deliveries fall behind.
        """
        feed = self.feed
        waiting: asyncio.Queue[ProcessedBatch] = asyncio.Queue(maxsize=WAITING_BATCHES)
        self._waiting = waiting
        delivering = asyncio.ensure_future(self._deliver_in_order(waiting))
        try:
            while True:
                ahead = self._ahead
                if ahead is not None:  # taken and parsed while the last batch ran
                    chunks = ahead.chunks
                else:
                    if not feed.queued_events:
                        # about to wait for readings: write the state held back first (its
                        # batch ended no run: readings queued behind it were dropped since)
                        await self._queue_flush(
                            lambda batch: _unless_failed(
                                delivering, waiting.put(batch), given_up=feed.delivered
                            )
                        )
                    chunks = await _unless_failed(
                        delivering, feed.take(), lost=lambda _: feed.delivered()
                    )
                try:
                    batch = await self.process(chunks)
                except BaseException:
                    feed.delivered()  # taken, never to be delivered: the worker stops
                    self._give_up_ahead()
                    raise
                self.batches += 1
                # (queued, the batch is the delivery's to account for, or the finally's below)
                await _unless_failed(delivering, waiting.put(batch), given_up=feed.delivered)
                # let the delivery hand its records to the producer and the producer write them
                # to the broker before the next batch holds the event loop: a few chained
                # callbacks, all run before a timer of HANDOFF_SECONDS fires
                await asyncio.sleep(HANDOFF_SECONDS)
        finally:
            self._waiting = None
            self._give_up_ahead()
            delivering.cancel()
            await asyncio.gather(delivering, return_exceptions=True)
            if self._commits is not None:
                await self._commits.close()
            while not waiting.empty():  # processed, never to be delivered: the worker stops
                waiting.get_nowait()
                feed.delivered()

    async def _deliver_in_order(self, waiting: asyncio.Queue[ProcessedBatch]) -> None:
        """Deliver the processed batches one after the other, in the order processed."""
        while True:
            batch = await waiting.get()
            try:
                await self.deliver(batch)
            finally:
                self.feed.delivered()


async def _unless_failed(
    delivering: asyncio.Future[None],
    call: Awaitable[_T],
    *,
    lost: Callable[[_T], None] | None = None,
    given_up: Callable[[], None] | None = None,
) -> _T:
    """``await call``, unless the delivery task ends first (it only ends by failing: its error
    is raised then, and ``call`` cancelled). When this is cancelled or raises, ``lost`` gets
    the result of a call that completed all the same, and ``given_up`` is called for a call
    that did not complete (so that every batch taken is accounted for)."""
    task = asyncio.ensure_future(call)
    if not task.done():
        try:
            await asyncio.wait((task, delivering), return_when=asyncio.FIRST_COMPLETED)
        except BaseException:
            task.cancel()
            _account(task, lost, given_up)
            raise
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            _account(task, lost, given_up)
            delivering.result()  # raises the delivery's error
            raise RuntimeError("the readings delivery task ended")  # (it never returns)
    return task.result()


def _account(
    task: asyncio.Future[_T],
    lost: Callable[[_T], None] | None,
    given_up: Callable[[], None] | None,
) -> None:
    """Hand a dropped call's result to ``lost`` when it completed, else call ``given_up``."""
    completed = task.done() and not task.cancelled() and task.exception() is None
    if completed:
        if lost is not None:
            lost(task.result())
    elif given_up is not None:
        given_up()


async def _run_chunks(
    processor: BatchProcessor,
    pending: PendingBatch,
    threads: ThreadPoolExecutor,
    *,
    applied: Callable[[], None] | None = None,
    finished: Callable[[], None] | None = None,
    waiting: Callable[[], None] | None = None,
) -> None:
    """Apply ``pending``'s chunks, each one's models called on ``threads`` as soon as it is
    applied, yielding to the event loop between chunks (so that the previous batch's delivery
    takes its next step, its acknowledgement or the commit, during this batch rather than
    after it); then finish each chunk as soon as its call returned, in chunk order, while the
    later chunks' calls run. ``applied`` is called once every chunk is applied, and
    ``finished`` after each chunk is finished: work that is ready then runs while the later
    calls do; ``waiting`` once, after ``applied``, when a call is still running (the event loop
    would wait for it). A thread cannot be interrupted: a cancelled or failed batch waits for
    the calls it started to end before the loop goes on; the first error is raised."""
    loop = asyncio.get_running_loop()
    calls: list[asyncio.Future[None]] = []
    try:
        for inference in processor.apply_chunks(pending):
            if inference is not None:
                calls.append(loop.run_in_executor(threads, inference.run))
            await asyncio.sleep(0)
        if applied is not None:
            applied()
        if waiting is not None and not all(call.done() for call in calls):
            waiting()
        for call in calls:
            await asyncio.shield(call)  # raises the call's error
            processor.finish_next(pending)
            if finished is not None:
                finished()
    except BaseException:
        if calls:
            await asyncio.wait(calls)
        raise


async def _all_done(calls: Sequence[asyncio.Future[Any]]) -> None:
    """Wait for every call (a thread cannot be interrupted: a cancelled batch waits for its
    calls to end before the loop goes on), then raise the first one's error, if any."""
    try:
        await asyncio.shield(asyncio.wait(calls))
    except asyncio.CancelledError:
        await asyncio.wait(calls)
        raise
    for call in calls:
        call.result()


def register_readings_agent(app: Any, runtime: WorkerRuntime, feed: ReadingsFeed) -> None:
    loop = ReadingsLoop(runtime, feed)

    @typed(app.agent(runtime.topics.readings, name="streamer.readings"))
    async def process_readings(stream: Any) -> None:
        # the stream stays empty: faust's fetch loop hands the readings to the feed
        await loop.run()

"""One micro-batch: parse, apply to per-meter state, decide and make forecasts.

Every message ends in exactly one outcome: ``applied``, ``corrected``, ``duplicate``,
``dead_lettered`` (with a reason) or ``rerouted`` (a valid reading on another partition than its
meter's home, sent on to it, where it is consumed again and ends in one of the others).
:class:`BatchResult` carries the counts so that the caller's counters add up to the messages
consumed.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt

from streamer.accuracy.forecast_ledger import ForecastLedger, quantile_columns
from streamer.accuracy.interval_calibration import (
    IntervalCalibrator,
    batch_multipliers,
    calibrate_quantiles,
    level_column,
)
from streamer.accuracy.match import Match
from streamer.contract.dead_letter import DeadLetter, SourcePosition
from streamer.contract.errors import InvalidReading
from streamer.contract.forecast_record import ForecastRecord
from streamer.contract.placement import home_partition
from streamer.contract.reading import Reading, ReadingLimits, parse_reading
from streamer.contract.reasons import DlqReason
from streamer.contract.status_record import MeterStatus, StatusEvent
from streamer.forecast.batch import ForecastBatch
from streamer.forecast.protocol import Forecaster, ForecastSteps, forecast_steps
from streamer.pipeline.config import PipelineConfig
from streamer.pipeline.deferred_calls import Calls, deferring, replay
from streamer.pipeline.messages import InMessage
from streamer.pipeline.meter_record import MeterRecord, same_record
from streamer.pipeline.scoring import ConceptDrift, match_shadow, score_actual
from streamer.pipeline.window_batch import StoredWindows, impute_stored, stack_stored
from streamer.state.config import WindowConfig
from streamer.state.errors import StateDecodeError
from streamer.state.meter_state import MeterState
from streamer.state.outcome import APPLIED, CORRECTED, DUPLICATE, OUTCOME_VALUES, Outcome

log = logging.getLogger(__name__)

#: Meters applied before their chunk's models are called (on the worker's inference thread, while
#: the next chunk is applied).
CHUNK_METERS = 256
#: A smaller batch is cut into this many chunks (of at least :data:`MIN_CHUNK_METERS`): the
#: models' call of its last chunk runs after every meter is applied, while the event loop has
#: little else to do, so that call is the batch's tail; the smaller it is, the sooner the
#: batch's records go out (the latency of a worker that keeps up).
CHUNKS_PER_BATCH = 4
MIN_CHUNK_METERS = 32


def chunk_meters(meters: int) -> int:
    """Meters per chunk in a batch of ``meters``: :data:`CHUNK_METERS`, or fewer, so that a
    batch has :data:`CHUNKS_PER_BATCH` chunks where it can (none under
    :data:`MIN_CHUNK_METERS` meters)."""
    return min(CHUNK_METERS, max(MIN_CHUNK_METERS, -(-meters // CHUNKS_PER_BATCH)))


#: Meters whose home partition is remembered (a dict of key bytes to int; cleared when full).
_HOMES_KEPT = 1_000_000

_DLQ_OUTCOMES = {
    Outcome.TOO_LATE: DlqReason.TOO_LATE,
    Outcome.REGISTER_OUT_OF_ORDER: DlqReason.REGISTER_OUT_OF_ORDER,
}


class LiveModels(Protocol):
    """The models in service: ``live`` is published, ``shadow`` (if any) only compared."""

    @property
    def live(self) -> Forecaster: ...

    @property
    def shadow(self) -> Forecaster | None: ...


@dataclass(frozen=True, slots=True)
class FixedModels:
    """A :class:`LiveModels` that never changes (tests, backtests)."""

    live: Forecaster
    shadow: Forecaster | None = None


# not frozen: built on the hot path (per meter written), where a frozen dataclass
# costs 3-4x as much to build; treat it as read-only
@dataclass(slots=True)
class StateWrite:
    """New record bytes of a meter and the index of its last message in the batch.

    The bytes are tagged with the partition of that message (the changelog partition must be
    that of the meter's readings); the index tells the agent which event the write follows.
    The caller must store ``value`` itself (not a copy): the processor's decoded-record cache
    recognises a stored value by identity.
    """

    value: bytes
    message_index: int
    partition: int


@dataclass(frozen=True, slots=True)
class MeterSource:
    """The readings partition of a meter applied in the batch (its state, forecasts and events
    go to that partition) and the index of its last message in the batch."""

    partition: int
    message_index: int


@dataclass(frozen=True, slots=True)
class Reroute:
    """A valid reading consumed on a partition other than its meter's home: the same key and
    bytes are to be sent to ``partition`` of the readings topic, where they are applied."""

    message: InMessage
    partition: int


@dataclass(slots=True)
class BatchResult:
    state_writes: dict[str, StateWrite] = field(default_factory=dict)
    #: every meter applied in the batch (with coalesced state writes, a meter applied has no
    #: state write until its record is flushed: :meth:`BatchProcessor.flush_state`)
    sources: dict[str, MeterSource] = field(default_factory=dict)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    # readings that arrived on another partition than their meter's home: sent on to it
    rerouted: list[Reroute] = field(default_factory=list)
    forecasts: list[ForecastRecord] = field(default_factory=list)
    #: the JSON of ``forecasts[:len(forecast_bodies)]``, when made ahead (the agent encodes a
    #: chunk's forecasts while the later chunks' models run: streamer.delivery.batch_records)
    forecast_bodies: list[bytes] = field(default_factory=list)
    shadow_forecasts: list[ForecastRecord] = field(default_factory=list)
    # actuals matched with the forecasts issued for them (live, and the shadow model's)
    matches: list[Match] = field(default_factory=list)
    shadow_matches: list[Match] = field(default_factory=list)
    concept_drifts: list[ConceptDrift] = field(default_factory=list)
    status_events: list[StatusEvent] = field(default_factory=list)
    # (meter, slot index, kWh) of every interval reading applied or corrected: group totals
    actuals: list[tuple[str, int, float]] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)
    dlq_reasons: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    inference_seconds: dict[str, float] = field(default_factory=dict)
    state_decode_errors: int = 0

    @property
    def accounted(self) -> int:
        return sum(self.outcomes.values())


class _Mark:
    """The lengths of a batch result's lists before one meter was applied, to undo a failed
    meter (its outcome counts and dead letters are added only once it succeeded)."""

    __slots__ = ("_lengths",)

    def __init__(self, result: BatchResult) -> None:
        self._lengths = (
            len(result.dead_letters),
            len(result.status_events),
            len(result.matches),
            len(result.shadow_matches),
            len(result.concept_drifts),
            len(result.actuals),
        )

    def restore(self, result: BatchResult) -> None:
        dead_letters, status_events, matches, shadow_matches, concept_drifts, actuals = (
            self._lengths
        )
        del result.actuals[actuals:]
        del result.dead_letters[dead_letters:]
        del result.status_events[status_events:]
        del result.matches[matches:]
        del result.shadow_matches[shadow_matches:]
        del result.concept_drifts[concept_drifts:]


class _Dirty:
    """A meter's record changed since its bytes were last made (coalesced state writes)."""

    __slots__ = ("covered", "record", "stored")

    def __init__(self, record: MeterRecord, stored: bytes | None, covered: tuple[int, int]) -> None:
        self.record = record  # (its partition and offset: those of the meter's newest message)
        #: the stored value when the record was first changed, and the offset it covers
        self.stored = stored
        self.covered = covered


@dataclass(slots=True)
class _Held:
    """A meter's record while the batch is processed, and what it was when loaded."""

    record: MeterRecord
    stored: bytes | None
    last_index: int
    #: The zone the meter's newest reading of the batch named, if any.
    time_zone: str | None = None


class Inference:
    """The models' calls of one chunk: its stacked windows imputed, the live model on every
    window, the fallback on the rows it could not serve, the shadow model (if any) on all.

    :meth:`prepare` (imputation and the models' inputs: many small numpy calls) runs on the
    event loop; :meth:`run` touches nothing but the prepared arrays and the models, and the
    worker runs it on one of its inference threads while the event loop applies the next chunk,
    delivers the previous batch and fetches. ONNX Runtime releases the GIL for the whole session
    call, so that thread rarely needs the interpreter: where it does (at each numpy call), it
    waits for the event loop's Python to let go of it, so the preparation is not done there.
    """

    __slots__ = (
        "_live_steps",
        "_shadow_steps",
        "batch",
        "deferred",
        "fallback",
        "fallback_batch",
        "fallback_rows",
        "history",
        "live",
        "resolution_seconds",
        "seconds",
        "shadow",
        "shadow_batch",
        "stored",
        "window",
        "zones",
    )

    def __init__(
        self,
        live: Forecaster,
        fallback: Forecaster,
        shadow: Forecaster | None,
        stored: StoredWindows,
        window: WindowConfig,
        resolution_seconds: int,
        zones: str | npt.NDArray[np.str_],
    ) -> None:
        self.live = live
        self.fallback = fallback
        self.shadow = shadow
        self.stored = stored
        self.window = window
        self.resolution_seconds = resolution_seconds
        self.zones = zones
        self.history: npt.NDArray[np.float64] | None = None
        self._live_steps: ForecastSteps | None = None
        self._shadow_steps: ForecastSteps | None = None
        self.batch: ForecastBatch | None = None
        self.fallback_rows: np.ndarray = np.empty(0, dtype=np.intp)
        self.fallback_batch: ForecastBatch | None = None
        self.shadow_batch: ForecastBatch | None = None
        #: seconds of each model's call, by name (the shadow's as ``name:shadow``)
        self.seconds: dict[str, float] = {}
        #: the models' deferrable calls (input observers), made by :meth:`BatchProcessor.finish`
        self.deferred: Calls = []

    @property
    def end_ms(self) -> npt.NDArray[np.int64]:
        """``(B,)`` end of each window's head slot: the forecasts' origins."""
        return self.stored.end_ms

    def prepare(self) -> None:
        """Impute the windows and prepare each model's call (on the caller's thread)."""
        with deferring(self.deferred):
            self.history = history = impute_stored(self.stored, self.window).values_kwh
            end_ms, res, zones = self.end_ms, self.resolution_seconds, self.zones
            started = time.perf_counter()
            self._live_steps = forecast_steps(self.live, history, end_ms, res, zones)
            self.seconds[self.live.name] = time.perf_counter() - started
            shadow = self.shadow
            if shadow is not None:
                started = time.perf_counter()
                self._shadow_steps = forecast_steps(shadow, history, end_ms, res, zones)
                self.seconds[f"{shadow.name}:shadow"] = time.perf_counter() - started

    def run(self) -> None:
        """The models' calls (:meth:`prepare` first; on any thread)."""
        with deferring(self.deferred):
            self._run()

    def _run(self) -> None:
        history, live_steps = self.history, self._live_steps
        if history is None or live_steps is None:
            raise RuntimeError("Inference.run() before prepare()")
        end_ms, res, zones = self.end_ms, self.resolution_seconds, self.zones
        seconds, live = self.seconds, self.live
        started = time.perf_counter()
        live_steps.compute()
        batch = live_steps.result()
        seconds[live.name] += time.perf_counter() - started
        rows = np.flatnonzero(~batch.valid)
        if rows.size:
            started = time.perf_counter()
            self.fallback_batch = self.fallback.forecast(
                history[rows], end_ms[rows], res, zones if isinstance(zones, str) else zones[rows]
            )
            seconds[self.fallback.name] = time.perf_counter() - started
        self.fallback_rows = rows
        shadow, shadow_steps = self.shadow, self._shadow_steps
        if shadow is not None and shadow_steps is not None:
            started = time.perf_counter()
            shadow_steps.compute()
            self.shadow_batch = shadow_steps.result()
            seconds[f"{shadow.name}:shadow"] += time.perf_counter() - started
        self.batch = batch
        # the chunk's inputs are not needed any more: its records need only the outputs
        self.history = None
        self._live_steps = self._shadow_steps = None


@dataclass(slots=True)
class _ForecastChunk:
    """The meters of one chunk due a forecast with enough history, their observed fractions
    and their models' calls; ``meters_end``: the end of the chunk's meters in the batch's."""

    candidates: list[str]
    fractions: np.ndarray
    inference: Inference
    meters_end: int


@dataclass(slots=True)
class PendingBatch:
    """A batch between :meth:`BatchProcessor.begin` and :meth:`BatchProcessor.finish`."""

    messages: Sequence[InMessage]
    load_state: Callable[[str], bytes | None]
    now_ms: int
    result: BatchResult
    #: each meter's readings (message index, reading), in batch order
    meters: list[tuple[str, list[tuple[int, Reading]]]]
    held: dict[str, _Held]
    chunks: list[_ForecastChunk] = field(default_factory=list)
    #: whether every meter was applied (:meth:`BatchProcessor.apply_chunks` ran to its end)
    applied: bool = False
    #: chunks whose records are made
    issued: int = 0
    #: meters (a prefix of ``meters``) whose record bytes are made
    written: int = 0


class _IssuedRows:
    """The records of one model's rows of a chunk: :meth:`__call__` makes candidate ``i``'s
    record from ``row`` of the model's output and notes its forecast for ``ledger``;
    :meth:`keep` then records every noted forecast in its ledger, all rows at once
    (:meth:`ForecastLedger.record_rows`)."""

    __slots__ = (
        "_ends",
        "_fallback",
        "_fractions",
        "_horizon",
        "_issued",
        "_levels",
        "_model",
        "_now_ms",
        "_point",
        "_quantiles",
        "_res_ms",
        "_resolution_seconds",
        "_shown",
    )

    def __init__(
        self,
        issuer: _Issuer,
        model: Forecaster,
        source: ForecastBatch,
        published: np.ndarray | None,
    ) -> None:
        config = issuer._config
        self._res_ms = config.resolution_seconds * 1000
        self._resolution_seconds = config.resolution_seconds
        self._levels = source.quantile_levels
        self._point = source.point_kwh
        self._quantiles = source.quantiles_kwh
        self._shown = self._quantiles if published is None else published
        self._model = model
        self._fallback = model is not issuer._live
        self._now_ms, self._ends, self._fractions = issuer._now_ms, issuer._ends, issuer._fractions
        self._horizon = issuer._horizon
        self._issued: tuple[list[ForecastLedger], list[int], list[int]] = ([], [], [])

    def __call__(self, i: int, meter_id: str, row: int, ledger: ForecastLedger) -> ForecastRecord:
        end = self._ends[i]
        ledgers, origins, rows = self._issued
        ledgers.append(ledger)
        origins.append(end // self._res_ms)
        rows.append(row)
        model = self._model
        return ForecastRecord(
            meter_id,
            self._now_ms,
            end,
            model.name,
            model.version,
            self._fallback,
            self._resolution_seconds,
            self._fractions[i],
            self._horizon(end),
            self._point[row],
            self._shown[row],
            self._levels,
        )

    def keep(self) -> None:
        """Record the issued forecasts (the model's own quantiles, not the published ones) in
        their ledgers; raises AccuracyInputError for a model without the ledger's levels."""
        ledgers, origins, rows = self._issued
        if not ledgers:
            return
        columns = quantile_columns(self._levels)
        take = np.asarray(rows, dtype=np.intp)
        ForecastLedger.record_rows(
            ledgers, origins, self._point[take], self._quantiles[take][:, :, columns]
        )
        self._issued = ([], [], [])


class _Issuer:
    """Makes the forecast records of one batch and keeps each forecast in a ledger.

    What the rows share is worked out once per batch: the horizon timestamps (one read-only
    array per distinct origin), the candidates' origins and observed fractions as Python
    numbers; the forecasts are kept in their ledgers once per model (:class:`_IssuedRows`).
    """

    __slots__ = ("_config", "_ends", "_fractions", "_horizons", "_live", "_now_ms", "_steps")

    def __init__(
        self,
        config: PipelineConfig,
        live: Forecaster,
        now_ms: int,
        ends: list[int],
        fractions: list[float],
    ) -> None:
        res_ms = config.resolution_seconds * 1000
        self._config = config
        self._live = live
        self._now_ms = now_ms
        self._ends = ends
        self._fractions = fractions
        self._steps = np.arange(1, config.horizon_slots + 1, dtype=np.int64) * res_ms
        self._horizons: dict[int, np.ndarray] = {}

    def _horizon(self, end_ms: int) -> np.ndarray:
        horizon = self._horizons.get(end_ms)
        if horizon is None:
            horizon = self._horizons[end_ms] = end_ms + self._steps
            horizon.setflags(write=False)  # shared by the records of this origin
        return horizon

    def rows_of(
        self, model: Forecaster, source: ForecastBatch, published: np.ndarray | None = None
    ) -> _IssuedRows:
        """The records of ``source``'s rows; each carries ``published[row]`` (the calibrated
        quantiles) when given; the ledgers keep the model's own."""
        return _IssuedRows(self, model, source, published)


class BatchProcessor:
    """Turns a batch of readings-topic messages into everything the agent must publish."""

    def __init__(
        self,
        config: PipelineConfig,
        models: LiveModels,
        fallback: Forecaster,
        *,
        cache_meters: int = 0,
        home_partitions: int | None = None,
        coalesce_state_writes: bool = False,
    ) -> None:
        self.config = config
        #: whether a meter's record bytes are made only when flushed (:meth:`flush_state`), not
        #: at every batch that changed it; the caller flushes before it acknowledges offsets
        self.coalesce_state_writes = coalesce_state_writes
        # with coalescing: the records changed since their bytes were last made, by meter
        self._dirty: dict[str, _Dirty] = {}
        # readings partitions: a meter's home is murmur2(key) % this, as Java's and aiokafka's
        # default partitioners place it; None: every reading is applied where it arrived
        self._home_partitions = home_partitions
        self._homes: dict[bytes, int] = {}
        # the worker's interval calibration over all its meters: the prior of each meter's own
        # (in memory: it learns again from the first slots' matches after a restart)
        self.calibration_prior = IntervalCalibrator(config.record.calibration.for_prior())
        # Decoded records of recent meters, with the exact bytes object they were decoded from
        # or written as. A hit needs the store to hand back that very object, so anything that
        # replaced the stored value (changelog recovery, a rebalance, expiry) is a miss.
        self._cache: dict[str, tuple[bytes, MeterRecord]] = {}
        # readings offsets never delivered before (re-read after faust lost them), by partition
        self._unread: dict[int, tuple[int, int]] = {}
        self._cache_meters = cache_meters
        # read at every batch: a rollout swaps the models between two batches
        self.models = models
        self.fallback = fallback
        # the shadow model's forecasts awaiting their actuals: in memory only, per meter
        self._shadow_ledgers: dict[str, ForecastLedger] = {}
        self._shadow_model: Forecaster | None = None
        #: whether results carry the applied readings (``actuals``): while groups are
        #: configured (the readings loop sets it before each batch)
        self.collect_actuals = False
        self._limits = ReadingLimits(
            max_message_bytes=config.max_message_bytes,
            max_interval_kwh=config.max_interval_kwh,
            future_tolerance_ms=config.future_tolerance_seconds * 1000,
        )

    def process(
        self,
        messages: Sequence[InMessage],
        load_state: Callable[[str], bytes | None],
        now_ms: int,
    ) -> BatchResult:
        """The whole batch on the calling thread: :meth:`begin`, each chunk of
        :meth:`apply_chunks` and its models, :meth:`finish`."""
        pending = self.begin(messages, load_state, now_ms)
        for inference in self.apply_chunks(pending):
            if inference is not None:
                inference.run()
        return self.finish(pending)

    def begin(
        self,
        messages: Sequence[InMessage],
        load_state: Callable[[str], bytes | None],
        now_ms: int,
    ) -> PendingBatch:
        """Parse the batch and group its readings by meter (nothing is applied yet, and no
        meter's state or ledger is read: the worker parses a batch while the one before it
        runs).

        Then :meth:`apply_chunks` applies the readings a chunk of meters at a time, yielding
        the models' calls of each chunk (:class:`Inference`, to run on any thread: it reads
        only its own arrays) as soon as its windows are stacked, so that a chunk's model call
        overlaps the next chunk's state updates. Once every meter is applied, :meth:`finish_next`
        makes the records of each chunk in turn as soon as its call has run (while the later
        chunks' calls run), and :meth:`finish` the rest. Nothing else may touch the processor
        in between (the worker holds its batch lock). A meter's readings, model call and
        records come in this order whatever the chunks, and no record is made before every
        meter was applied: the outputs are those of one pass.
        """
        result = BatchResult()
        by_meter: dict[str, list[tuple[int, Reading]]] = {}
        for index, message in enumerate(messages):
            try:
                reading = parse_reading(
                    message.value, message.key, limits=self._limits, now_ms=now_ms
                )
            except InvalidReading as exc:
                self._dead_letter(result, message, exc.reason, exc.detail, now_ms)
                continue
            if self._home_partitions is not None:
                home = self.home_partition(message.key)
                if home != message.partition:
                    result.rerouted.append(Reroute(message, home))
                    result.outcomes["rerouted"] += 1
                    continue
            by_meter.setdefault(reading.meter_id, []).append((index, reading))
        return PendingBatch(messages, load_state, now_ms, result, list(by_meter.items()), {})

    def apply_chunks(self, pending: PendingBatch) -> Iterator[Inference | None]:
        """Apply the batch's meters, :func:`chunk_meters` at a time; yields after each chunk the
        models' calls for its meters due a forecast (run each before its chunk is finished), or
        None when it has none (so that the caller may let other work run between chunks)."""
        meters, held, result = pending.meters, pending.held, pending.result
        messages, load_state, now_ms = pending.messages, pending.load_state, pending.now_ms
        # (here, not in begin: the worker may parse a batch while the one before it runs)
        shadow = self.models.shadow
        if shadow is not self._shadow_model:
            self._shadow_ledgers.clear()
            self._shadow_model = shadow
        size = chunk_meters(len(meters))
        for start in range(0, len(meters), size):
            candidates: list[str] = []  # meters due a forecast, in batch order
            end = min(start + size, len(meters))
            for meter_id, readings in meters[start:end]:
                mark = _Mark(result)
                try:
                    due = self._apply_meter(
                        meter_id, readings, messages, load_state, now_ms, result, held
                    )
                except Exception as exc:  # never let one meter's data stop the stream
                    log.exception(
                        "processing meter %r failed; its readings go to the DLQ", meter_id
                    )
                    mark.restore(result)
                    held.pop(meter_id, None)
                    self._cache.pop(meter_id, None)  # it may be half-applied
                    if self._dirty.pop(meter_id, None) is not None:
                        log.warning(
                            "meter %r goes back to its last state write: the readings it took "
                            "since (not written yet, coalesced) are not in its window",
                            meter_id,
                        )
                    for index, _ in readings:
                        self._dead_letter(
                            result,
                            messages[index],
                            DlqReason.PROCESSING_ERROR,
                            f"{type(exc).__name__}: {exc}",
                            now_ms,
                        )
                    continue
                if due:
                    candidates.append(meter_id)
            chunk = (
                None if not candidates else self._prepare_forecasts(held, result, candidates, end)
            )
            if chunk is None:
                yield None
            else:
                pending.chunks.append(chunk)
                yield chunk.inference
        pending.applied = True

    def finish_next(self, pending: PendingBatch) -> None:
        """Make the records of the next chunk whose models were called (its forecasts, kept in
        their ledgers, and the record bytes of its meters and of those before it), once every
        meter of the batch is applied (so that each chunk's intervals are calibrated with the
        prior of the whole batch, as in one pass): the worker finishes a chunk while the next
        chunks' models run. Its inference must have run."""
        if not pending.applied:
            raise RuntimeError("finish_next() before every meter of the batch was applied")
        chunk = pending.chunks[pending.issued]
        replay(chunk.inference.deferred)  # on this thread, in chunk order
        self._issue_forecasts(chunk, pending.held, pending.result, pending.now_ms)
        pending.issued += 1
        self._write_records(pending, chunk.meters_end)

    def finish(self, pending: PendingBatch) -> BatchResult:
        """The batch's records: those of every chunk not finished yet (:meth:`finish_next`;
        their inference must have run) and the other meters' new record bytes."""
        while pending.issued < len(pending.chunks):
            self.finish_next(pending)
        self._write_records(pending, len(pending.meters))
        return pending.result

    def _write_records(self, pending: PendingBatch, end: int) -> None:
        """The new record bytes of the batch's applied meters up to ``end`` (in batch order, the
        order in which they were applied)."""
        result, held, messages = pending.result, pending.held, pending.messages
        sources, coalesce, dirty = result.sources, self.coalesce_state_writes, self._dirty
        for meter_id, _ in pending.meters[pending.written : end]:
            meter = held.get(meter_id)
            if meter is None:  # its readings were dead-lettered
                continue
            last = messages[meter.last_index]
            partition = last.partition
            sources[meter_id] = MeterSource(partition, meter.last_index)
            record = meter.record
            covered = (record.partition, record.offset)
            if partition != record.partition or last.offset > record.offset:
                record.partition = partition
                record.offset = last.offset
            if coalesce:
                # the bytes later, but the settled slots rounded now, as making them would
                record.state.settle()
                if meter_id not in dirty:
                    dirty[meter_id] = _Dirty(record, meter.stored, covered)
                continue
            self._write_record(result, meter_id, record, meter.stored, covered, meter.last_index)
        pending.written = max(pending.written, end)

    def _write_record(
        self,
        result: BatchResult,
        meter_id: str,
        record: MeterRecord,
        stored: bytes | None,
        covered: tuple[int, int],
        message_index: int,
    ) -> None:
        """A meter's new record bytes as a state write, unless only its covered offset moved."""
        partition = record.partition
        new_bytes = record.to_bytes(partition, record.offset)
        if stored is None or not same_record(new_bytes, stored):
            result.state_writes[meter_id] = StateWrite(new_bytes, message_index, partition)
            self._remember(meter_id, new_bytes, record)
        else:
            # only the covered offset moved (duplicates, late readings): no write for it
            record.partition, record.offset = covered
            self._remember(meter_id, stored, record)

    # --- coalesced state writes ----------------------------------------------------------------
    def flush_state(self, result: BatchResult) -> int:
        """With :attr:`coalesce_state_writes`: the state writes of every record changed since
        its bytes were last made, added to ``result`` (a meter of ``result``'s batch has the
        index of its last message; another, -1); how many meters were flushed."""
        dirty = self._dirty
        if not dirty:
            return 0
        sources = result.sources
        for meter_id, entry in dirty.items():
            source = sources.get(meter_id)
            self._write_record(
                result,
                meter_id,
                entry.record,
                entry.stored,
                entry.covered,
                -1 if source is None else source.message_index,
            )
        flushed = len(dirty)
        self._dirty = {}
        return flushed

    @property
    def unflushed_meters(self) -> int:
        """Meters whose record changed since its bytes were last made (coalesced)."""
        return len(self._dirty)

    def unflushed_values(self) -> dict[str, bytes]:
        """The bytes each record changed since its last write would be written with now (the
        table holds older ones until the flush): for a scan of the meters held."""
        return {
            meter_id: entry.record.to_bytes(entry.record.partition, entry.record.offset)
            for meter_id, entry in self._dirty.items()
        }

    # --- meters' home partitions ------------------------------------------------------------
    def home_partition(self, key: bytes | None) -> int:
        """The partition a meter's readings, state and forecasts live on
        (:func:`~streamer.contract.placement.home_partition`), remembered per key."""
        assert key and self._home_partitions is not None  # parse_reading refused empty keys
        home = self._homes.get(key)
        if home is None:
            if len(self._homes) >= _HOMES_KEPT:
                self._homes.clear()
            home = self._homes[key] = home_partition(key, self._home_partitions)
        return home

    # --- messages never delivered before --------------------------------------------------------
    def note_unread(self, partition: int, start: int, end: int) -> None:
        """Offsets ``start`` to ``end`` (exclusive) of a readings partition were never delivered
        (faust lost them, and they are read again): they are not replays, even below the offset
        a meter's record covers, and are applied as any late reading."""
        if end > start:
            self._unread[partition] = (start, end)

    def _unread_at(self, partition: int, offset: int) -> bool:
        span = self._unread.get(partition)
        return span is not None and span[0] <= offset < span[1]

    # --- decoded-record cache ------------------------------------------------------------------
    def _remember(self, meter_id: str, stored: bytes, record: MeterRecord) -> None:
        if self._cache_meters <= 0:
            return
        cache = self._cache
        cache.pop(meter_id, None)  # re-inserted last: dict order is recency
        cache[meter_id] = (stored, record)
        if len(cache) > self._cache_meters:
            del cache[next(iter(cache))]

    def _recall(self, meter_id: str, stored: bytes) -> MeterRecord | None:
        entry = self._cache.get(meter_id)
        if entry is not None and entry[0] is stored:
            return entry[1]
        return None

    def prune_cache(self, load_state: Callable[[str], bytes | None]) -> int:
        """Drop cached records whose stored value was replaced or removed; how many were."""
        stale = [m for m, (stored, _) in self._cache.items() if load_state(m) is not stored]
        for meter_id in stale:
            del self._cache[meter_id]
        return len(stale)

    @property
    def cached_meters(self) -> int:
        return len(self._cache)

    # --- per meter -----------------------------------------------------------------------------
    def _apply_meter(
        self,
        meter_id: str,
        readings: list[tuple[int, Reading]],
        messages: Sequence[InMessage],
        load_state: Callable[[str], bytes | None],
        now_ms: int,
        result: BatchResult,
        held: dict[str, _Held],
    ) -> bool:
        """Apply one meter's readings; whether the meter is due a forecast (its head advanced
        to a new cadence tick; its history is checked with the batch's other candidates)."""
        config = self.config
        record: MeterRecord
        cached: MeterRecord | None
        unflushed = self._dirty.get(meter_id) if self._dirty else None
        if unflushed is not None:  # changed since its last write: newer than what is stored
            stored = unflushed.stored
            cached = unflushed.record
        else:
            stored = load_state(meter_id)
            cached = None if stored is None else self._recall(meter_id, stored)
        if cached is not None:
            record = cached
        elif stored is None:
            record = MeterRecord.new(config.record)
        else:
            try:
                record = MeterRecord.from_bytes(stored, config.record)
            except StateDecodeError as exc:
                log.warning("state of meter %r unreadable (%s); starting it afresh", meter_id, exc)
                result.state_decode_errors += 1
                record = MeterRecord.new(config.record)
        state = record.state
        head_before = state.head_slot
        run_before = state.flatline_run_slots(cap=config.flatline_slots)
        res_ms = config.resolution_seconds * 1000
        shadow_ledger = self._shadow_ledgers.get(meter_id)
        counts: dict[str, int] = {}  # outcomes, added to the result once the meter succeeded
        late: list[tuple[InMessage, DlqReason, str]] = []

        # the newest message the stored record covers: messages of its partition up to it are
        # replays (a crash, a rebalance), for slots not past the head (a topic made afresh
        # starts its offsets again: its new slots still apply)
        covered_partition = record.partition
        covered_offset = record.offset
        for index, reading in readings:
            message = messages[index]
            if (
                message.offset <= covered_offset
                and message.partition == covered_partition
                and head_before is not None
                and -(-reading.ts_ms // res_ms) <= head_before
                and not self._unread_at(message.partition, message.offset)
            ):
                value = OUTCOME_VALUES[DUPLICATE]
                counts[value] = counts.get(value, 0) + 1
                continue
            arrival_ms = message.timestamp_ms if message.timestamp_ms is not None else now_ms
            if reading.kwh is not None:
                outcome = state.update(reading.ts_ms, reading.kwh, arrival_ms)
                slot = -(-reading.ts_ms // res_ms)
                if self.collect_actuals and (outcome is APPLIED or outcome is CORRECTED):
                    result.actuals.append((meter_id, slot, reading.kwh))
                if outcome is APPLIED:
                    matches, drift = score_actual(
                        record,
                        meter_id,
                        slot,
                        reading.kwh,
                        res_ms=res_ms,
                        now_ms=now_ms,
                        prior=self.calibration_prior,
                    )
                    result.matches.extend(matches)
                    if shadow_ledger is not None:
                        result.shadow_matches.extend(match_shadow(shadow_ledger, slot, reading.kwh))
                    if drift is not None:
                        result.concept_drifts.append(drift)
            else:
                assert reading.register_kwh is not None
                outcome, event = state.update_register(
                    reading.ts_ms, reading.register_kwh, arrival_ms
                )
                if self.collect_actuals and (outcome is APPLIED or outcome is CORRECTED):
                    _register_actual(result, meter_id, state, -(-reading.ts_ms // res_ms))
                if event is not None:
                    status = (
                        MeterStatus.REGISTER_ROLLOVER
                        if event.kind == "rollover"
                        else MeterStatus.REGISTER_RESET
                    )
                    result.status_events.append(
                        StatusEvent(meter_id, status, now_ms, reading.ts_ms, event.detail)
                    )
            reason = _DLQ_OUTCOMES.get(outcome)
            if reason is not None:
                late.append((message, reason, _late_detail(outcome, reading, state)))
            else:
                value = OUTCOME_VALUES[outcome]
                counts[value] = counts.get(value, 0) + 1
        held[meter_id] = _Held(record, stored, readings[-1][0], readings[-1][1].time_zone)

        run_after = state.flatline_run_slots(cap=config.flatline_slots)
        if run_before < config.flatline_slots <= run_after:
            result.status_events.append(
                StatusEvent(
                    meter_id,
                    MeterStatus.FLATLINE,
                    now_ms,
                    state.head_end_ms,
                    f"same value for {run_after} slots",
                )
            )

        head_after = state.head_slot
        due = head_after is not None and head_after != head_before
        if head_after is not None and due:
            every = config.forecast_every_slots
            previous_tick = -1 if head_before is None else head_before // every
            if head_after // every <= previous_tick:
                result.skipped["cadence"] += 1
                due = False
        # nothing can fail any more: the meter's outcomes count
        for message, reason, detail in late:
            self._dead_letter(result, message, reason, detail, now_ms)
        outcomes = result.outcomes
        for outcome_name, count in counts.items():
            outcomes[outcome_name] += count
        return due

    # --- forecasting ---------------------------------------------------------------------------
    def _prepare_forecasts(
        self, held: dict[str, _Held], result: BatchResult, candidates: list[str], meters_end: int
    ) -> _ForecastChunk | None:
        """Stack the candidates' stored windows as one ``(B, L)`` array, for their chunk's
        :class:`Inference` to impute and call each model on once; None when none has enough
        history."""
        config = self.config
        stored = stack_stored([held[meter_id].record.state for meter_id in candidates])
        fraction = stored.observed_fraction
        enough = fraction >= config.min_observed_fraction
        if not enough.all():
            result.skipped["insufficient_history"] += int(np.count_nonzero(~enough))
            rows = np.flatnonzero(enough)
            if rows.size == 0:
                return None
            candidates = [candidates[i] for i in rows.tolist()]
            stored = stored.take(rows)
            fraction = fraction[rows]
        zones = _row_zones([held[meter_id].time_zone for meter_id in candidates], config.time_zone)
        inference = Inference(
            self.models.live,
            self.fallback,
            self.models.shadow,
            stored,
            config.window,
            config.resolution_seconds,
            zones,
        )
        inference.prepare()
        return _ForecastChunk(candidates, fraction, inference, meters_end)

    def _issue_forecasts(
        self, chunk: _ForecastChunk, held: dict[str, _Held], result: BatchResult, now_ms: int
    ) -> None:
        """The chunk's forecast records from the models' outputs, each kept in its meter's
        ledger (the live model's and the fallback's) or the shadow ledgers."""
        config = self.config
        candidates, inference = chunk.candidates, chunk.inference
        batch = inference.batch
        if batch is None:
            raise RuntimeError("finish() before the batch's inference ran")
        for name, seconds in inference.seconds.items():
            result.inference_seconds[name] = result.inference_seconds.get(name, 0.0) + seconds
        live, fallback_batch = inference.live, inference.fallback_batch
        fallback_rows = inference.fallback_rows
        fallback_valid = [] if fallback_batch is None else fallback_batch.valid.tolist()
        issue = _Issuer(config, live, now_ms, inference.end_ms.tolist(), chunk.fractions.tolist())
        shadow, shadow_batch = inference.shadow, inference.shadow_batch
        if shadow is not None and shadow_batch is not None:
            rows_of = issue.rows_of(shadow, shadow_batch)
            for i in np.flatnonzero(shadow_batch.valid).tolist():
                meter_id = candidates[i]
                ledger = self._shadow_ledgers.get(meter_id)
                if ledger is None:
                    ledger = self._shadow_ledgers[meter_id] = ForecastLedger(config.record.ledger)
                result.shadow_forecasts.append(rows_of(i, meter_id, i, ledger))
            rows_of.keep()

        published = fallback_published = None
        if config.record.calibration.enabled:
            calibrators = [held[meter_id].record.calibration for meter_id in candidates]
            low, high = batch_multipliers(calibrators, self.calibration_prior, config.horizon_slots)
            published = _calibrated(batch, low, high)
            if fallback_batch is not None:
                fallback_published = _calibrated(
                    fallback_batch, low[fallback_rows], high[fallback_rows]
                )
        live_rows = issue.rows_of(live, batch, published)
        fallback_rows_of = (
            None
            if fallback_batch is None
            else issue.rows_of(inference.fallback, fallback_batch, fallback_published)
        )
        forecasts = result.forecasts
        position = 0  # of the next invalid row among fallback_rows
        for i, valid in enumerate(batch.valid.tolist()):
            meter_id = candidates[i]
            if valid:
                forecasts.append(live_rows(i, meter_id, i, held[meter_id].record.ledger))
                continue
            pos, position = position, position + 1
            if fallback_rows_of is not None and fallback_valid[pos]:
                record = held[meter_id].record
                # Drift is watched on the live model's residuals only: a meter served by the
                # fallback starts its detector afresh when the model takes it over.
                record.detector.reset()
                forecasts.append(fallback_rows_of(i, meter_id, pos, record.ledger))
            else:
                result.skipped["no_valid_forecast"] += 1
        live_rows.keep()
        if fallback_rows_of is not None:
            fallback_rows_of.keep()

    # --- dead letters --------------------------------------------------------------------------
    def _dead_letter(
        self,
        result: BatchResult,
        message: InMessage,
        reason: DlqReason,
        detail: str,
        now_ms: int,
    ) -> None:
        result.dead_letters.append(
            DeadLetter(
                reason=reason,
                detail=detail,
                source=SourcePosition(
                    message.topic, message.partition, message.offset, message.timestamp_ms
                ),
                key=message.key,
                value=message.value,
                dead_lettered_ms=now_ms,
            )
        )
        result.outcomes["dead_lettered"] += 1
        result.dlq_reasons[reason.value] += 1


def _calibrated(batch: ForecastBatch, low: np.ndarray, high: np.ndarray) -> np.ndarray | None:
    """The batch's quantiles with each row's band calibrated (None: no median to scale from)."""
    levels = batch.quantile_levels
    median = level_column(levels, 0.5)
    if median is None or batch.quantiles_kwh.shape[1] != low.shape[1]:
        return None
    return calibrate_quantiles(batch.quantiles_kwh, levels, median, low, high)


def _late_detail(outcome: Outcome, reading: Reading, state: MeterState) -> str:
    if outcome is Outcome.TOO_LATE:
        return (
            f"slot ending {reading.ts_ms} ms is older than the allowed lateness behind the "
            f"meter's newest slot (ending {state.head_end_ms} ms); see "
            "STREAMER_ALLOWED_LATENESS_SLOTS"
        )
    return "register reading older than the meter's last register reading"


def _row_zones(named: list[str | None], fleet_zone: str) -> str | npt.NDArray[np.str_]:
    """The fleet's zone for the whole batch (the usual case), or one zone per row where some
    readings named their own."""
    if all(zone is None for zone in named):
        return fleet_zone
    return np.array([fleet_zone if zone is None else zone for zone in named])


def _register_actual(result: BatchResult, meter_id: str, state: MeterState, slot: int) -> None:
    """A register meter's interval energy of ``slot`` (the difference of its readings), for
    its groups' totals."""
    head = state.head_slot
    if head is None or slot > head:
        return
    values, _ = state.stored_window()
    index = values.shape[0] - 1 - (head - slot)
    if index >= 0 and np.isfinite(values[index]):
        result.actuals.append((meter_id, slot, float(values[index])))

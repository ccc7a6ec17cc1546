"""One micro-batch: parse, apply to per-meter state, decide and make forecasts.

Every message ends in exactly one outcome: ``applied``, ``corrected``, ``duplicate`` or
``dead_lettered`` (with a reason). :class:`BatchResult` carries the counts so that the caller's
counters add up to the messages consumed.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from streamer.accuracy.forecast_ledger import ForecastLedger, quantile_columns
from streamer.accuracy.match import Match
from streamer.contract.dead_letter import DeadLetter, SourcePosition
from streamer.contract.errors import InvalidReading
from streamer.contract.forecast_record import ForecastRecord
from streamer.contract.reading import Reading, ReadingLimits, parse_reading
from streamer.contract.reasons import DlqReason
from streamer.contract.status_record import MeterStatus, StatusEvent
from streamer.forecast.batch import ForecastBatch
from streamer.forecast.protocol import Forecaster
from streamer.pipeline.config import PipelineConfig
from streamer.pipeline.messages import InMessage
from streamer.pipeline.meter_record import MeterRecord
from streamer.pipeline.scoring import ConceptDrift, match_shadow, score_actual
from streamer.state.errors import StateDecodeError
from streamer.state.meter_state import MeterState, WindowView
from streamer.state.outcome import Outcome

log = logging.getLogger(__name__)

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


@dataclass(frozen=True, slots=True)
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


@dataclass(slots=True)
class BatchResult:
    state_writes: dict[str, StateWrite] = field(default_factory=dict)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    forecasts: list[ForecastRecord] = field(default_factory=list)
    shadow_forecasts: list[ForecastRecord] = field(default_factory=list)
    # actuals matched with the forecasts issued for them (live, and the shadow model's)
    matches: list[Match] = field(default_factory=list)
    shadow_matches: list[Match] = field(default_factory=list)
    concept_drifts: list[ConceptDrift] = field(default_factory=list)
    status_events: list[StatusEvent] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)
    dlq_reasons: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    inference_seconds: dict[str, float] = field(default_factory=dict)
    state_decode_errors: int = 0

    @property
    def accounted(self) -> int:
        return sum(self.outcomes.values())


@dataclass(frozen=True, slots=True)
class _Mark:
    """What a batch result held before one meter was applied, to undo a failed meter."""

    outcomes: dict[str, int]
    dlq_reasons: dict[str, int]
    dead_letters: int
    status_events: int
    matches: int
    shadow_matches: int
    concept_drifts: int

    @classmethod
    def of(cls, result: BatchResult) -> _Mark:
        return cls(
            dict(result.outcomes),  # plain dict copies: taken per meter, restored rarely
            dict(result.dlq_reasons),
            len(result.dead_letters),
            len(result.status_events),
            len(result.matches),
            len(result.shadow_matches),
            len(result.concept_drifts),
        )

    def restore(self, result: BatchResult) -> None:
        result.outcomes = Counter(self.outcomes)
        result.dlq_reasons = Counter(self.dlq_reasons)
        del result.dead_letters[self.dead_letters :]
        del result.status_events[self.status_events :]
        del result.matches[self.matches :]
        del result.shadow_matches[self.shadow_matches :]
        del result.concept_drifts[self.concept_drifts :]


@dataclass(slots=True)
class _Candidate:
    meter_id: str
    view: WindowView


@dataclass(slots=True)
class _Held:
    """A meter's record while the batch is processed, and what it was when loaded."""

    record: MeterRecord
    stored: bytes | None
    last_index: int


class BatchProcessor:
    """Turns a batch of readings-topic messages into everything the agent must publish."""

    def __init__(
        self,
        config: PipelineConfig,
        models: LiveModels,
        fallback: Forecaster,
        *,
        cache_meters: int = 0,
    ) -> None:
        self.config = config
        # Decoded records of recent meters, with the exact bytes object they were decoded from
        # or written as. A hit needs the store to hand back that very object, so anything that
        # replaced the stored value (changelog recovery, a rebalance, expiry) is a miss.
        self._cache: dict[str, tuple[bytes, MeterRecord]] = {}
        self._cache_meters = cache_meters
        # read at every batch: a rollout swaps the models between two batches
        self.models = models
        self.fallback = fallback
        # the shadow model's forecasts awaiting their actuals: in memory only, per meter
        self._shadow_ledgers: dict[str, ForecastLedger] = {}
        self._shadow_model: Forecaster | None = None
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
            by_meter.setdefault(reading.meter_id, []).append((index, reading))

        shadow = self.models.shadow
        if shadow is not self._shadow_model:
            self._shadow_ledgers.clear()
            self._shadow_model = shadow
        candidates: list[_Candidate] = []
        held: dict[str, _Held] = {}
        for meter_id, readings in by_meter.items():
            mark = _Mark.of(result)
            try:
                candidate = self._apply_meter(
                    meter_id, readings, messages, load_state, now_ms, result, held
                )
            except Exception as exc:  # never let one meter's data stop the stream
                log.exception("processing meter %r failed; its readings go to the DLQ", meter_id)
                mark.restore(result)
                held.pop(meter_id, None)
                self._cache.pop(meter_id, None)  # it may be half-applied
                for index, _ in readings:
                    self._dead_letter(
                        result,
                        messages[index],
                        DlqReason.PROCESSING_ERROR,
                        f"{type(exc).__name__}: {exc}",
                        now_ms,
                    )
                continue
            if candidate is not None:
                candidates.append(candidate)

        if candidates:
            self._forecast(candidates, now_ms, result, held)
        for meter_id, meter in held.items():
            partition = messages[meter.last_index].partition
            new_bytes = meter.record.to_bytes(partition)
            if new_bytes != meter.stored:
                result.state_writes[meter_id] = StateWrite(new_bytes, meter.last_index, partition)
                self._remember(meter_id, new_bytes, meter.record)
            elif meter.stored is not None:
                self._remember(meter_id, meter.stored, meter.record)
        return result

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
    ) -> _Candidate | None:
        config = self.config
        stored = load_state(meter_id)
        record: MeterRecord
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

        for index, reading in readings:
            message = messages[index]
            arrival_ms = message.timestamp_ms if message.timestamp_ms is not None else now_ms
            if reading.kwh is not None:
                outcome = state.update(reading.ts_ms, reading.kwh, arrival_ms)
                if outcome is Outcome.APPLIED:
                    slot = -(-reading.ts_ms // res_ms)
                    matches, drift = score_actual(
                        record, meter_id, slot, reading.kwh, res_ms=res_ms, now_ms=now_ms
                    )
                    result.matches.extend(matches)
                    result.shadow_matches.extend(match_shadow(shadow_ledger, slot, reading.kwh))
                    if drift is not None:
                        result.concept_drifts.append(drift)
            else:
                assert reading.register_kwh is not None
                outcome, event = state.update_register(
                    reading.ts_ms, reading.register_kwh, arrival_ms
                )
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
                self._dead_letter(
                    result, message, reason, _late_detail(outcome, reading, state), now_ms
                )
            else:
                result.outcomes[outcome.value] += 1
        held[meter_id] = _Held(record, stored, readings[-1][0])

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
        if head_after is None or head_after == head_before:
            return None
        every = config.forecast_every_slots
        previous_tick = -1 if head_before is None else head_before // every
        if head_after // every <= previous_tick:
            result.skipped["cadence"] += 1
            return None
        view = state.get()
        if view.observed_fraction < config.min_observed_fraction:
            result.skipped["insufficient_history"] += 1
            return None
        return _Candidate(meter_id, view)

    # --- forecasting ---------------------------------------------------------------------------
    def _forecast(
        self,
        candidates: list[_Candidate],
        now_ms: int,
        result: BatchResult,
        held: dict[str, _Held],
    ) -> None:
        config = self.config
        live = self.models.live
        history = np.stack([c.view.values_kwh for c in candidates]).astype(np.float64)
        end_ms = np.array([c.view.end_ms for c in candidates], dtype=np.int64)
        started = time.perf_counter()
        batch = live.forecast(history, end_ms, config.resolution_seconds)
        result.inference_seconds[live.name] = time.perf_counter() - started
        rows: list[tuple[int, Forecaster, int]] = []  # candidate index, model, row in its batch
        fallback_rows = np.flatnonzero(~batch.valid)
        fallback_batch = None
        if fallback_rows.size:
            started = time.perf_counter()
            fallback_batch = self.fallback.forecast(
                history[fallback_rows], end_ms[fallback_rows], config.resolution_seconds
            )
            result.inference_seconds[self.fallback.name] = time.perf_counter() - started
        fallback_pos = {int(row): pos for pos, row in enumerate(fallback_rows)}
        for i in range(len(candidates)):
            if batch.valid[i]:
                rows.append((i, live, i))
            elif fallback_batch is not None and fallback_batch.valid[fallback_pos[i]]:
                rows.append((i, self.fallback, fallback_pos[i]))
            else:
                result.skipped["no_valid_forecast"] += 1

        res_ms = config.resolution_seconds * 1000
        steps = np.arange(1, config.horizon_slots + 1, dtype=np.int64) * res_ms
        columns: dict[tuple[float, ...], list[int]] = {}  # p10/p50/p90 columns, once per model

        def issue(
            candidate: _Candidate,
            model: Forecaster,
            source: ForecastBatch,
            row: int,
            ledger: ForecastLedger,
        ) -> ForecastRecord:
            """Keep the forecast in ``ledger`` (to score it later) and make its record."""
            levels = tuple(source.quantile_levels)
            if levels not in columns:
                columns[levels] = quantile_columns(levels)
            ledger.record(
                candidate.view.end_ms // res_ms,
                source.point_kwh[row],
                source.quantiles_kwh[row][:, columns[levels]],
            )
            return ForecastRecord(
                meter_id=candidate.meter_id,
                issued_ms=now_ms,
                origin_ms=candidate.view.end_ms,
                model_name=model.name,
                model_version=model.version,
                fallback=model is not live,
                resolution_seconds=config.resolution_seconds,
                observed_fraction=candidate.view.observed_fraction,
                horizon_end_ms=candidate.view.end_ms + steps,
                point_kwh=source.point_kwh[row],
                quantiles_kwh=source.quantiles_kwh[row],
                quantile_levels=source.quantile_levels,
            )

        shadow = self.models.shadow
        if shadow is not None:
            started = time.perf_counter()
            shadow_batch = shadow.forecast(history, end_ms, config.resolution_seconds)
            result.inference_seconds[f"{shadow.name}:shadow"] = time.perf_counter() - started
            for i in np.flatnonzero(shadow_batch.valid).tolist():
                candidate = candidates[i]
                ledger = self._shadow_ledgers.get(candidate.meter_id)
                if ledger is None:
                    ledger = self._shadow_ledgers[candidate.meter_id] = ForecastLedger(
                        config.record.ledger
                    )
                result.shadow_forecasts.append(issue(candidate, shadow, shadow_batch, i, ledger))
        for i, model, row in rows:
            source = batch if model is live else fallback_batch
            assert source is not None
            candidate = candidates[i]
            record = held[candidate.meter_id].record
            if model is not live:
                # Drift is watched on the live model's residuals only: a meter served by the
                # fallback starts its detector afresh when the model takes it over.
                record.detector.reset()
            result.forecasts.append(issue(candidate, model, source, row, record.ledger))

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


def _late_detail(outcome: Outcome, reading: Reading, state: MeterState) -> str:
    if outcome is Outcome.TOO_LATE:
        return (
            f"slot ending {reading.ts_ms} ms is older than the allowed lateness behind the "
            f"meter's newest slot (ending {state.head_end_ms} ms); see "
            "STREAMER_ALLOWED_LATENESS_SLOTS"
        )
    return "register reading older than the meter's last register reading"

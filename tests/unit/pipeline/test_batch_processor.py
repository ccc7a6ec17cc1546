"""The batch processor without Kafka: outcomes add up, one write per meter, forecasts on cadence."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import orjson
import pytest

from streamer.app import build_core
from streamer.contract.placement import home_partition
from streamer.contract.reasons import DlqReason
from streamer.forecast.registry import make_forecaster
from streamer.modelrepo.layout import latest_version
from streamer.pipeline.batch_processor import BatchProcessor, FixedModels
from streamer.pipeline.config import PipelineConfig
from streamer.pipeline.messages import InMessage
from streamer.pipeline.meter_record import MeterRecord
from streamer.settings import Settings
from streamer.state.meter_state import MeterState
from tests.support.settings import make_settings

REPO = Path(__file__).resolve().parents[3]
RES_MS = 1_800_000
T0 = 1_795_392_000_000  # a slot boundary (2026-11-23T00:00:00Z)
NOW = T0 + 10 * 86_400_000


def settings(**overrides: object) -> Settings:
    return make_settings(**{"min_observed_fraction": 0.1, "lookback_slots": 336, **overrides})


def processor(s: Settings) -> BatchProcessor:
    """The processor a worker builds (the LSTM from models/, seasonal naive as fallback)."""
    return build_core(s).processor


_OFFSETS = itertools.count()


def msg(
    meter: str, slot: int, kwh: object, offset: int | None = None, **extra: object
) -> InMessage:
    """A reading message; offsets increase from one message to the next, as in a partition."""
    body = {"meter_id": meter, "ts": T0 + slot * RES_MS, "kwh": kwh, **extra}
    at = next(_OFFSETS) if offset is None else offset
    key = meter.encode()
    return InMessage(key, orjson.dumps(body), "meter-readings", home(key), at, NOW)


def home(key: bytes) -> int:
    """The meter's home partition among the default 4 (where the worker applies it)."""
    return home_partition(key, 4)


class Store(dict[str, bytes]):
    def load(self, meter_id: str) -> bytes | None:
        return self.get(meter_id)


def run(p: BatchProcessor, store: Store, messages: list[InMessage]):  # type: ignore[no-untyped-def]
    result = p.process(messages, store.load, NOW)
    for meter_id, write in result.state_writes.items():
        store[meter_id] = write.value
    return result


def daily(slot: int) -> float:
    return round(0.2 + 0.1 * ((slot % 48) / 48), 3)


def test_every_message_has_one_outcome_and_one_write_per_meter() -> None:
    p, store = processor(settings()), Store()
    messages = [
        msg(m, s, daily(s), offset=i)
        for i, (m, s) in enumerate((m, s) for s in range(60) for m in ("a", "b", "c"))
    ]
    messages.append(msg("a", 55, daily(55)))  # duplicate, same value
    messages.append(msg("b", 55, 9.0))  # correction
    messages.append(InMessage(b"x", b"{nope", "meter-readings", 0, 999, NOW))
    result = run(p, store, messages)
    assert result.accounted == len(messages)
    assert result.outcomes == {"applied": 180, "duplicate": 1, "corrected": 1, "dead_lettered": 1}
    assert result.dlq_reasons == {"invalid_json": 1}
    assert set(result.state_writes) == {"a", "b", "c"}
    # the write is attributed to each meter's last message in the batch
    assert result.state_writes["b"].message_index == len(messages) - 2


def test_forecast_per_meter_whose_head_advanced() -> None:
    s = settings()
    p, store = processor(s), Store()
    run(
        p,
        store,
        [msg("a", i, daily(i)) for i in range(100)] + [msg("b", i, 1.0) for i in range(100)],
    )
    result = run(p, store, [msg("a", 100, daily(100))])
    assert [f.meter_id for f in result.forecasts] == ["a"]
    forecast = result.forecasts[0]
    assert forecast.origin_ms == T0 + 100 * RES_MS
    assert list(forecast.horizon_end_ms[:2]) == [T0 + 101 * RES_MS, T0 + 102 * RES_MS]
    assert forecast.point_kwh.shape == (s.horizon_slots,)
    # a late reading that does not advance the head makes no forecast
    assert run(p, store, [msg("a", 99, 0.5)]).forecasts == []


def test_cadence_every_k_slots() -> None:
    p, store = processor(settings(forecast_every_slots=4)), Store()
    run(p, store, [msg("a", i, daily(i)) for i in range(100)])
    issued = [bool(run(p, store, [msg("a", 100 + i, 0.3)]).forecasts) for i in range(8)]
    assert issued.count(True) == 2


def test_insufficient_history_is_skipped_and_counted() -> None:
    p, store = processor(settings(min_observed_fraction=0.5)), Store()
    result = run(p, store, [msg("a", i, 0.3) for i in range(10)])
    assert result.forecasts == []
    assert result.skipped["insufficient_history"] == 1


def test_too_late_goes_to_dlq() -> None:
    p, store = processor(settings(allowed_lateness_slots=4)), Store()
    run(p, store, [msg("a", i, 0.3) for i in range(50)])
    result = run(p, store, [msg("a", 20, 0.4, offset=1_000_000)])
    assert result.dlq_reasons == {DlqReason.TOO_LATE.value: 1}
    assert result.dead_letters[0].source.offset == 1_000_000
    assert result.state_writes == {}


def test_replaying_a_batch_changes_nothing() -> None:
    p, store = processor(settings()), Store()
    batch = [msg("a", i, daily(i)) for i in range(80)]
    run(p, store, batch)
    before = dict(store)
    again = run(p, store, batch)
    assert again.outcomes == {"duplicate": 80}
    assert again.state_writes == {}
    assert store == before


def test_state_round_trips_through_the_store() -> None:
    s = settings()
    p, store = processor(s), Store()
    run(p, store, [msg("a", i, daily(i)) for i in range(30)])
    state = MeterRecord.from_bytes(store["a"], PipelineConfig.from_settings(s).record).state
    assert state.head_end_ms == T0 + 29 * RES_MS


def explode_at(monkeypatch: pytest.MonkeyPatch, kwh_value: float) -> None:
    """MeterState.update raises for a reading of ``kwh_value`` (a bug in the middle of a meter)."""
    original = MeterState.update

    def explode(self: MeterState, ts_ms: int, kwh: float, arrival_ms: int):  # type: ignore[no-untyped-def]
        if kwh == kwh_value:
            raise RuntimeError("boom")
        return original(self, ts_ms, kwh, arrival_ms)

    monkeypatch.setattr(MeterState, "update", explode)


def test_a_failing_meter_goes_to_dlq_without_stopping_the_batch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    p, store = processor(settings()), Store()
    explode_at(monkeypatch, 0.999)
    result = run(p, store, [msg("a", 1, 0.5), msg("a", 2, 0.999), msg("b", 1, 0.5)])
    assert result.dlq_reasons == {"processing_error": 2}
    assert result.outcomes == {"dead_lettered": 2, "applied": 1}
    assert set(result.state_writes) == {"b"}


def test_flatline_is_reported_once() -> None:
    p, store = processor(settings(flatline_slots=6)), Store()
    events = []
    for i in range(12):
        events += run(p, store, [msg("a", i, 0.25)]).status_events
    assert [e.status.value for e in events] == ["flatline"]


def test_lstm_serves_meters_with_history_and_the_baseline_the_rest() -> None:
    p, store = processor(settings()), Store()
    run(p, store, [msg("long", i, daily(i)) for i in range(120)])
    run(p, store, [msg("short", i, daily(i)) for i in range(50)])
    result = run(p, store, [msg("long", 120, daily(120)), msg("short", 50, daily(50))])
    by_meter = {f.meter_id: f for f in result.forecasts}
    assert (by_meter["long"].model_name, by_meter["long"].fallback) == ("lstm", False)
    assert by_meter["long"].model_version == str(latest_version(REPO / "models", "lstm"))
    assert by_meter["short"].fallback is True
    assert by_meter["short"].model_name == "seasonal_naive_day"
    assert np.isfinite(by_meter["long"].point_kwh).all()


def test_shadow_forecasts_are_kept_apart_and_scored() -> None:
    s = settings()
    runtime = build_core(s)
    shadow = make_forecaster("seasonal_naive_day", horizon_slots=48, resolution_seconds=1800)
    p = BatchProcessor(
        PipelineConfig.from_settings(s), FixedModels(runtime.router.live, shadow), runtime.fallback
    )
    store = Store()
    run(p, store, [msg("a", i, daily(i)) for i in range(120)])
    result = run(p, store, [msg("a", 120, daily(120))])
    assert [f.model_name for f in result.forecasts] == ["lstm"]
    assert [f.model_name for f in result.shadow_forecasts] == ["seasonal_naive_day"]
    scored = run(p, store, [msg("a", 121, daily(121))])
    assert [m.horizon_slots for m in scored.matches] == [1]
    assert [m.horizon_slots for m in scored.shadow_matches] == [1]
    assert scored.shadow_matches[0].p50 != scored.matches[0].p50


def _processor_with_cache(s: Settings, cache_meters: int) -> BatchProcessor:
    runtime = build_core(s)
    return BatchProcessor(
        PipelineConfig.from_settings(s),
        FixedModels(runtime.router.live),
        runtime.fallback,
        cache_meters=cache_meters,
    )


def test_the_decoded_record_cache_changes_no_output() -> None:
    """Same batches with and without the cache (and with one too small to hold every meter):
    byte-equal state writes and the same forecasts and matches."""
    s = settings()
    meters = [f"m{i}" for i in range(5)]
    batches = [[msg(m, slot, daily(slot) + i) for i, m in enumerate(meters)] for slot in range(100)]
    batches.append([msg("m1", 99, 7.0), msg("m2", 40, 1.0)])  # a correction, a late reading
    outputs = []
    for cache in (0, 2, 100):
        p, store = _processor_with_cache(s, cache), Store()
        seen = []
        for batch in batches:
            result = run(p, store, batch)
            seen.append(
                (
                    {m: w.value for m, w in result.state_writes.items()},
                    [(f.meter_id, f.point_kwh.tobytes()) for f in result.forecasts],
                    [(m.horizon_slots, m.point, m.actual) for m in result.matches],
                    dict(result.outcomes),
                )
            )
        outputs.append(seen)
    assert outputs[0] == outputs[1] == outputs[2]


def test_a_replaced_stored_value_is_decoded_not_taken_from_the_cache() -> None:
    """After a rebalance the table holds values restored from the changelog (other objects,
    maybe another worker's newer state): the processor must use them."""
    s = settings()
    p, store = _processor_with_cache(s, 100), Store()
    run(p, store, [msg("a", i, daily(i)) for i in range(50)])
    other, other_store = _processor_with_cache(s, 0), Store()
    run(other, other_store, [msg("a", i, daily(i)) for i in range(60)])  # 10 slots further
    store["a"] = bytes(bytearray(other_store["a"]))  # restored: an equal copy, a new object
    result = run(p, store, [msg("a", 60, daily(60))])
    record = MeterRecord.from_bytes(
        result.state_writes["a"].value, PipelineConfig.from_settings(s).record
    )
    assert record.state.head_slot == other_store_head(other_store) + 1
    assert p.prune_cache(store.load) == 0
    del store["a"]
    assert p.prune_cache(store.load) == 1 and p.cached_meters == 0


def other_store_head(store: Store) -> int:
    record = MeterRecord.from_bytes(store["a"], PipelineConfig.from_settings(settings()).record)
    head = record.state.head_slot
    assert head is not None
    return head


def test_a_replayed_stretch_of_the_topic_never_changes_a_meter() -> None:
    """Messages at or below the offset a record covers (same partition, slots not past the
    head) are replays: duplicates, the record untouched, however the state would take them."""
    p, store = processor(settings(allowed_lateness_slots=8)), Store()
    first = [msg("a", i, daily(i), offset=i) for i in range(60)]
    run(p, store, first)
    before = store["a"]
    # a replay of the last 20, with a changed value that would otherwise be a correction
    replay = [msg("a", i, daily(i) + (0.5 if i == 55 else 0.0), offset=i) for i in range(40, 60)]
    result = run(p, store, replay)
    assert result.outcomes == {"duplicate": 20}
    assert result.state_writes == {}
    assert store["a"] is before
    # a newer message at a new offset still applies; one from another partition is sent on
    # to the meter's home partition (a librdkafka producer's), not taken for a replay
    fresh = msg("a", 61, 0.3, offset=60)
    other = InMessage(b"a", fresh.value, "meter-readings", (home(b"a") + 1) % 4, 5, NOW)
    result = run(p, store, [other, fresh])
    assert result.outcomes == {"applied": 1, "rerouted": 1}
    assert [(r.message, r.partition) for r in result.rerouted] == [(other, home(b"a"))]


def test_messages_never_delivered_before_are_not_replays() -> None:
    """A stretch faust lost and reads again (the commit watchdog notes it) is applied even
    below the offset a record covers."""
    p, store = processor(settings(allowed_lateness_slots=16)), Store()
    run(p, store, [msg("a", i, daily(i), offset=i) for i in range(50)])
    # offsets 50..54 were lost (slots 50..54), 55..59 processed
    run(p, store, [msg("a", i, daily(i), offset=i) for i in range(55, 60)])
    lost = [msg("a", i, daily(i), offset=i) for i in range(50, 55)]
    assert run(p, store, lost).outcomes == {"duplicate": 5}  # taken for a replay
    p.note_unread(home(b"a"), 50, 55)
    assert run(p, store, lost).outcomes == {"applied": 5}


def test_a_reading_away_from_its_meters_home_partition_is_sent_on_not_applied() -> None:
    """librdkafka producers place keys by CRC32: such readings go on to the murmur2 home."""
    p, store = processor(settings()), Store()
    placed = msg("m-7", 1, 0.2)
    away = InMessage(
        placed.key, msg("m-7", 2, 0.3).value, "meter-readings", (home(b"m-7") + 2) % 4, 9, NOW
    )
    bad_away = InMessage(b"m-7", b"{nope", "meter-readings", (home(b"m-7") + 1) % 4, 10, NOW)
    result = run(p, store, [placed, away, bad_away])
    assert result.outcomes == {"applied": 1, "rerouted": 1, "dead_lettered": 1}
    assert result.accounted == 3
    assert [(r.message, r.partition) for r in result.rerouted] == [(away, home(b"m-7"))]
    assert result.state_writes["m-7"].partition == home(b"m-7")
    # only the reading at home is in the window; the one sent on arrives there later
    assert run(p, store, [InMessage(b"m-7", away.value, "meter-readings", home(b"m-7"), 11, NOW)]
               ).outcomes == {"applied": 1}  # fmt: skip


def test_home_partitions_are_java_and_aiokafkas_murmur2() -> None:
    from aiokafka.partitioner import DefaultPartitioner

    partitioner = DefaultPartitioner()
    for i in range(200):
        key = f"m-{i:06d}".encode()
        assert home_partition(key, 4) == partitioner(key, [0, 1, 2, 3], [0, 1, 2, 3])
    assert len({home_partition(f"m-{i}".encode(), 4) for i in range(50)}) == 4  # spread


def test_published_bands_are_calibrated_and_the_ledger_keeps_the_models_own() -> None:
    """After the fleet prior learnt that the model's band is too narrow, a meter's published
    p10/p90 are wider than the model's, its p50 and point unchanged, and the matches are
    scored on both bands."""
    s = settings()
    p, store = processor(s), Store()
    run(p, store, [msg("a", i, daily(i)) for i in range(120)])
    raw = run(p, store, [msg("a", 120, daily(120))]).forecasts[0]
    prior = p.calibration_prior
    prior.log_low = np.log(2.0)  # as if the fleet's actuals kept falling outside
    prior.log_high = np.log(3.0)
    result = run(p, store, [msg("a", 121, daily(121))])
    (forecast,) = result.forecasts
    q10, q50, q90 = (
        forecast.quantiles_kwh[:, 0],
        forecast.quantiles_kwh[:, 1],
        forecast.quantiles_kwh[:, 2],
    )
    assert np.all(q90 > q50) and np.all(q50 > q10)
    record = MeterRecord.from_bytes(store["a"], p.config.record)
    # the ledger holds the model's own band for slot 122 (horizon 1), narrower than published
    (match,) = [m for m in record.ledger.match(T0 // RES_MS + 122, 0.3) if m.horizon_slots == 1]
    assert match.p50 == pytest.approx(q50[0], rel=1e-3)
    # about x3 and x2 wider (the slot's own match moved the multipliers a step since)
    assert (q90[0] - q50[0]) / (match.p90 - match.p50) == pytest.approx(3.0, rel=0.1)
    assert (q50[0] - q10[0]) / (match.p50 - match.p10) == pytest.approx(2.0, rel=0.1)
    assert [m.covered_calibrated is not None for m in result.matches] == [True]
    assert raw.quantiles_kwh.shape == forecast.quantiles_kwh.shape


def test_calibration_step_zero_publishes_the_models_quantiles() -> None:
    s = settings(calibration_step=0.0)
    p, store = processor(s), Store()
    run(p, store, [msg("a", i, daily(i)) for i in range(120)])
    p.calibration_prior.log_high = 1.0  # ignored: calibration is off
    (forecast,) = run(p, store, [msg("a", 120, daily(120))]).forecasts
    record = MeterRecord.from_bytes(store["a"], p.config.record)
    (match,) = [m for m in record.ledger.match(T0 // RES_MS + 121, 0.3) if m.horizon_slots == 1]
    assert match.p90 == pytest.approx(forecast.quantiles_kwh[0, 2], rel=1e-3)


def test_applied_readings_are_collected_for_groups_only_when_asked() -> None:
    p, store = processor(settings()), Store()
    assert run(p, store, [msg("a", 1, 0.5)]).actuals == []
    p.collect_actuals = True
    result = run(p, store, [msg("a", 2, 0.25), msg("a", 2, 0.3), msg("a", 2, 0.3)])
    slot = (T0 + 2 * RES_MS) // RES_MS
    assert result.actuals == [("a", slot, 0.25), ("a", slot, 0.3)]  # applied, corrected
    reg = [
        InMessage(b"r", orjson.dumps(body), "meter-readings", home(b"r"), 100 + i, NOW)
        for i, body in enumerate(
            {"meter_id": "r", "ts": T0 + s * RES_MS, "register_kwh": 100.0 + s} for s in (1, 2, 3)
        )
    ]
    result = run(p, store, reg)
    assert [(m, s - slot) for m, s, _ in result.actuals] == [("r", 0), ("r", 1)]
    assert [round(k, 6) for *_, k in result.actuals] == [1.0, 1.0]  # register differences


def test_chunks_of_meters_give_what_one_pass_gives(monkeypatch: pytest.MonkeyPatch) -> None:
    """Models called a chunk of meters at a time (while the next chunk is applied) make the
    same records, state bytes and outcomes as one call for the whole batch; a meter without
    enough history is skipped in its chunk, as in one pass."""
    from streamer.pipeline import batch_processor

    meters = [f"m{i}" for i in range(23)]

    def readings(slots: range) -> list[InMessage]:
        return [
            msg(m, s, daily(s) * (1 + i / 10), offset=1000 * s + i)
            for s in slots
            for i, m in enumerate(meters)
        ]

    def outputs(chunk_meters: int) -> list[object]:
        monkeypatch.setattr(batch_processor, "CHUNK_METERS", chunk_meters)
        p, store = processor(settings()), Store()
        # the last meter starts late: too little history to forecast
        run(p, store, [m for m in readings(range(100)) if m.key != b"m22" or m.offset >= 97_000])
        seen: list[object] = []
        for slot in range(100, 104):
            result = run(p, store, readings(range(slot, slot + 1)))
            seen.append([f.to_bytes() for f in result.forecasts])
            seen.append({m: w.value for m, w in result.state_writes.items()})
            seen.append((dict(result.outcomes), dict(result.skipped), len(result.matches)))
        return seen

    whole = outputs(10**9)
    assert len(whole[0]) == 22  # type: ignore[arg-type]
    assert whole[2][1] == {"insufficient_history": 1}  # type: ignore[index]
    assert outputs(4) == whole
    assert outputs(1) == whole


def test_chunks_finished_in_turn_while_later_calls_run_are_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The worker's way with many chunks: every chunk's models on a thread pool, each chunk
    finished (``finish_next``) as soon as its call is done, then ``finish``: the same
    forecasts, state writes (in the same order) and outcomes as ``process``."""
    from concurrent.futures import ThreadPoolExecutor

    from streamer.pipeline import batch_processor

    monkeypatch.setattr(batch_processor, "CHUNK_METERS", 4)
    meters = [f"m{i}" for i in range(23)]
    history = [msg(m, s, daily(s) * (1 + i / 10)) for s in range(100) for i, m in enumerate(meters)]
    # the next slot, but m5 and m17 send nothing new (their chunks' other meters still forecast)
    live = [msg(m, 100, daily(100), offset=10**6 + i) for i, m in enumerate(meters)]
    live = [m for m in live if m.key not in (b"m5", b"m17")]

    def prepared() -> tuple[BatchProcessor, Store]:
        p, store = processor(settings()), Store()
        run(p, store, history)
        return p, store

    p1, store1 = prepared()
    expected = run(p1, store1, live)
    p2, store2 = prepared()
    pending = p2.begin(live, store2.load, NOW)
    chunks = p2.apply_chunks(pending)
    first = next(chunks)
    assert first is not None
    first.run()
    with pytest.raises(RuntimeError, match="before every meter of the batch was applied"):
        p2.finish_next(pending)
    with ThreadPoolExecutor(max_workers=2) as pool:
        calls = [pool.submit(inference.run) for inference in chunks if inference is not None]
        p2.finish_next(pending)  # the first chunk, while the others run
        for call in calls:
            call.result()
            p2.finish_next(pending)
    got = p2.finish(pending)
    assert len(pending.chunks) == 6 and len(got.forecasts) == 21
    assert [f.to_bytes() for f in got.forecasts] == [f.to_bytes() for f in expected.forecasts]
    assert [(m, w.value, w.message_index) for m, w in got.state_writes.items()] == [
        (m, w.value, w.message_index) for m, w in expected.state_writes.items()
    ]
    assert got.outcomes == expected.outcomes
    # in the order the meters were applied, whichever chunk was finished when
    assert list(got.state_writes) == [m for m in meters if m not in ("m5", "m17")]


def test_begin_apply_chunks_finish_is_process() -> None:
    """The worker's way (each chunk's models run on another thread) against ``process``."""
    from concurrent.futures import ThreadPoolExecutor

    batch = [msg(m, s, daily(s)) for s in range(100) for m in ("a", "b", "c")]
    p1, store1 = processor(settings()), Store()
    expected = run(p1, store1, batch)
    p2, store2 = processor(settings()), Store()
    pending = p2.begin(batch, store2.load, NOW)
    with ThreadPoolExecutor(max_workers=1) as pool:
        inferences = [inference for inference in p2.apply_chunks(pending) if inference]
        for call in [pool.submit(inference.run) for inference in inferences]:
            call.result()
    got = p2.finish(pending)
    assert [f.to_bytes() for f in got.forecasts] == [f.to_bytes() for f in expected.forecasts]
    assert got.outcomes == expected.outcomes and len(got.forecasts) == 3


def test_a_small_batch_is_cut_into_smaller_chunks() -> None:
    """Full batches keep CHUNK_METERS a chunk; a smaller one gets CHUNKS_PER_BATCH chunks (so
    that the models' call of its last chunk, the batch's tail, is short), never under
    MIN_CHUNK_METERS meters."""
    from streamer.pipeline.batch_processor import (
        CHUNK_METERS,
        CHUNKS_PER_BATCH,
        MIN_CHUNK_METERS,
        chunk_meters,
    )

    assert chunk_meters(2000) == CHUNK_METERS
    assert chunk_meters(CHUNK_METERS * CHUNKS_PER_BATCH) == CHUNK_METERS
    assert chunk_meters(550) == 138  # 4 chunks
    assert chunk_meters(100) == MIN_CHUNK_METERS
    assert chunk_meters(10) == MIN_CHUNK_METERS  # one chunk of all ten

"""streamer replay, without Kafka: which rows go out, in what order, when, and as what."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
import pandas as pd
import pytest

from streamer.contract.reading import ReadingLimits, parse_reading
from streamer.replay.errors import ReplayConfigError
from streamer.replay.runner import ReplayProgress, run_replay
from streamer.replay.schedule import (
    encode_rows,
    parse_time,
    prepare_rows,
    send_schedule,
)

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
SLOT = 1_800_000


def history(rows: list[tuple[str, int, float | None]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "meter_id": [r[0] for r in rows],
            "ts": pd.to_datetime([r[1] for r in rows], unit="ms", utc=True),
            "kwh": [r[2] for r in rows],
        }
    )


# meter by meter, as `streamer simulate --history-out` writes it
FILE = history(
    [
        ("m-2", T0 + SLOT, 0.3),
        ("m-2", T0 + 2 * SLOT, 0.4),
        ("m-2", T0 + 3 * SLOT, None),
        ("m-1", T0 + SLOT, 0.1),
        ("m-1", T0 + 2 * SLOT, -0.2),
        ("m-1", T0 + 3 * SLOT, 0.5),
        ("m-3", T0 + 3 * SLOT, 1.0),
    ]
)


def test_rows_go_in_time_order_then_meter_order_without_empty_kwh() -> None:
    rows = prepare_rows(FILE)
    assert list(zip(rows.meter_ids.tolist(), rows.ts_ms.tolist(), strict=True)) == [
        ("m-1", T0 + SLOT),
        ("m-2", T0 + SLOT),
        ("m-1", T0 + 2 * SLOT),
        ("m-2", T0 + 2 * SLOT),
        ("m-1", T0 + 3 * SLOT),
        ("m-3", T0 + 3 * SLOT),
    ]
    assert rows.kwh.tolist() == [0.1, 0.3, -0.2, 0.4, 0.5, 1.0]
    assert rows.skipped_empty == 1
    assert rows.meters == 3


def test_schedule_spaces_timestamps_by_the_speedup() -> None:
    steps = send_schedule(prepare_rows(FILE), speedup=3600.0)
    assert [(s.at_seconds, s.ts_ms, s.begin, s.end) for s in steps] == [
        (0.0, T0 + SLOT, 0, 2),
        (0.5, T0 + 2 * SLOT, 2, 4),
        (1.0, T0 + 3 * SLOT, 4, 6),
    ]
    real_time = send_schedule(prepare_rows(FILE), speedup=1.0)
    assert [s.at_seconds for s in real_time] == [0.0, 1800.0, 3600.0]


def test_speedup_zero_sends_everything_at_once_in_the_same_order() -> None:
    steps = send_schedule(prepare_rows(FILE), speedup=0.0)
    assert [s.at_seconds for s in steps] == [0.0, 0.0, 0.0]
    assert [s.ts_ms for s in steps] == [T0 + SLOT, T0 + 2 * SLOT, T0 + 3 * SLOT]


def test_gaps_in_the_history_are_waited_for() -> None:
    rows = prepare_rows(history([("a", T0, 1.0), ("a", T0 + 10 * SLOT, 1.0)]))
    assert [s.at_seconds for s in send_schedule(rows, speedup=1800.0)] == [0.0, 10.0]


def test_meters_start_and_end_limit_the_rows() -> None:
    rows = prepare_rows(FILE, meters=2, start_ms=T0 + 2 * SLOT, end_ms=T0 + 3 * SLOT)
    assert sorted(set(rows.meter_ids.tolist())) == ["m-1", "m-2"]
    assert rows.ts_ms.min() == T0 + 2 * SLOT
    assert len(rows) == 3  # m-2's empty slot 3 is skipped
    assert prepare_rows(FILE, end_ms=T0 + SLOT).ts_ms.tolist() == [T0 + SLOT] * 2


def test_meter_type_is_net_for_a_meter_with_a_negative_reading() -> None:
    rows = prepare_rows(FILE)
    net = dict(zip(rows.meter_ids.tolist(), rows.is_net.tolist(), strict=True))
    assert net == {"m-1": True, "m-2": False, "m-3": False}
    assert prepare_rows(FILE, meter_type="net").is_net.all()
    assert not prepare_rows(FILE, meter_type="consumption").is_net.any()


def test_encoded_rows_are_valid_contract_readings_keyed_by_meter() -> None:
    rows = prepare_rows(FILE)
    limits = ReadingLimits(max_message_bytes=2048, max_interval_kwh=500.0, future_tolerance_ms=0)
    messages = encode_rows(rows, 0, len(rows))
    readings = [parse_reading(v, k, limits=limits, now_ms=T0 + 86_400_000) for k, v in messages]
    assert [(r.meter_id, r.ts_ms, r.kwh, r.meter_type) for r in readings] == [
        ("m-1", T0 + SLOT, 0.1, "net"),
        ("m-2", T0 + SLOT, 0.3, "consumption"),
        ("m-1", T0 + 2 * SLOT, -0.2, "net"),
        ("m-2", T0 + 2 * SLOT, 0.4, "consumption"),
        ("m-1", T0 + 3 * SLOT, 0.5, "net"),
        ("m-3", T0 + 3 * SLOT, 1.0, "consumption"),
    ]
    assert orjson.loads(messages[0][1])["ts"] == "2026-01-01T00:30:00Z"


def test_bad_options_are_refused_with_the_fix() -> None:
    with pytest.raises(ReplayConfigError, match="--speedup"):
        send_schedule(prepare_rows(FILE), speedup=-1.0)
    with pytest.raises(ReplayConfigError, match="--meters"):
        prepare_rows(FILE, meters=0)
    with pytest.raises(ReplayConfigError, match="swap"):
        prepare_rows(FILE, start_ms=T0 + SLOT, end_ms=T0)
    with pytest.raises(ReplayConfigError, match="--start 'soon'"):
        parse_time("soon", "--start")


def test_times_without_an_offset_are_utc() -> None:
    assert parse_time("2026-01-01T00:30:00", "--start") == T0 + SLOT
    assert parse_time("2026-01-01T01:30:00+01:00", "--end") == T0 + SLOT


class FakeProducer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes, float]] = []
        self.stopped = False

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        self.stopped = True

    async def send(
        self, topic: str, value: bytes | None = None, key: bytes | None = None
    ) -> asyncio.Future[Any]:
        assert value is not None and key is not None
        self.sent.append((topic, key, value, time.monotonic()))
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future


def test_run_replay_sends_every_row_in_order_on_schedule() -> None:
    rows = prepare_rows(FILE)
    steps = send_schedule(rows, speedup=7200.0)  # 0.25 s per slot
    producer = FakeProducer()
    progress: list[ReplayProgress] = []
    started = time.monotonic()
    summary = asyncio.run(
        run_replay(rows, steps, producer, "t", bootstrap_servers="b", on_progress=progress.append)
    )
    assert [(key, orjson.loads(value)["ts"]) for _t, key, value, _at in producer.sent] == [
        (b"m-1", "2026-01-01T00:30:00Z"),
        (b"m-2", "2026-01-01T00:30:00Z"),
        (b"m-1", "2026-01-01T01:00:00Z"),
        (b"m-2", "2026-01-01T01:00:00Z"),
        (b"m-1", "2026-01-01T01:30:00Z"),
        (b"m-3", "2026-01-01T01:30:00Z"),
    ]
    offsets = [at - started for _t, _k, _v, at in producer.sent]
    assert offsets[2] >= 0.24 and offsets[4] >= 0.49
    assert producer.stopped
    assert summary.sent == 6 and not summary.stopped and summary.last_ts_ms == T0 + 3 * SLOT
    assert progress[-1].sent == 6 and progress[-1].eta_seconds == 0.0
    assert "sent 6/6 (100.0%)" in progress[-1].describe()
    assert "replayed 6 of 6 readings of 3 meters" in summary.describe()


def test_run_replay_batches_due_steps_and_stops_between_batches() -> None:
    rows = prepare_rows(FILE)
    producer = FakeProducer()
    stop = asyncio.Event()
    stop.set()
    summary = asyncio.run(
        run_replay(rows, send_schedule(rows, 0.0), producer, "t", bootstrap_servers="b", stop=stop)
    )
    assert summary.sent == 0 and summary.stopped and producer.stopped
    fast = asyncio.run(
        run_replay(
            rows,
            send_schedule(rows, 0.0),
            FakeProducer(),
            "t",
            bootstrap_servers="b",
            max_batch_messages=4,
        )
    )
    assert fast.sent == 6 and fast.wall_seconds < 1.0


def test_eta_counts_the_schedule_left() -> None:
    progress = ReplayProgress(
        sent=10,
        total=40,
        reached_ts_ms=T0,
        messages_per_second=5.0,
        elapsed_seconds=2.0,
        eta_seconds=150.0,
    )
    assert "ETA 2.5 min" in progress.describe() and "sent 10/40 (25.0%)" in progress.describe()

"""What the fault tests measure: readings kept in the state, forecasts per slot, RSS, figures.

A reading is *accounted for* when its value is in its meter's window as restored from the
state table's changelog (the durable state a restarted or new owner starts from); it is *lost*
otherwise. A forecast is a *duplicate* when its ``forecast_id`` was seen before on the topic.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from streamer.pipeline.config import PipelineConfig
from streamer.pipeline.meter_record import MeterRecord
from streamer.settings import Settings
from streamer.state.flags import SlotFlag
from streamer.tables import STATE_TABLE
from tests.support.fleet import Message
from tests.support.processes import WorkerProcess
from tests.support.topics import Record, last_values, read_topic, wait_caught_up

#: the precision of a settled slot of the stored window (streamer/state/codec.py)
SETTLED_ERROR_KWH = 0.00005
SETTLED_ERROR_SHARE = 0.00061


def expected_slots(sent: Sequence[Message]) -> dict[tuple[str, int], float | None]:
    """``(meter_id, slot end ms) -> kWh`` of every reading the tests produced.

    A register reading's energy is the register's increase since the meter's previous reading
    (the readings are consecutive); its first reading is a baseline (``None``: no energy).
    """
    expected: dict[tuple[str, int], float | None] = {}
    registers: dict[str, list[tuple[int, float]]] = {}
    for _key, body in sent:
        reading = orjson.loads(body)
        meter = str(reading["meter_id"])
        ts = reading["ts"]
        slot_end = ts if isinstance(ts, int) else int(datetime.fromisoformat(ts).timestamp() * 1000)
        if "kwh" in reading:
            expected[(meter, slot_end)] = float(reading["kwh"])
        else:
            registers.setdefault(meter, []).append((slot_end, float(reading["register_kwh"])))
    for meter, series in registers.items():
        series.sort()
        expected[(meter, series[0][0])] = None
        for (_, before), (slot_end, after) in itertools.pairwise(series):
            expected[(meter, slot_end)] = after - before
    return expected


def changelog(settings: Settings) -> str:
    return f"{settings.app_id}-{STATE_TABLE}-changelog"


@dataclass(frozen=True)
class StateCheck:
    sent: int
    accounted: int
    lost: list[tuple[str, int]]


def check_state(
    settings: Settings, sent: Sequence[Message], *, isolation_level: str = "read_uncommitted"
) -> StateCheck:
    """Every sent reading's value in its meter's window, as the changelog restores it (to the
    precision a settled slot is stored with)."""
    rows = asyncio.run(
        last_values(settings.kafka_bootstrap, changelog(settings), isolation_level=isolation_level)
    )
    record_config = PipelineConfig.from_settings(settings).record
    res_ms = settings.resolution_seconds * 1000
    windows: dict[str, tuple[np.ndarray, np.ndarray, int]] = {}
    for key, value in rows.items():
        if value is None:
            continue
        view = MeterRecord.from_bytes(value, record_config).state.get()
        windows[key.decode()] = (view.values_kwh, view.flags, view.end_ms)
    real = {int(SlotFlag.OBSERVED), int(SlotFlag.CORRECTED), int(SlotFlag.REGISTER_SPREAD)}
    lost: list[tuple[str, int]] = []
    for (meter, slot_end), kwh in expected_slots(sent).items():
        window = windows.get(meter)
        if window is None:
            lost.append((meter, slot_end))
            continue
        values, flags, end_ms = window
        index = len(values) - 1 - (end_ms - slot_end) // res_ms
        assert index >= 0, f"{meter} {slot_end}: older than the window; send fewer slots"
        if kwh is None:  # a register baseline: kept if the meter's window reaches it
            continue
        value = float(values[index])
        # a settled slot (older than the allowed lateness) is stored rounded to 0.1 Wh or
        # 0.061% (state.codec); the slot's sum may also differ from the worker's in the last bits
        bound = max(SETTLED_ERROR_KWH, SETTLED_ERROR_SHARE * abs(kwh))
        close = abs(value - kwh) <= bound + 1e-5 * max(1.0, abs(kwh))
        if int(flags[index]) not in real or not close:
            lost.append((meter, slot_end))
    return StateCheck(sent=len(sent), accounted=len(sent) - len(lost), lost=lost)


def origin_of(body: dict[str, object]) -> int:
    """A forecast's origin (the end of the meter's newest slot), epoch ms."""
    return int(datetime.fromisoformat(str(body["origin_ts"])).timestamp() * 1000)


def origin_ms(record: Record) -> int:
    return origin_of(orjson.loads(record.value or b""))


@dataclass(frozen=True)
class ForecastTally:
    records: int
    distinct: int
    duplicates: int
    #: (meter_id, origin ms) -> how many records
    per_slot: Counter[tuple[str, int]]
    #: forecast_id -> copies, for ids seen more than once
    repeated: dict[str, int]
    #: partitions holding a repeated forecast
    repeated_partitions: set[int]

    def missing(self, meters: Iterable[str], origins: Iterable[int]) -> list[tuple[str, int]]:
        return [(m, o) for o in origins for m in meters if self.per_slot[(m, o)] == 0]

    def newest_origin(self, meter: str) -> int:
        return max(o for (m, o) in self.per_slot if m == meter)


def tally_forecasts(records: Sequence[Record]) -> ForecastTally:
    ids: Counter[str] = Counter()
    per_slot: Counter[tuple[str, int]] = Counter()
    partitions_of: dict[str, set[int]] = {}
    for record in records:
        body = orjson.loads(record.value or b"")
        forecast_id = str(body["forecast_id"])
        ids[forecast_id] += 1
        partitions_of.setdefault(forecast_id, set()).add(record.partition)
        per_slot[(str(body["meter_id"]), origin_ms(record))] += 1
    repeated = {fid: n for fid, n in ids.items() if n > 1}
    return ForecastTally(
        records=len(records),
        distinct=len(ids),
        duplicates=len(records) - len(ids),
        per_slot=per_slot,
        repeated=repeated,
        repeated_partitions={p for fid in repeated for p in partitions_of[fid]},
    )


def read_forecasts(
    settings: Settings,
    *,
    until: Callable[[list[Record]], bool] | None = None,
    timeout_seconds: float = 5.0,
    isolation_level: str = "read_uncommitted",
) -> list[Record]:
    """The forecasts topic from the start: until ``until`` holds, or for ``timeout_seconds``."""
    return asyncio.run(
        read_topic(
            settings.kafka_bootstrap,
            settings.forecasts_topic,
            until=until or (lambda _records: False),
            timeout_seconds=timeout_seconds,
            isolation_level=isolation_level,
        )
    )


def wait_for_slot(
    settings: Settings,
    meters: Sequence[str],
    slot_end_ms: int,
    *,
    timeout_seconds: float = 120.0,
    isolation_level: str = "read_uncommitted",
) -> list[Record]:
    """Read forecasts until every meter has one issued at ``slot_end_ms``."""
    wanted = set(meters)

    def done(records: list[Record]) -> bool:
        seen = {r.key.decode() for r in records if r.key and origin_ms(r) == slot_end_ms}
        return seen >= wanted

    records = read_forecasts(
        settings, until=done, timeout_seconds=timeout_seconds, isolation_level=isolation_level
    )
    if not done(records):
        seen = {r.key.decode() for r in records if r.key and origin_ms(r) == slot_end_ms}
        raise AssertionError(
            f"no forecast at {slot_end_ms} for {sorted(wanted - seen)} in {timeout_seconds} s"
        )
    return records


def get_json(url: str, timeout_seconds: float = 5.0) -> tuple[int, dict[str, object]]:
    """Status and JSON body of a GET (status 0 when nothing answers)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_seconds) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")
    except (OSError, ValueError):
        return 0, {}


def readiness(worker: WorkerProcess) -> tuple[int, dict[str, object]]:
    return get_json(worker.base_url + "/ready")


def readings_partitions(worker: WorkerProcess) -> list[int]:
    _status, body = readiness(worker)
    partitions = body.get("readings_partitions", [])
    assert isinstance(partitions, list)
    return [int(p) for p in partitions]


def wait_until(
    condition: Callable[[], bool], *, timeout_seconds: float, what: str, every: float = 0.5
) -> float:
    """Poll ``condition``; the seconds it took, or an AssertionError naming ``what``."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_seconds:
        if condition():
            return time.monotonic() - started
        time.sleep(every)
    raise AssertionError(f"not within {timeout_seconds} s: {what}")


def wait_assignment(workers: Sequence[WorkerProcess], partitions: int, timeout: float) -> float:
    """Until the workers own every readings partition between them, each at least one."""

    def settled() -> bool:
        owned = [readings_partitions(w) for w in workers]
        flat = sorted(p for ps in owned for p in ps)
        return all(owned) and flat == list(range(partitions))

    return wait_until(
        settled, timeout_seconds=timeout, what=f"{len(workers)} workers share {partitions}"
    )


def committed_offsets(settings: Settings, partitions: Iterable[int]) -> dict[int, int | None]:
    """The group's committed offset of each readings partition (None: never committed)."""

    async def read() -> dict[int, int | None]:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap,
            group_id=settings.app_id,
            enable_auto_commit=False,
        )
        await consumer.start()
        try:
            return {
                p: await consumer.committed(TopicPartition(settings.readings_topic, p))
                for p in partitions
            }
        finally:
            await consumer.stop()

    return asyncio.run(read())


def consumed(worker: WorkerProcess) -> float:
    return worker.metrics().get("streamer_readings_consumed_total", 0.0)


def outcomes(worker: WorkerProcess) -> dict[str, float]:
    prefix = 'streamer_reading_outcomes_total{outcome="'
    return {
        key[len(prefix) : -2]: value
        for key, value in worker.metrics().items()
        if key.startswith(prefix)
    }


def rss_mib(pid: int) -> float:
    """Resident set size of a process, from /proc/<pid>/status."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    raise AssertionError(f"no VmRSS for pid {pid}")


def report(capsys: pytest.CaptureFixture[str], scenario: str, figures: dict[str, object]) -> None:
    """Print a scenario's figures past pytest's capture, so CI logs always show them."""
    text = " | ".join(f"{name} {value}" for name, value in figures.items())
    with capsys.disabled():
        print(f"\n[reliability] {scenario}: {text}", flush=True)


def worker_caught_up(
    worker: WorkerProcess,
    settings: Settings,
    *,
    timeout_seconds: float,
    stall_seconds: float | None = None,
    total: int | None = None,
) -> None:
    """Wait for the worker's group to commit every reading; on failure, say what it did: its
    readings consumed (of ``total`` sent, when given) and the end of its log."""
    try:
        asyncio.run(
            wait_caught_up(
                settings.kafka_bootstrap,
                settings.app_id,
                settings.readings_topic,
                timeout_seconds=timeout_seconds,
                stall_seconds=stall_seconds,
            )
        )
    except AssertionError as exc:
        consumed = (
            worker.metrics().get("streamer_readings_consumed_total") if worker.alive else None
        )
        of = f" of {total}" if total is not None else ""
        raise AssertionError(
            f"{exc}\nworker {settings.app_id} consumed {consumed}{of} readings (since it "
            f"started); its log ends:\n{worker.log_tail(60)}"
        ) from exc

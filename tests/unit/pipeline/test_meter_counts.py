"""Active, silent and flatlined meters counted by the health scan the silence timer runs."""

from __future__ import annotations

from streamer.pipeline.config import PipelineConfig
from streamer.pipeline.meter_health import HeldMeter, MeterCounts, scan_meter_health
from streamer.pipeline.meter_record import MeterRecord
from streamer.settings import load_settings

RES_MS = 1_800_000
T0 = 1_795_392_000_000  # a slot boundary
SETTINGS = load_settings(flatline_slots=4, silent_slots=6)
RECORD = PipelineConfig.from_settings(SETTINGS).record
SILENT_AFTER_MS = SETTINGS.silent_slots * RES_MS


def count_meters(records: list[bytes], *, at_ms: int, silent_after_ms: int) -> MeterCounts:
    meters = [HeldMeter(f"m-{i}", 0, data) for i, data in enumerate(records)]
    scan = scan_meter_health(
        meters,
        record=RECORD,
        at_ms=at_ms,
        silent_after_ms=silent_after_ms,
        retention_ms=100 * silent_after_ms,
        reported_silent=set(),
    )
    return scan.counts


def record(values: list[float], last_arrival_ms: int) -> bytes:
    meter = MeterRecord.new(RECORD)
    for slot, kwh in enumerate(values):
        meter.state.update(T0 + (slot + 1) * RES_MS, kwh, last_arrival_ms)
    return meter.to_bytes()


def test_counts_active_silent_and_flatlined() -> None:
    now = T0 + 100 * RES_MS
    varied = [0.1, 0.2, 0.3, 0.4, 0.5]
    flat = [0.2, 0.7, 0.7, 0.7, 0.7]
    records = [
        record(varied, now - 1000),  # active
        record(varied, now - SILENT_AFTER_MS),  # exactly at the limit: still active
        record(varied, now - SILENT_AFTER_MS - 1),  # silent
        record(flat, now - 5000),  # active and flatlined
        record(flat, now - 10 * SILENT_AFTER_MS),  # silent and flatlined
        b"not a record",
    ]
    counts = count_meters(records, at_ms=now, silent_after_ms=SILENT_AFTER_MS)
    assert counts == MeterCounts(held=5, active=3, silent=2, flatlined=2, unreadable=1)


def test_a_run_shorter_than_the_flatline_setting_is_not_flatlined() -> None:
    now = T0 + 10 * RES_MS
    counts = count_meters(
        [record([0.1, 0.7, 0.7, 0.7], now)],
        at_ms=now,
        silent_after_ms=SILENT_AFTER_MS,
    )
    assert counts == MeterCounts(held=1, active=1, silent=0, flatlined=0)


def test_nothing_held() -> None:
    assert count_meters([], at_ms=T0, silent_after_ms=1) == MeterCounts()

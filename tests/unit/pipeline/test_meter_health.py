"""Silent meters are reported once per silence; meters silent past retention expire."""

from __future__ import annotations

from streamer.pipeline.config import PipelineConfig
from streamer.pipeline.meter_health import HeldMeter, scan_meter_health
from streamer.pipeline.meter_record import MeterRecord
from streamer.settings import load_settings

RECORD = PipelineConfig.from_settings(
    load_settings(lookback_slots=48, allowed_lateness_slots=4)
).record
T0 = 1_795_392_000_000
HOUR = 3_600_000


def held(meter_id: str, last_arrival_ms: int) -> HeldMeter:
    record = MeterRecord.new(RECORD)
    record.state.update(last_arrival_ms, 0.5, last_arrival_ms)
    return HeldMeter(meter_id, 3, record.to_bytes())


def scan(meters: list[HeldMeter], at_ms: int, reported: set[str]):  # type: ignore[no-untyped-def]
    return scan_meter_health(
        meters,
        record=RECORD,
        at_ms=at_ms,
        silent_after_ms=3 * HOUR,
        retention_ms=48 * HOUR,
        reported_silent=reported,
    )


def test_silence_is_reported_once_then_again_after_the_meter_spoke() -> None:
    meters = [held("quiet", T0), held("busy", T0 + 5 * HOUR)]
    first = scan(meters, T0 + 6 * HOUR, set())
    assert [(e.meter_id, e.status.value) for e in first.status_events] == [("quiet", "silent")]
    assert first.silent_now == {"quiet"}
    second = scan(meters, T0 + 7 * HOUR, first.silent_now)
    assert second.status_events == []
    spoke = [held("quiet", T0 + 7 * HOUR), meters[1]]
    third = scan(spoke, T0 + 7 * HOUR + 1000, second.silent_now)
    assert third.silent_now == set()
    again = scan([held("quiet", T0 + 7 * HOUR)], T0 + 11 * HOUR, third.silent_now)
    assert [e.status.value for e in again.status_events] == ["silent"]


def test_meters_silent_past_retention_expire_with_their_partition() -> None:
    result = scan([held("gone", T0), held("here", T0 + 49 * HOUR)], T0 + 50 * HOUR, set())
    assert [m.meter_id for m in result.expired] == ["gone"]
    assert result.expired[0].partition == 3
    assert [e.status.value for e in result.status_events] == ["expired"]


def test_unreadable_state_is_counted_not_fatal() -> None:
    result = scan([HeldMeter("bad", 0, b"junk"), held("ok", T0)], T0 + HOUR, set())
    assert result.counts.unreadable == 1 and result.counts.held == 1

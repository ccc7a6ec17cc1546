"""The per-meter record: one value holding window, ledger, detector and rolling accuracy."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest

from streamer.accuracy.interval_calibration import IntervalCalibrator
from streamer.pipeline.config import PipelineConfig
from streamer.pipeline.meter_record import MeterRecord, same_record
from streamer.pipeline.scoring import score_actual
from streamer.settings import load_settings
from streamer.state.codec import decode_state
from streamer.state.errors import StateDecodeError

CONFIG = PipelineConfig.from_settings(load_settings()).record
RES_MS = 1_800_000
SLOT = 997_000


def test_round_trip_is_byte_exact() -> None:
    record = MeterRecord.new(CONFIG)
    record.state.update(SLOT * RES_MS, 0.4, 1)
    record.ledger.record(SLOT, np.full(48, 0.5), np.tile([0.3, 0.5, 0.7], (48, 1)))
    data = record.to_bytes()
    again = MeterRecord.from_bytes(data, CONFIG)
    assert again.to_bytes() == data
    assert again.state.head_slot == SLOT


@pytest.mark.parametrize("cut", [0, 1, 5, 100, -1])
def test_truncated_or_foreign_bytes_are_refused(cut: int) -> None:
    data = MeterRecord.new(CONFIG).to_bytes()
    with pytest.raises(StateDecodeError):
        MeterRecord.from_bytes(data[:cut] if cut >= 0 else data + b"x", CONFIG)
    with pytest.raises(StateDecodeError, match="reset"):
        MeterRecord.from_bytes(b"XX" + data[2:], CONFIG)


def test_an_actual_is_scored_against_the_forecasts_issued_for_it() -> None:
    record = MeterRecord.new(CONFIG)
    record.ledger.record(SLOT, np.full(48, 0.5), np.tile([0.3, 0.5, 0.7], (48, 1)))
    matches, drift = score_actual(record, "m-1", SLOT + 1, 0.9, res_ms=RES_MS, now_ms=0)
    assert [(m.horizon_slots, m.p50, m.actual) for m in matches] == [(1, 0.5, 0.9)]
    assert drift is None  # one residual is no drift
    assert record.accuracy.get().n == 1
    assert record.accuracy.get().mae_kwh == pytest.approx(0.4, abs=1e-3)
    assert record.detector.n == 1


def test_a_sustained_shift_in_residuals_is_concept_drift() -> None:
    record = MeterRecord.new(CONFIG)
    rng = np.random.default_rng(3)
    found = []
    for k in range(400):
        slot = SLOT + k
        record.ledger.record(slot, np.full(48, 1.0), np.tile([0.8, 1.0, 1.2], (48, 1)))
        actual = 1.0 + 0.156 * rng.standard_normal() + (0.6 if k >= 200 else 0.0)
        _, drift = score_actual(record, "m-1", slot + 1, actual, res_ms=RES_MS, now_ms=k)
        if drift is not None:
            found.append((k, drift.direction))
    assert found, "the shift at 200 went unnoticed"
    assert 200 <= found[0][0] < 230 and found[0][1] == "up"


def full_record() -> MeterRecord:
    """A meter as the worker leaves it after a week: every slot read (bar a few), every slot
    forecast (48 horizons) and scored."""
    record = MeterRecord.new(CONFIG)
    rng = np.random.default_rng(7)
    for k in range(CONFIG.window.lookback_slots + 60):
        slot = SLOT + k
        if k % 50 == 7:
            continue
        kwh = round(float(rng.gamma(2.0, 0.15)), 3)
        record.state.update(slot * RES_MS, kwh, slot * RES_MS + 5_000)
        score_actual(record, "m-1", slot, kwh, res_ms=RES_MS, now_ms=0)
        point = rng.gamma(2.0, 0.15, 48)
        record.ledger.record(slot, point, np.stack([point * 0.6, point * 1.05, point * 1.5], 1))
    return record


def test_a_full_default_record_is_at_most_2_kb() -> None:
    record = full_record()
    assert record.ledger.pending >= 85  # of 1 + 4 + 12 + 24 + 48 (a slot skipped: none from it)
    assert int(record.calibration.matches.sum()) > 300  # every match taught the calibration
    parts = [
        record.state.to_bytes(),
        record.ledger.to_bytes(),
        record.detector.to_bytes(),
        record.accuracy.to_bytes(),
        record.calibration.to_bytes(),
    ]
    assert [len(p) for p in parts] == [900, 732, 60, 44, 42]
    data = record.to_bytes(3, 123_456)
    assert len(data) == 5 + 8 + 5 * 4 + 900 + 732 + 60 + 44 + 42 == 1811 <= 2048
    again = MeterRecord.from_bytes(data, CONFIG)
    assert (again.partition, again.offset) == (3, 123_456)
    assert again.to_bytes(3, 123_456) == data
    assert MeterRecord.partition_of(data) == 3


def four_parts(record: MeterRecord) -> bytes:
    """The parts of a record as versions 2 and 3 wrote them (no calibration)."""
    parts = [
        record.state.to_bytes(),
        record.ledger.to_bytes(),
        record.detector.to_bytes(),
        record.accuracy.to_bytes(),
    ]
    return b"".join(struct.pack("<I", len(p)) + p for p in parts)


def test_older_records_are_read_and_start_their_calibration_afresh() -> None:
    record = full_record()
    version_2 = struct.pack("<2sBH", b"MR", 2, 3) + four_parts(record)
    version_3 = struct.pack("<2sBHq", b"MR", 3, 3, 77) + four_parts(record)
    record.calibration = IntervalCalibrator(CONFIG.calibration)
    for old, offset in ((version_2, -1), (version_3, 77)):
        again = MeterRecord.from_bytes(old, CONFIG)
        assert (again.partition, again.offset) == (3, offset)
        assert again.to_bytes(3, 77) == record.to_bytes(3, 77)
        assert not same_record(record.to_bytes(3, 77), old)  # written back as version 4


def test_a_record_with_a_version_1_window_is_read() -> None:
    record = full_record()
    state = record.state
    baseline = state.register_baseline
    fields = decode_state(state.to_bytes(), CONFIG.window)
    body = struct.pack(
        "<2sBBIqqdq",
        b"MS",
        1,
        1 | (baseline is not None) << 1,
        CONFIG.window.fingerprint(),
        fields.head_slot,
        fields.last_arrival_ms,
        fields.register_kwh or 0.0,
        fields.register_slot or 0,
    )
    body += fields.values_kwh.astype("<f4").tobytes() + fields.flags.tobytes()
    old_window = body + struct.pack("<I", zlib.crc32(body))
    assert len(old_window) == 1724
    parts = [old_window, record.ledger.to_bytes(), record.detector.to_bytes()]
    parts.append(record.accuracy.to_bytes())
    old = struct.pack("<2sBH", b"MR", 2, 0) + b"".join(struct.pack("<I", len(p)) + p for p in parts)
    record.calibration = IntervalCalibrator(CONFIG.calibration)  # version 2 had none
    assert MeterRecord.from_bytes(old, CONFIG).to_bytes() == record.to_bytes()

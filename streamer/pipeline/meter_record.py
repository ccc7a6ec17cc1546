"""Everything kept per meter, written as one table value once per batch.

A record is the meter's window (:class:`~streamer.state.meter_state.MeterState`), the forecasts
it was issued for slots still to come (:class:`~streamer.accuracy.forecast_ledger.ForecastLedger`,
to score them when the actuals arrive), its concept-drift detector (Page-Hinkley on standardised
one-slot-ahead residuals) and its rolling accuracy. Layout (little-endian)::

    b"MR" | version u8 | partition u16 | offset i64 | 5 x (length u32, bytes): state, ledger,
    detector, accuracy, interval calibration

(version 2, still read, had no offset; version 3, still read, no calibration: a meter read
from it starts its calibration afresh).

1,805 bytes per meter with the default window and ledger (900 + 732 + 60 + 44 + 36 + 33 of
framing). Equal records give equal bytes. Each part carries its own version; an older record is
read and written back in version 4. The ledger, detector, accuracy and calibration keep the bytes
they were read from or last encoded to until an update changes them, so a record rewritten for
a reading that matched no forecast encodes only its window again.

The partition is that of the meter's readings: a timer (which runs outside any event) reads it
to write a tombstone for an expired meter to the right changelog partition, whatever
partitioner the producers used. The offset is that of the newest readings message the record
covers (-1: unknown): a message of that partition at or below it, for a slot not past the
head, is a replay (after a crash or a rebalance) and is counted a duplicate without touching
the record, so replaying a stretch of the topic never changes a meter's state.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from streamer.accuracy.forecast_ledger import ForecastLedger
from streamer.accuracy.interval_calibration import CalibrationConfig, IntervalCalibrator
from streamer.accuracy.ledger_config import LedgerConfig
from streamer.accuracy.rolling_accuracy import RollingAccuracy
from streamer.drift.page_hinkley import PageHinkley, PageHinkleyConfig
from streamer.state.config import WindowConfig
from streamer.state.errors import StateDecodeError
from streamer.state.meter_state import MeterState

MAGIC = b"MR"
VERSION = 4
#: record versions read: 2 (no offset), 3 (no calibration), 4
_READ_VERSIONS = (2, 3, 4)
_HEADER_V2 = struct.Struct("<2sBH")
_HEADER = struct.Struct("<2sBHq")
_LENGTH = struct.Struct("<I")
_HEADER_AND_LENGTH = struct.Struct("<2sBHqI")


@dataclass(frozen=True, slots=True)
class RecordConfig:
    window: WindowConfig
    ledger: LedgerConfig
    detector: PageHinkleyConfig
    accuracy_half_life: float = 240.0
    calibration: CalibrationConfig = field(default_factory=CalibrationConfig)


@dataclass(slots=True)
class MeterRecord:
    state: MeterState
    ledger: ForecastLedger
    detector: PageHinkley
    accuracy: RollingAccuracy
    calibration: IntervalCalibrator
    # the readings partition and offset of the newest message the record covers (-1: unknown)
    partition: int = -1
    offset: int = -1

    @classmethod
    def new(cls, config: RecordConfig) -> MeterRecord:
        return cls(
            MeterState.new(config.window),
            ForecastLedger(config.ledger),
            PageHinkley.from_config(config.detector),
            RollingAccuracy(half_life=config.accuracy_half_life),
            IntervalCalibrator(config.calibration),
        )

    def to_bytes(self, partition: int = 0, offset: int = -1) -> bytes:
        """The record's bytes, tagged with the readings partition the meter is on and the
        offset of the newest message it covers."""
        state = self.state.to_bytes()
        ledger = self.ledger.to_bytes()
        detector = self.detector.to_bytes()
        accuracy = self.accuracy.to_bytes()
        calibration = self.calibration.to_bytes()
        pack = _LENGTH.pack
        return b"".join(
            (
                _HEADER_AND_LENGTH.pack(MAGIC, VERSION, partition, offset, len(state)),
                state,
                pack(len(ledger)),
                ledger,
                pack(len(detector)),
                detector,
                pack(len(accuracy)),
                accuracy,
                pack(len(calibration)),
                calibration,
            )
        )

    @classmethod
    def from_bytes(cls, data: bytes, config: RecordConfig) -> MeterRecord:
        """Decode a record; :class:`StateDecodeError` (saying how to reset) when it is not one."""
        parts = _sections(data)
        partition, offset = _position(data)
        try:
            return cls(
                MeterState.from_bytes(parts[0], config.window),
                ForecastLedger.from_bytes(parts[1], config.ledger),
                PageHinkley.from_bytes(parts[2], config.detector),
                RollingAccuracy.from_bytes(parts[3], config.accuracy_half_life),
                IntervalCalibrator.from_bytes(parts[4], config.calibration)
                if len(parts) > 4
                else IntervalCalibrator(config.calibration),
                partition,
                offset,
            )
        except StateDecodeError:
            raise
        except Exception as exc:  # the parts' own decode errors
            raise StateDecodeError(f"meter record part unreadable: {exc}") from exc

    @staticmethod
    def partition_of(data: bytes) -> int:
        """The readings partition a record's bytes were tagged with."""
        _check_header(data)
        return _position(data)[0]

    @staticmethod
    def state_from_bytes(data: bytes, config: RecordConfig) -> MeterState:
        """Only the window of a record (for scans that need no ledger or detector)."""
        return MeterState.from_bytes(_sections(data)[0], config.window)


def same_record(new: bytes, stored: bytes) -> bool:
    """Whether two records' bytes differ in nothing but the offset they cover (an older
    ``stored`` is never the same: it is written back as version 4)."""
    if len(new) != len(stored) or stored[2] != VERSION or new[:5] != stored[:5]:
        return False
    # (two slices and one memcmp: comparing memoryviews goes element by element, 10x slower)
    return new[_HEADER.size :] == stored[_HEADER.size :]


def _position(data: bytes) -> tuple[int, int]:
    """The readings partition and offset of a checked record's header."""
    if data[2] != 2:
        _, _, partition, offset = _HEADER.unpack_from(data)
        return int(partition), int(offset)
    return int(_HEADER_V2.unpack_from(data)[2]), -1


def _check_header(data: bytes) -> int:
    """The header's size, once checked."""
    if len(data) < _HEADER_V2.size:
        raise StateDecodeError(f"meter record of {len(data)} bytes is truncated")
    magic, version, _ = _HEADER_V2.unpack_from(data)
    if version != 2 and len(data) < _HEADER.size:
        raise StateDecodeError(f"meter record of {len(data)} bytes is truncated")
    if magic == MAGIC and version in _READ_VERSIONS:
        return _HEADER_V2.size if version == 2 else _HEADER.size
    raise StateDecodeError(
        f"not a version-{VERSION} meter record (magic {magic!r}, version {version}); "
        "the state table was written by another build: reset it (delete the "
        "<app_id>-meter-state-changelog topic) to start meters afresh"
    )


def _sections(data: bytes) -> list[bytes]:
    """The length-prefixed parts of a record's bytes (five; four before version 4), checked
    for shape."""
    offset = _check_header(data)
    size = len(data)
    unpack = _LENGTH.unpack_from
    parts: list[bytes] = []
    for _ in range(5 if data[2] >= 4 else 4):
        start = offset + 4
        if start > size:
            raise StateDecodeError("meter record is truncated")
        offset = start + unpack(data, start - 4)[0]
        if offset > size:
            raise StateDecodeError("meter record is truncated")
        parts.append(data[start:offset])
    if offset != size:
        raise StateDecodeError(f"meter record has {size - offset} trailing bytes")
    return parts

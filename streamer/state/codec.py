"""The byte layout of one meter's state (the changelog value).

Little-endian, version 1::

    offset  size  field
    0       2     magic b"MS"
    2       1     version (1)
    3       1     bits: 1 = has head slot, 2 = has register baseline
    4       4     config fingerprint (uint32, WindowConfig.fingerprint())
    8       8     head slot (int64; 0 when none)
    16      8     last arrival ms (int64)
    24      8     register baseline kWh (float64; 0.0 when none)
    32      8     register baseline slot (int64; 0 when none)
    40      4*L   values kWh, float32, oldest..newest (NaN where MISSING)
    40+4L   L     flags, uint8 SlotFlag
    40+5L   4     CRC-32 of everything before it

``L`` is ``lookback_slots``; 1724 bytes at L = 336. Equal states give equal bytes.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

import numpy as np

from streamer.state.config import WindowConfig
from streamer.state.errors import StateDecodeError
from streamer.state.flags import MAX_STORED_FLAG

MAGIC = b"MS"
VERSION = 1
HAS_HEAD = 1
HAS_REGISTER = 2
_KNOWN_BITS = HAS_HEAD | HAS_REGISTER
VALUE_DTYPE = np.dtype("<f4")
FLAG_DTYPE = np.dtype("u1")
_HEADER = struct.Struct("<2sBBIqqdq")
_CRC = struct.Struct("<I")
_RESET_HINT = (
    "the changelog holds state written by another build or window shape; either deploy with the "
    "same resolution_seconds/lookback_slots or reset the state table (new table name or delete "
    "its changelog topic) so meters start fresh"
)


@dataclass(frozen=True, slots=True)
class StateFields:
    """The decoded content of one state's bytes. Arrays are fresh, writable copies."""

    head_slot: int | None
    last_arrival_ms: int
    register_kwh: float | None
    register_slot: int | None
    values_kwh: np.ndarray
    flags: np.ndarray


def encoded_size(lookback_slots: int) -> int:
    """Length of the bytes for a window of ``lookback_slots``."""
    return _HEADER.size + lookback_slots * (VALUE_DTYPE.itemsize + FLAG_DTYPE.itemsize) + _CRC.size


def encode_state(fields: StateFields, fingerprint: int) -> bytes:
    """Serialise ``fields``; see the module docstring for the layout."""
    bits = 0
    if fields.head_slot is not None:
        bits |= HAS_HEAD
    if fields.register_kwh is not None:
        bits |= HAS_REGISTER
    header = _HEADER.pack(
        MAGIC,
        VERSION,
        bits,
        fingerprint,
        0 if fields.head_slot is None else fields.head_slot,
        fields.last_arrival_ms,
        0.0 if fields.register_kwh is None else fields.register_kwh,
        0 if fields.register_slot is None else fields.register_slot,
    )
    body = b"".join(
        (
            header,
            fields.values_kwh.astype(VALUE_DTYPE, copy=False).tobytes(),
            fields.flags.astype(FLAG_DTYPE, copy=False).tobytes(),
        )
    )
    return body + _CRC.pack(zlib.crc32(body))


def decode_state(data: bytes | bytearray | memoryview, config: WindowConfig) -> StateFields:
    """Read bytes written by :func:`encode_state` for ``config``; raise StateDecodeError if not."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise StateDecodeError(
            f"meter state must be bytes, got {type(data).__name__}; configure the table with "
            "a raw (bytes) value serializer"
        )
    raw = bytes(data)
    lookback = config.lookback_slots
    expected = encoded_size(lookback)
    if len(raw) < _HEADER.size + _CRC.size:
        raise StateDecodeError(
            f"meter state is truncated: {len(raw)} bytes, a valid one has {expected}; {_RESET_HINT}"
        )
    magic, version, bits, fingerprint, head, arrival, reg_kwh, reg_slot = _HEADER.unpack_from(raw)
    if magic != MAGIC:
        raise StateDecodeError(
            f"bytes are not meter state (magic {magic!r}, expected {MAGIC!r}); {_RESET_HINT}"
        )
    if version != VERSION:
        raise StateDecodeError(
            f"meter state has format version {version}, this build reads version {VERSION}; "
            f"{_RESET_HINT}"
        )
    if fingerprint != config.fingerprint():
        raise StateDecodeError(
            f"meter state was written for another window shape (fingerprint {fingerprint}, this "
            f"worker's resolution_seconds={config.resolution_seconds}, "
            f"lookback_slots={lookback} give {config.fingerprint()}); {_RESET_HINT}"
        )
    if len(raw) != expected:
        raise StateDecodeError(
            f"meter state has {len(raw)} bytes, expected {expected} for lookback_slots={lookback} "
            f"(truncated or padded); {_RESET_HINT}"
        )
    (crc,) = _CRC.unpack_from(raw, expected - _CRC.size)
    if crc != zlib.crc32(memoryview(raw)[: expected - _CRC.size]):
        raise StateDecodeError(f"meter state is corrupt (CRC-32 mismatch); {_RESET_HINT}")
    if bits & ~_KNOWN_BITS:
        raise StateDecodeError(f"meter state header has unknown bits {bits:#x}; {_RESET_HINT}")
    values = np.frombuffer(raw, dtype=VALUE_DTYPE, count=lookback, offset=_HEADER.size).copy()
    flags = np.frombuffer(
        raw, dtype=FLAG_DTYPE, count=lookback, offset=_HEADER.size + lookback * 4
    ).copy()
    if int(flags.max()) > MAX_STORED_FLAG:
        raise StateDecodeError(
            f"meter state holds slot flag {int(flags.max())}, stored flags are 0..{MAX_STORED_FLAG}"
            f"; {_RESET_HINT}"
        )
    has_register = bool(bits & HAS_REGISTER)
    return StateFields(
        head_slot=head if bits & HAS_HEAD else None,
        last_arrival_ms=arrival,
        register_kwh=reg_kwh if has_register else None,
        register_slot=reg_slot if has_register else None,
        values_kwh=values,
        flags=flags,
    )

"""The byte layout of one meter's state (the changelog value).

Little-endian, version 2::

    offset  size        field
    0       2           magic b"MS"
    2       1           version (2)
    3       1           bits: 1 = has head slot, 2 = has register baseline
    4       4           config fingerprint (uint32, WindowConfig.fingerprint())
    8       8           head slot (int64; 0 when none)
    16      8           last arrival ms (int64)
    24      8           register baseline kWh (float64; 0.0 when none)
    32      8           register baseline slot (int64; 0 when none)
    40      2           R: recent slots (uint16; ``allowed_lateness_slots`` when written)
    42      2           X: exceptions (uint16)
    44      2(L-R)      settled slots, oldest first: uint16 codes (below)
    ...     4R          recent slots: kWh as float32 (NaN where MISSING)
    ...     ceil(L/4)   flags, 2 bits per slot: slot i in bits 2(i%4) of byte i//4
    ...     4X          exceptions: the float32 kWh of each settled slot coded 0xFFFE, in order
    end-4   4           CRC-32 of everything before it

``L`` is ``lookback_slots``: 900 bytes at L = 336 and R = 48 (plus 4 per exception, which
default settings never make; version 1 had 1724). Equal states give equal bytes.

**Recent slots** (the newest ``R``: within ``allowed_lateness_slots`` of the head) can still be
filled or corrected, so they keep the exact float32 the state adds and compares. **Settled
slots** (``lag >= allowed_lateness_slots``) cannot: a reading for them is ``TOO_LATE``. They take
2 bytes each, rounded to a decimal step that depends on the magnitude::

    |kWh| below   step     max error   code (s: step 0..3, m: rounded kWh / step)
    0.81851       0.1 Wh   0.05 Wh     s * 16384 + 8192 + m,  |m| <= 8185
    8.1851        1 Wh     0.5 Wh      (and |m| >= 819 for s >= 1)
    81.851        10 Wh    5 Wh
    818.51        100 Wh   50 Wh
    beyond        exact    0           0xFFFE, the float32 in the exception list
    NaN           -        -           0xFFFF (a MISSING slot)

So a settled value is off by at most 0.05 Wh or 0.061 % of it, whichever is larger (plus float32
rounding), negative (exported) energy alike; whole Wh up to 8.185 kWh, whole 10 Wh up to
81.85 kWh, are kept exactly: decoding divides the integer by a power of ten, which rounds as
parsing the decimal does, so the float32 is bit-for-bit the one the state held. Readings are
validated to ``|kWh| <= max_interval_kwh`` (500 kWh by default), so only a raised
``STREAMER_MAX_POWER_KW`` or a register adding two big steps to one slot makes exceptions.

The rounding (:func:`settle`) depends on the value alone and is idempotent: the step of a
rounded value is the step it was rounded with (the bounds lie between the steps' grids), so a
decoded value encodes to the code it came from. A slot therefore settles to the same value
whenever it is first written, and a state read back and written again gives the same bytes.
:meth:`~streamer.state.meter_state.MeterState.to_bytes` rounds the settled slots in memory too,
so that a state kept in memory and one read back from its bytes are the same state, and it keeps
the settled codes (:class:`SettledSlots`) to encode only the slots settled since.

Version 1 (float32 values and one uint8 flag per slot, 1724 bytes at L = 336) is still read.
"""

from __future__ import annotations

import functools
import struct
import zlib
from bisect import bisect_right
from typing import NamedTuple

import numpy as np

from streamer.state.config import WindowConfig
from streamer.state.errors import StateDecodeError
from streamer.state.flags import MAX_STORED_FLAG

MAGIC = b"MS"
VERSION = 2
HAS_HEAD = 1
HAS_REGISTER = 2
_KNOWN_BITS = HAS_HEAD | HAS_REGISTER
VALUE_DTYPE = np.dtype("<f4")
CODE_DTYPE = np.dtype("<u2")
_HEADER = struct.Struct("<2sBBIqqdqHH")
_CRC = struct.Struct("<I")
#: CRC-32 of any bytes followed by their own CRC-32 (little-endian): see streamer.drift.sealed.
_CRC_RESIDUE = 0x2144DF1C
_CODE = struct.Struct("<H")
_EXCEPTION = struct.Struct("<f")
#: what a state may be read from (a tuple: a ``|`` union would be built at every call)
_BYTES_LIKE = (bytes, bytearray, memoryview)
_RESET_HINT = (
    "the changelog holds state written by another build or window shape; either deploy with the "
    "same resolution_seconds/lookback_slots or reset the state table (new table name or delete "
    "its changelog topic) so meters start fresh"
)

# -- settled-slot codes ----------------------------------------------------------------------
#: The code of a settled slot whose exact value is in the exception list.
EXCEPTION_CODE = 0xFFFE
#: The code of a settled NaN (a MISSING slot).
NAN_CODE = 0xFFFF
#: |kWh| from which the next step is used: 8185.1 of the smaller step, 818.51 of the bigger, so
#: a value rounded with either step stays on its side of the bound.
_BOUNDS = (0.81851, 8.1851, 81.851, 818.51)
_SCALES = (1e4, 1e3, 1e2, 1e1)  # 1 / step, in kWh
_BASES = (8192.0, 24576.0, 40960.0, 57344.0)  # s * 16384 + 8192
_EXCEPTIONAL = len(_BOUNDS)
_BOUNDS_ARRAY = np.array(_BOUNDS)
#: Per step (4: beyond the bounds or NaN): (scale, base) for ``rint(kwh * scale + base)``.
_STEP_TABLE = np.array([*zip(_SCALES, _BASES, strict=True), (0.0, float(EXCEPTION_CODE))])


def _code_values() -> np.ndarray:
    codes = np.arange(1 << 16)
    mantissa = (codes & 0x3FFF) - 8192
    divisor = np.array(_SCALES)[codes >> 14]
    values: np.ndarray = (mantissa / divisor).astype(VALUE_DTYPE)  # exact division, then float32
    values[[EXCEPTION_CODE, NAN_CODE]] = np.nan
    values.setflags(write=False)
    return values


#: The float32 kWh of every code (NaN for the two special ones): decoding is one lookup.
CODE_VALUES = _code_values()

# -- 2-bit flags ------------------------------------------------------------------------------
if MAX_STORED_FLAG > 3:  # pragma: no cover - a guard for whoever adds a stored flag
    raise ImportError("stored slot flags no longer fit 2 bits: change the state codec")
# (f0 + f1 << 8 + f2 << 16 + f3 << 24) * _PACK has f0 + f1 << 2 + f2 << 4 + f3 << 6 in its top
# byte (mod 2**32), as long as every f is 0..3.
_PACK = (1 << 24) + (1 << 18) + (1 << 12) + (1 << 6)
#: _PACK repeated, per number of words (an array operand multiplies faster than a scalar).
_PACKS: dict[int, np.ndarray] = {}


def _packs(words: int) -> np.ndarray:
    packs = np.full(words, _PACK, dtype=np.uint32)
    packs.setflags(write=False)
    _PACKS[words] = packs
    return packs


_UNPACK = np.array(
    [[(byte >> shift) & 3 for shift in (0, 2, 4, 6)] for byte in range(256)], dtype=np.uint8
)

# -- version 1 --------------------------------------------------------------------------------
_V1 = 1
_HEADER_V1 = struct.Struct("<2sBBIqqdq")


class SettledSlots(NamedTuple):
    """The encoded settled slots of a window whose head slot was ``head_slot``: ``codes`` (2
    bytes each, oldest first) and ``exceptions`` (4 bytes per ``EXCEPTION_CODE``)."""

    head_slot: int | None
    codes: bytes
    exceptions: bytes = b""


class StateFields(NamedTuple):
    """The decoded content of one state's bytes. Arrays are fresh, writable copies.

    ``settled`` is set by :func:`decode_state` when the bytes' recent slots are the config's
    ``allowed_lateness_slots`` (so that the next encoding can start from them).
    """

    head_slot: int | None
    last_arrival_ms: int
    register_kwh: float | None
    register_slot: int | None
    values_kwh: np.ndarray
    flags: np.ndarray
    settled: SettledSlots | None = None


def encoded_size(lookback_slots: int, recent_slots: int, exceptions: int = 0) -> int:
    """Length of the bytes for a window of ``lookback_slots`` of which ``recent_slots`` are
    recent (float32), with ``exceptions`` settled slots kept exactly."""
    return (
        _HEADER.size
        + (lookback_slots - recent_slots) * CODE_DTYPE.itemsize
        + recent_slots * VALUE_DTYPE.itemsize
        + (lookback_slots + 3) // 4
        + exceptions * VALUE_DTYPE.itemsize
        + _CRC.size
    )


# ---------------------------------------------------------------------------------- settling


def _settle_one(kwh: float) -> tuple[int, float]:
    """Code and stored value of one settled slot (the scalar twin of :func:`_settle_array`)."""
    step = bisect_right(_BOUNDS, abs(kwh))  # NaN compares false: 4
    if step == _EXCEPTIONAL:
        if kwh - kwh != 0.0:  # NaN or infinite
            return NAN_CODE, float("nan")
        return EXCEPTION_CODE, kwh
    code = round(kwh * _SCALES[step] + _BASES[step])
    return code, CODE_VALUES.item(code)


def settle(kwh: float) -> float:
    """The value a settled slot holding ``kwh`` (a float32 value) is stored as."""
    return _settle_one(kwh)[1]


def _settle_array(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Codes and exception values of ``values`` (float32); rounds ``values`` in place."""
    magnitude = np.abs(values)
    step = np.searchsorted(_BOUNDS_ARRAY, magnitude, side="right")  # NaN sorts last: 4
    table = _STEP_TABLE[step]
    code = values * table[:, 0]  # float64: float32 * float64
    code += table[:, 1]
    np.rint(code, out=code)
    np.fmin(code, NAN_CODE, out=code)  # NaN (NaN * 0, inf * 0) -> NAN_CODE
    codes = code.astype(CODE_DTYPE)
    rounded = CODE_VALUES[codes]
    if np.fmax.reduce(magnitude, initial=0.0) >= _BOUNDS[-1]:
        exceptional = codes == EXCEPTION_CODE
        exceptions = values[exceptional]
        rounded[exceptional] = exceptions
    else:
        exceptions = rounded[:0]
    values[:] = rounded
    return codes, exceptions


#: Up to this many newly settled slots are encoded one by one (fewer numpy calls).
_ONE_BY_ONE = 4
_new_settled = tuple.__new__  # SettledSlots(...) without the keyword-capable __new__


def settle_slots(
    values: np.ndarray, head_slot: int | None, recent_slots: int, previous: SettledSlots | None
) -> SettledSlots:
    """Encode the settled slots ``values[:L - recent_slots]`` and round them in place.

    ``previous`` is what this function returned for the same window at an earlier head; its
    codes are reused when only the head moved since (the window shifted): only the slots that
    settled in between are encoded. The caller must drop ``previous`` when it writes a slot
    that was settled at ``previous.head_slot``.
    """
    settled = values.shape[0] - recent_slots
    if previous is not None and head_slot is not None:
        previous_head, codes, exceptions = previous
        if previous_head is not None and len(codes) == 2 * settled:
            shift = head_slot - previous_head
            if shift == 0:
                return previous
            if 0 < shift < settled:
                if exceptions:
                    gone = np.frombuffer(codes, dtype=CODE_DTYPE, count=shift)
                    exceptions = exceptions[4 * int(np.count_nonzero(gone == EXCEPTION_CODE)) :]
                codes = codes[2 * shift :]
                if shift <= _ONE_BY_ONE:  # the common case (shift 1): no numpy calls
                    for index in range(settled - shift, settled):
                        kwh = values.item(index)
                        code, value = _settle_one(kwh)
                        if value != kwh:  # (NaN too: a no-op)
                            values[index] = value
                        codes += _CODE.pack(code)
                        if code == EXCEPTION_CODE:
                            exceptions += _EXCEPTION.pack(value)
                    return _new_settled(SettledSlots, (head_slot, codes, exceptions))
                new_codes, new_exceptions = _settle_array(values[settled - shift : settled])
                return _new_settled(
                    SettledSlots,
                    (head_slot, codes + new_codes.tobytes(), exceptions + new_exceptions.tobytes()),
                )
    codes_array, exceptions_array = _settle_array(values[:settled])
    return SettledSlots(head_slot, codes_array.tobytes(), exceptions_array.tobytes())


@functools.cache
def _missing_codes(settled: int) -> bytes:
    return _CODE.pack(NAN_CODE) * settled


def missing_settled(head_slot: int, settled: int) -> SettledSlots:
    """What :func:`settle_slots` gives for ``settled`` slots all MISSING (NaN), at
    ``head_slot``: a window's first reading (no numpy calls)."""
    return _new_settled(SettledSlots, (head_slot, _missing_codes(settled), b""))


# ---------------------------------------------------------------------------------- bytes


def encode_state(fields: StateFields, fingerprint: int, recent_slots: int) -> bytes:
    """Serialise ``fields`` (layout in the module docstring) with the newest ``recent_slots``
    slots recent; the settled ones are rounded (in a copy: ``fields`` is left as it is).

    ``flags`` must be stored flags (0..3), as :class:`~streamer.state.meter_state.MeterState`'s
    are.
    """
    values = fields.values_kwh.astype(VALUE_DTYPE)
    return encode_window(
        fields.head_slot,
        fields.last_arrival_ms,
        fields.register_kwh,
        fields.register_slot,
        values,
        flag_words(fields.flags),
        fingerprint,
        recent_slots,
        settle_slots(values, fields.head_slot, recent_slots, None),
    )


def flag_words(flags: np.ndarray) -> np.ndarray:
    """``flags`` as uint32 words of four uint8 flags for :func:`encode_window`: a view of a
    contiguous uint8 array whose length is a multiple of 4, else a (zero-padded) copy."""
    flags = np.ascontiguousarray(flags, dtype=np.uint8)
    if flags.shape[0] & 3:
        padded = np.zeros(-(-flags.shape[0] // 4) * 4, dtype=np.uint8)
        padded[: flags.shape[0]] = flags
        flags = padded
    return flags.view(np.uint32)


def encode_window(
    head_slot: int | None,
    last_arrival_ms: int,
    register_kwh: float | None,
    register_slot: int | None,
    values_kwh: np.ndarray,
    words: np.ndarray,
    fingerprint: int,
    recent_slots: int,
    settled: SettledSlots,
) -> bytes:
    """:func:`encode_state` from the parts of a state whose settled slots ``settled`` encodes
    (:func:`settle_slots`); ``values_kwh`` float32, ``words`` its uint8 flags (0..3) viewed as
    uint32 (:func:`flag_words`). The hot path."""
    count = values_kwh.shape[0]
    packs = _PACKS.get(words.shape[0])
    if packs is None:
        packs = _packs(words.shape[0])
    body = b"".join(
        (
            _HEADER.pack(
                MAGIC,
                VERSION,
                (head_slot is not None) | (register_kwh is not None) << 1,  # the two bits
                fingerprint,
                0 if head_slot is None else head_slot,
                last_arrival_ms,
                0.0 if register_kwh is None else register_kwh,
                0 if register_slot is None else register_slot,
                recent_slots,
                len(settled[2]) >> 2,
            ),
            settled[1],
            values_kwh[count - recent_slots :].tobytes(),
            np.multiply(words, packs).tobytes()[3::4],  # little-endian: the top bytes
            settled[2],
        )
    )
    return body + _CRC.pack(zlib.crc32(body))


def decode_state(data: bytes | bytearray | memoryview, config: WindowConfig) -> StateFields:
    """Read bytes written by :func:`encode_state` for ``config``; raise StateDecodeError if not."""
    if not isinstance(data, _BYTES_LIKE):
        raise StateDecodeError(
            f"meter state must be bytes, got {type(data).__name__}; configure the table with "
            "a raw (bytes) value serializer"
        )
    raw = data if type(data) is bytes else bytes(data)
    lookback = config.lookback_slots
    if len(raw) < _HEADER.size + _CRC.size:  # (version 1 states are longer too)
        raise StateDecodeError(
            f"meter state is truncated: {len(raw)} bytes, a valid one has at least "
            f"{_HEADER.size + _CRC.size}; {_RESET_HINT}"
        )
    (
        magic,
        version,
        bits,
        fingerprint,
        head,
        arrival,
        reg_kwh,
        reg_slot,
        recent,
        exception_count,
    ) = _HEADER.unpack_from(raw)
    if magic != MAGIC:
        raise StateDecodeError(
            f"bytes are not meter state (magic {magic!r}, expected {MAGIC!r}); {_RESET_HINT}"
        )
    if version != VERSION and version != _V1:
        raise StateDecodeError(
            f"meter state has format version {version}, this build reads versions {_V1} and "
            f"{VERSION}; {_RESET_HINT}"
        )
    if fingerprint != config.fingerprint():
        raise StateDecodeError(
            f"meter state was written for another window shape (fingerprint {fingerprint}, this "
            f"worker's resolution_seconds={config.resolution_seconds}, "
            f"lookback_slots={lookback} give {config.fingerprint()}); {_RESET_HINT}"
        )
    if bits & ~_KNOWN_BITS:
        raise StateDecodeError(f"meter state header has unknown bits {bits:#x}; {_RESET_HINT}")
    head_slot = head if bits & HAS_HEAD else None
    settled = None
    if version == _V1:
        values, flags = _decode_v1_slots(raw, lookback)
    else:
        if recent > lookback:
            raise StateDecodeError(
                f"meter state has {recent} recent slots, more than lookback_slots={lookback}; "
                f"{_RESET_HINT}"
            )
        settled_count = lookback - recent
        flags_at = _HEADER.size + 2 * settled_count + 4 * recent
        exceptions_at = flags_at + (lookback + 3) // 4
        end = exceptions_at + 4 * exception_count
        if len(raw) != end + _CRC.size:
            raise StateDecodeError(
                f"meter state has {len(raw)} bytes, expected {end + _CRC.size} for "
                f"lookback_slots={lookback}, {recent} recent slots and {exception_count} "
                f"exceptions (truncated or padded); {_RESET_HINT}"
            )
        if zlib.crc32(raw) != _CRC_RESIDUE:  # the CRC-32 at ``end`` is not that of raw[:end]
            raise StateDecodeError(f"meter state is corrupt (CRC-32 mismatch); {_RESET_HINT}")
        codes = raw[_HEADER.size : _HEADER.size + 2 * settled_count]
        code_array = np.frombuffer(codes, dtype=CODE_DTYPE)
        values = np.empty(lookback, dtype=VALUE_DTYPE)
        CODE_VALUES.take(code_array, out=values[:settled_count], mode="wrap")  # (all in range)
        values[settled_count:] = np.frombuffer(
            raw, dtype=VALUE_DTYPE, count=recent, offset=_HEADER.size + 2 * settled_count
        )
        packed = np.frombuffer(raw, dtype=np.uint8, count=exceptions_at - flags_at, offset=flags_at)
        flags = np.empty(exceptions_at - flags_at << 2, dtype=np.uint8)  # owned, 4 per byte
        _UNPACK.take(packed, axis=0, out=flags.reshape(-1, 4), mode="wrap")  # (all in range)
        if lookback & 3:
            flags = flags[:lookback]
        exceptions = raw[exceptions_at:end]
        if exception_count:  # (an exception code without one decodes as NaN)
            excepted = np.flatnonzero(code_array == EXCEPTION_CODE)
            if excepted.shape[0] != exception_count:
                raise StateDecodeError(
                    f"meter state lists {exception_count} exceptions for {excepted.shape[0]} "
                    f"excepted slots; {_RESET_HINT}"
                )
            values[excepted] = np.frombuffer(exceptions, dtype=VALUE_DTYPE)
        if recent == config.allowed_lateness_slots:
            settled = SettledSlots(head_slot, codes, exceptions)
    has_register = bool(bits & HAS_REGISTER)
    return StateFields(
        head_slot,
        arrival,
        reg_kwh if has_register else None,
        reg_slot if has_register else None,
        values,
        flags,
        settled,
    )


def _decode_v1_slots(raw: bytes, lookback: int) -> tuple[np.ndarray, np.ndarray]:
    """Version 1: float32 values, then one uint8 flag per slot."""
    expected = _HEADER_V1.size + lookback * (VALUE_DTYPE.itemsize + 1) + _CRC.size
    if len(raw) != expected:
        raise StateDecodeError(
            f"meter state has {len(raw)} bytes, expected {expected} for lookback_slots={lookback}"
            f" (format version 1; truncated or padded); {_RESET_HINT}"
        )
    (crc,) = _CRC.unpack_from(raw, expected - _CRC.size)
    if crc != zlib.crc32(memoryview(raw)[: expected - _CRC.size]):
        raise StateDecodeError(f"meter state is corrupt (CRC-32 mismatch); {_RESET_HINT}")
    values = np.frombuffer(raw, dtype=VALUE_DTYPE, count=lookback, offset=_HEADER_V1.size).copy()
    flags = np.frombuffer(
        raw, dtype=np.uint8, count=lookback, offset=_HEADER_V1.size + lookback * 4
    ).copy()
    if int(flags.max()) > MAX_STORED_FLAG:
        raise StateDecodeError(
            f"meter state holds slot flag {int(flags.max())}, stored flags are 0..{MAX_STORED_FLAG}"
            f"; {_RESET_HINT}"
        )
    return values, flags

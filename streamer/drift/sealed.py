"""A small sealed byte envelope for per-key state: header, body, CRC-32.

Little-endian::

    offset  size  field
    0       2     magic (two ASCII letters naming the kind of state)
    2       1     format version
    3       1     flag bits (meaning owned by the caller)
    4       4     fingerprint (uint32) of the parameters that shape the body
    8       ...   body
    end-4   4     CRC-32 of everything before it

Used by the drift detectors and the accuracy state (:mod:`streamer.accuracy`). Equal states give
equal bytes because every body is written field by field in a fixed order.
"""

from __future__ import annotations

import struct
import zlib

from streamer.errors import StreamerError

HEADER = struct.Struct("<2sBBI")
CRC = struct.Struct("<I")
#: Bytes the envelope adds around a body.
OVERHEAD = HEADER.size + CRC.size
#: CRC-32 of any bytes followed by their own CRC-32 (little-endian): a CRC-32 is a bijection of
#: the last four bytes, so the whole envelope has this CRC exactly when its stored CRC is right.
CRC_RESIDUE = 0x2144DF1C

#: what a state may be read from (a tuple: a ``|`` union would be built at every call)
_BYTES_LIKE = (bytes, bytearray, memoryview)
_RESET_HINT = (
    "start this key's state afresh (the worker does so when it catches the error); the "
    "changelog holds state written by another build or configuration"
)


def fingerprint(packed_parameters: bytes) -> int:
    """A uint32 naming a parameter set: CRC-32 of its packed bytes."""
    return zlib.crc32(packed_parameters)


def seal(magic: bytes, version: int, flags: int, fingerprint_: int, body: bytes) -> bytes:
    """``header + body + CRC``; see the module docstring."""
    head = HEADER.pack(magic, version, flags, fingerprint_)
    return b"".join((head, body, CRC.pack(zlib.crc32(body, zlib.crc32(head)))))


def unseal(
    data: bytes | bytearray | memoryview,
    *,
    magic: bytes,
    version: int,
    fingerprint_: int,
    what: str,
    error: type[StreamerError],
) -> tuple[int, bytes]:
    """Check an envelope written by :func:`seal` and return ``(flags, body)``.

    Raises ``error`` (with a message that says what to do) when the bytes are not ``what``, are
    truncated or corrupt, or were written by another format version or parameter set.
    """
    if not isinstance(data, _BYTES_LIKE):
        raise error(
            f"{what} must be bytes, got {type(data).__name__}; configure the table with a raw "
            "(bytes) value serializer"
        )
    raw = data if type(data) is bytes else bytes(data)
    size = len(raw)
    if size < OVERHEAD:
        raise error(f"{what} is truncated ({size} bytes); {_RESET_HINT}")
    got_magic, got_version, flags, got_fingerprint = HEADER.unpack_from(raw)
    if got_magic != magic:
        raise error(
            f"bytes are not {what} (magic {got_magic!r}, expected {magic!r}); {_RESET_HINT}"
        )
    if zlib.crc32(raw) != CRC_RESIDUE:  # the stored CRC-32 is not that of the bytes before it
        raise error(f"{what} is corrupt (CRC-32 mismatch); {_RESET_HINT}")
    if got_version != version:
        raise error(
            f"{what} has format version {got_version}, this build reads version {version}; "
            f"{_RESET_HINT}"
        )
    if got_fingerprint != fingerprint_:
        raise error(
            f"{what} was written with other parameters (fingerprint {got_fingerprint}, this "
            f"configuration gives {fingerprint_}); {_RESET_HINT}"
        )
    return flags, raw[HEADER.size : size - CRC.size]

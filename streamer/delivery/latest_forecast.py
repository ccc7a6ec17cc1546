"""What the latest-forecast table's changelog holds: where a meter's newest forecast is, not a
second copy of it.

A forecast is written once, to ``meter-forecasts``, on its meter's home partition (that of its
readings, state and changelogs) with the forecast's ``issued_at`` as the record's timestamp. The
worker keeps the forecast's JSON in its latest-forecast table in memory (what
``GET /meters/{id}/forecast`` serves), but the table's changelog record is a
:func:`pointer` of 13 bytes: ``b"FP"``, version 1, the partition (u16) and ``issued_at`` in epoch
ms (i64). A worker that recovers the table holds pointers, and resolves one on the first request
for its meter (:mod:`streamer.web.forecast_lookup`): the record of that partition with that
timestamp and the meter's key.
"""

from __future__ import annotations

import struct

MAGIC = b"FP"
VERSION = 1
_POINTER = struct.Struct("<2sBHq")
SIZE = _POINTER.size


def pointer(partition: int, issued_ms: int) -> bytes:
    """The changelog value of a meter whose newest forecast is on ``partition`` of the
    forecasts topic, issued at ``issued_ms``."""
    return _POINTER.pack(MAGIC, VERSION, partition, issued_ms)


def read_pointer(value: bytes) -> tuple[int, int] | None:
    """``(partition, issued_ms)`` of a pointer; None for anything else (a forecast's JSON,
    which starts with ``{``)."""
    if len(value) != SIZE or value[:2] != MAGIC or value[2] != VERSION:
        return None
    _, _, partition, issued_ms = _POINTER.unpack(value)
    return int(partition), int(issued_ms)

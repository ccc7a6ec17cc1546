"""What a row of the state table holds: the source partition, then the meter's state bytes.

The partition is kept with the state so that a timer (which runs outside any event) can write a
tombstone for an expired meter to the right changelog partition: the changelog must stay
co-partitioned with the readings, whatever partitioner the producers used.
"""

from __future__ import annotations

import struct

from streamer.state.errors import StateDecodeError

_PARTITION = struct.Struct("<H")


def pack(partition: int, state_bytes: bytes) -> bytes:
    return _PARTITION.pack(partition) + state_bytes


def unpack(value: bytes) -> tuple[int, bytes]:
    if len(value) < _PARTITION.size:
        raise StateDecodeError(f"state table value of {len(value)} bytes is too short")
    (partition,) = _PARTITION.unpack_from(value)
    return partition, value[_PARTITION.size :]

"""Where a meter lives: the readings partition of its key, as Java's and aiokafka's default
partitioners place it (murmur2 of the key bytes, sign bit cleared, modulo the partitions).

Producers on librdkafka (kcat, confluent-kafka for Python, Go, .NET) place keys by CRC32 by
default (``consistent_random``), so a meter's readings may arrive on another partition: the
worker sends them on to this one (outcome ``rerouted``), where the meter's state, its latest
forecast and its HTTP owner are. Its forecasts are keyed by meter id and placed the same way,
so a consumer can predict their partition with any murmur2 partitioner.
"""

from __future__ import annotations

from aiokafka.partitioner import murmur2


def home_partition(key: bytes, partitions: int) -> int:
    """The partition of ``key`` among ``partitions`` (murmur2, as the Java client)."""
    hashed: int = murmur2(key)
    return (hashed & 0x7FFFFFFF) % partitions

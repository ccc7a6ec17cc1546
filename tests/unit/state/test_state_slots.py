"""The slot grid: a reading belongs to the slot that ends at or after it."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from streamer.state import slot_end_ms, slot_of
from streamer.state.slots import slots_of


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


@pytest.mark.parametrize(
    ("resolution_seconds", "ts", "end"),
    [
        (1800, "2024-03-01T10:30:00", "2024-03-01T10:30:00"),
        (1800, "2024-03-01T10:31:00", "2024-03-01T11:00:00"),
        (1800, "2024-03-01T10:00:00.001", "2024-03-01T10:30:00"),
        (1800, "2024-03-01T23:59:59.999", "2024-03-02T00:00:00"),
        (900, "2024-03-01T10:30:00", "2024-03-01T10:30:00"),
        (900, "2024-03-01T10:31:00", "2024-03-01T10:45:00"),
        (900, "2024-03-01T10:45:00.001", "2024-03-01T11:00:00"),
    ],
)
def test_slot_end(resolution_seconds: int, ts: str, end: str) -> None:
    resolution_ms = resolution_seconds * 1000
    assert slot_end_ms(slot_of(ms(ts), resolution_ms), resolution_ms) == ms(end)


def test_vectorised_slots_match_scalar() -> None:
    ts = np.array([0, 1, 899_999, 900_000, 900_001, -1, -900_000, -900_001], dtype=np.int64)
    expected = [slot_of(int(t), 900_000) for t in ts]
    assert slots_of(ts, 900_000).tolist() == expected
    assert expected == [0, 1, 1, 1, 2, 0, -1, -1]

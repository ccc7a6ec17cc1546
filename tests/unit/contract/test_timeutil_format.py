"""format_ts_array formats like format_ts, value by value."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from streamer.timeutil import format_ts, format_ts_array


def reference_ts(ts_ms: int) -> str:
    seconds, millis = divmod(int(ts_ms), 1000)
    text = datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{millis:03d}Z" if millis else f"{text}Z"


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.integers(0, 253_402_300_799_999),
            st.integers(0, 4_000_000_000).map(lambda s: s * 1000),
            st.integers(-10_000_000_000_000, -1),
        ),
        max_size=60,
    )
)
def test_array_formatting_matches_format_ts(values: list[int]) -> None:
    expected = [reference_ts(v) for v in values]
    assert format_ts_array(np.array(values, dtype=np.int64)) == expected
    assert [format_ts(v) for v in values] == expected


def test_examples() -> None:
    ends = np.array([1_795_431_600_000, 1_795_431_600_250], dtype=np.int64)
    assert format_ts_array(ends) == ["2026-11-23T11:00:00Z", "2026-11-23T11:00:00.250Z"]
    assert format_ts(int(np.int64(1_795_431_600_250))) == "2026-11-23T11:00:00.250Z"
    assert format_ts_array(np.empty(0, dtype=np.int64)) == []

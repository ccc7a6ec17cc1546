"""to_bytes / from_bytes: round trip, determinism and every way bytes can be wrong."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamer.state import MeterState, StateDecodeError, WindowConfig
from streamer.state.codec import encoded_size

T0_MS = 1_709_251_200_000
R_MS = 1_800_000
CONFIG = WindowConfig(resolution_seconds=1800, lookback_slots=336, allowed_lateness_slots=48)


def sample_state() -> MeterState:
    state = MeterState.new(CONFIG)
    for k in range(0, 400, 3):
        state.update(T0_MS + k * R_MS, k / 7, T0_MS + k * R_MS + 1000)
    state.update(T0_MS + 399 * R_MS, 1.0, 5)  # correction
    state.update_register(T0_MS + 400 * R_MS, 12_345.5, 7)
    state.update_register(T0_MS + 403 * R_MS, 12_348.5, 9)
    return state


def reseal(data: bytes) -> bytes:
    """Recompute the CRC so a deliberately edited header reaches the later checks."""
    body = data[:-4]
    return body + struct.pack("<I", zlib.crc32(body))


def test_size_is_under_two_kilobytes_at_lookback_336() -> None:
    data = sample_state().to_bytes()
    assert len(data) == encoded_size(336) == 1724
    assert len(MeterState.new(CONFIG).to_bytes()) == 1724


def test_round_trip_keeps_everything() -> None:
    state = sample_state()
    data = state.to_bytes()
    back = MeterState.from_bytes(data, CONFIG)
    assert back.to_bytes() == data
    assert back.head_slot == state.head_slot
    assert back.last_arrival_ms == state.last_arrival_ms
    assert back.register_baseline == state.register_baseline
    a, b = state.get(), back.get()
    np.testing.assert_array_equal(a.values_kwh, b.values_kwh)
    np.testing.assert_array_equal(a.flags, b.flags)
    assert (a.end_ms, a.observed_fraction) == (b.end_ms, b.observed_fraction)


def test_decoded_state_is_independent_and_writable() -> None:
    data = bytearray(sample_state().to_bytes())
    back = MeterState.from_bytes(bytes(data), CONFIG)
    head = back.head_slot
    assert head is not None
    back.update((head + 1) * R_MS, 2.0, 10**13)
    assert MeterState.from_bytes(bytes(data), CONFIG).head_slot == head


def test_empty_state_round_trips() -> None:
    data = MeterState.new(CONFIG).to_bytes()
    back = MeterState.from_bytes(data, CONFIG)
    assert back.head_slot is None
    assert back.register_baseline is None
    assert back.to_bytes() == data


def test_accepts_memoryview_and_bytearray() -> None:
    data = sample_state().to_bytes()
    assert MeterState.from_bytes(memoryview(data), CONFIG).to_bytes() == data  # type: ignore[arg-type]
    assert MeterState.from_bytes(bytearray(data), CONFIG).to_bytes() == data  # type: ignore[arg-type]


def test_equal_histories_give_equal_bytes() -> None:
    assert sample_state().to_bytes() == sample_state().to_bytes()


@pytest.mark.parametrize("cut", [0, 1, 10, 43, 1000, 1723])
def test_truncated_bytes(cut: int) -> None:
    data = sample_state().to_bytes()[:cut]
    with pytest.raises(StateDecodeError, match=r"truncated|bytes are not|expected 1724"):
        MeterState.from_bytes(data, CONFIG)


def test_padded_bytes() -> None:
    with pytest.raises(StateDecodeError, match="expected 1724"):
        MeterState.from_bytes(sample_state().to_bytes() + b"\x00", CONFIG)


@pytest.mark.parametrize("position", [45, 500, 1500, 1700, 1721])
def test_flipped_bit_is_corrupt(position: int) -> None:
    data = bytearray(sample_state().to_bytes())
    data[position] ^= 0x10
    with pytest.raises(StateDecodeError, match="corrupt"):
        MeterState.from_bytes(bytes(data), CONFIG)


def test_wrong_magic() -> None:
    data = b"XX" + sample_state().to_bytes()[2:]
    with pytest.raises(StateDecodeError, match="not meter state"):
        MeterState.from_bytes(data, CONFIG)


def test_other_version_says_so() -> None:
    data = bytearray(sample_state().to_bytes())
    data[2] = 2
    with pytest.raises(StateDecodeError, match="format version 2, this build reads version 1"):
        MeterState.from_bytes(reseal(bytes(data)), CONFIG)


@pytest.mark.parametrize(
    "other",
    [
        WindowConfig(900, 336, 48),
        WindowConfig(1800, 672, 48),
    ],
)
def test_other_config_names_the_fields(other: WindowConfig) -> None:
    with pytest.raises(StateDecodeError, match=r"resolution_seconds=.*lookback_slots="):
        MeterState.from_bytes(sample_state().to_bytes(), other)


def test_other_lateness_reads_fine() -> None:
    relaxed = WindowConfig(1800, 336, allowed_lateness_slots=336, interpolate_max_gap_slots=8)
    data = sample_state().to_bytes()
    assert MeterState.from_bytes(data, relaxed).to_bytes() == data


def test_bad_flag_and_unknown_header_bits() -> None:
    data = bytearray(sample_state().to_bytes())
    data[40 + 4 * 336] = 4  # IMPUTED_* is never stored
    with pytest.raises(StateDecodeError, match="slot flag 4"):
        MeterState.from_bytes(reseal(bytes(data)), CONFIG)
    data = bytearray(sample_state().to_bytes())
    data[3] |= 0x80
    with pytest.raises(StateDecodeError, match="unknown bits"):
        MeterState.from_bytes(reseal(bytes(data)), CONFIG)


def test_not_bytes() -> None:
    with pytest.raises(StateDecodeError, match="raw \\(bytes\\) value serializer"):
        MeterState.from_bytes("MS...", CONFIG)  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.booleans(),
            st.integers(0, 60),
            st.floats(0.0, 1e5, allow_subnormal=False),
            st.integers(0, 2**40),
        ),
        max_size=60,
    )
)
def test_any_history_round_trips(ops: list[tuple[bool, int, float, int]]) -> None:
    config = WindowConfig(900, lookback_slots=16, allowed_lateness_slots=5)
    state = MeterState.new(config)
    for is_register, k, value, arrival in ops:
        ts = T0_MS + k * 900_000
        if is_register:
            state.update_register(ts, value, arrival)
        else:
            state.update(ts, value, arrival)
    data = state.to_bytes()
    back = MeterState.from_bytes(data, config)
    assert back.to_bytes() == data
    assert back.register_baseline == state.register_baseline
    assert back.last_arrival_ms == state.last_arrival_ms

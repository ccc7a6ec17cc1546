"""to_bytes / from_bytes: round trip, determinism, settled-slot rounding and every way bytes can
be wrong."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamer.state import MeterState, Outcome, StateDecodeError, WindowConfig
from streamer.state.codec import (
    CODE_VALUES,
    EXCEPTION_CODE,
    NAN_CODE,
    StateFields,
    _settle_array,
    decode_state,
    encoded_size,
    settle,
)

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


def v1_bytes(state: MeterState) -> bytes:
    """``state`` in the version-1 layout (float32 values, uint8 flags), as older builds wrote."""
    fields = decode_state(state.to_bytes(), state.config)
    bits = (fields.head_slot is not None) | (fields.register_kwh is not None) << 1
    header = struct.pack(
        "<2sBBIqqdq",
        b"MS",
        1,
        bits,
        state.config.fingerprint(),
        fields.head_slot or 0,
        fields.last_arrival_ms,
        fields.register_kwh or 0.0,
        fields.register_slot or 0,
    )
    body = header + fields.values_kwh.astype("<f4").tobytes() + fields.flags.astype("u1").tobytes()
    return body + struct.pack("<I", zlib.crc32(body))


def bits_of(values: np.ndarray) -> np.ndarray:
    return np.asarray(values, dtype=np.float32).view(np.uint32)


# ---------------------------------------------------------------------------------- layout


def test_size_is_under_two_kilobytes_at_lookback_336() -> None:
    data = sample_state().to_bytes()
    # 44-byte header, 288 settled slots x 2, 48 recent slots x 4, 336 flags x 2 bits, CRC
    assert len(data) == encoded_size(336, 48) == 44 + 576 + 192 + 84 + 4 == 900
    assert len(MeterState.new(CONFIG).to_bytes()) == 900


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


def test_recent_slots_are_exact_and_settled_ones_rounded_in_memory_too() -> None:
    state = MeterState.new(CONFIG)
    exact = [np.float32(k / 70) for k in range(336)]  # up to 4.8 kWh
    for k in range(336):
        state.update(T0_MS + k * R_MS, float(exact[k]), 0)
    state.to_bytes()
    values = state.get().values_kwh
    np.testing.assert_array_equal(bits_of(values[-48:]), bits_of(exact[-48:]))
    settled = [settle(float(v)) for v in exact[:-48]]
    np.testing.assert_array_equal(bits_of(values[:-48]), bits_of(settled))
    error = np.abs(values[:-48].astype(np.float64) - np.array(exact[:-48], dtype=np.float64))
    assert 0 < error.max() <= 0.0005 * 1.000001  # 1 Wh steps up to 8.19 kWh
    back = MeterState.from_bytes(state.to_bytes(), CONFIG)
    np.testing.assert_array_equal(bits_of(back.get().values_kwh), bits_of(values))


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


@pytest.mark.parametrize("lookback", [2, 5, 13, 16])
def test_flags_pack_for_any_lookback(lookback: int) -> None:
    config = WindowConfig(1800, lookback, 1)
    state = MeterState.new(config)
    for k in range(0, 3 * lookback, 2):
        state.update(T0_MS + k * R_MS, 0.25, 0)
        state.update(T0_MS + k * R_MS, 0.5, 0)  # CORRECTED
    state.update_register(T0_MS + 3 * lookback * R_MS, 100.0, 0)
    state.update_register(T0_MS + (3 * lookback + 2) * R_MS, 101.0, 0)  # REGISTER_SPREAD x 2
    data = state.to_bytes()
    assert len(data) == encoded_size(lookback, 1)
    back = MeterState.from_bytes(data, config)
    np.testing.assert_array_equal(back.get().flags, state.get().flags)
    assert back.to_bytes() == data


# ------------------------------------------------------------------------ settled rounding


def test_every_canonical_code_decodes_and_encodes_back_to_itself() -> None:
    codes = np.arange(1 << 16)
    step, mantissa = codes >> 14, (codes & 0x3FFF) - 8192
    # what the encoder makes: |m| <= 8185, and |m| >= 819 past the first step
    canonical = (np.abs(mantissa) <= 8185) & ((step == 0) | (np.abs(mantissa) >= 819))
    canonical[[EXCEPTION_CODE, NAN_CODE]] = False
    values = CODE_VALUES[canonical].copy()
    again, exceptions = _settle_array(values)
    np.testing.assert_array_equal(again, codes[canonical])
    np.testing.assert_array_equal(bits_of(values), bits_of(CODE_VALUES[canonical]))
    assert exceptions.size == 0
    assert CODE_VALUES[8192] == 0.0 and CODE_VALUES[8192 + 1234] == np.float32(0.1234)
    assert CODE_VALUES[3 * 16384 + 8192 - 8185] == np.float32(-818.5)


@pytest.mark.parametrize("scale", [1e-4, 1e-2, 1.0, 10.0, 100.0, 400.0])
def test_rounding_error_bound_and_idempotence(scale: float) -> None:
    rng = np.random.default_rng(int(scale * 1e4))
    values = (rng.standard_normal(50_000) * scale).astype(np.float32)
    values = values[np.abs(values) < 818.51]
    rounded = values.copy()
    codes, exceptions = _settle_array(rounded)
    assert exceptions.size == 0
    np.testing.assert_array_equal(bits_of(CODE_VALUES[codes]), bits_of(rounded))
    x, y = values.astype(np.float64), rounded.astype(np.float64)
    bound = np.where(np.abs(x) < 0.81851, 0.00005, 0.000611 * np.abs(x))
    assert (np.abs(y - x) <= bound + 6e-8 * np.abs(x)).all()  # + float32 rounding
    twice = rounded.copy()
    again, _ = _settle_array(twice)
    np.testing.assert_array_equal(again, codes)
    np.testing.assert_array_equal(bits_of(twice), bits_of(rounded))
    sample = values[:2000].tolist()
    np.testing.assert_array_equal(bits_of([settle(v) for v in sample]), bits_of(rounded[:2000]))


def test_whole_watt_hours_are_exact_below_8_185_kwh() -> None:
    wh = np.arange(-8185, 8186)
    values = np.array([float(f"{k / 1000:.3f}") for k in wh], dtype=np.float32)  # as parsed
    rounded = values.copy()
    _settle_array(rounded)
    np.testing.assert_array_equal(bits_of(rounded), bits_of(values))
    tens = (np.arange(-8185, 8186) * 10 / 1000).astype(np.float32)
    rounded = tens.copy()
    _settle_array(rounded)
    np.testing.assert_array_equal(bits_of(rounded), bits_of(tens))


@settings(max_examples=300, deadline=None)
@given(st.floats(width=32, allow_infinity=False))
def test_settle_is_idempotent_and_matches_the_encoder(kwh: float) -> None:
    once = settle(kwh)
    array = np.array([kwh], np.float32)
    codes, exceptions = _settle_array(array)
    assert bits_of([once])[0] == bits_of(array)[0]
    if np.isnan(kwh):
        assert codes[0] == NAN_CODE and np.isnan(once)
        return
    assert settle(once) == once
    if abs(kwh) >= 818.51:
        assert once == kwh and exceptions.size == 1 and codes[0] == EXCEPTION_CODE
    else:
        assert abs(once - kwh) <= max(0.00005, 0.000611 * abs(kwh)) + 6e-8 * abs(kwh)


def big_values_state() -> MeterState:
    config = WindowConfig(1800, 336, 48, register_max_kwh_per_slot=5000.0)
    state = MeterState.new(config)
    for k, kwh in enumerate([900.5, -1234.567, 0.3, 818.4, -0.00004]):
        state.update(T0_MS + k * R_MS, kwh, 0)
    state.update(T0_MS + 100 * R_MS, 1.0, 0)  # the five are settled now
    return state


def test_big_values_are_exceptions_kept_exactly() -> None:
    state = big_values_state()
    data = state.to_bytes()
    assert len(data) == encoded_size(336, 48, exceptions=2) == 908
    back = MeterState.from_bytes(data, state.config)
    values = back.get().values_kwh[336 - 101 : 336 - 96]
    expected = [900.5, -1234.567, 0.3, 818.4, 0.0]  # the last +0.0
    np.testing.assert_array_equal(bits_of(values), bits_of(expected))
    assert back.to_bytes() == data
    # the exceptions leave the window with their slots
    for k in range(101, 101 + 240):
        back.update(T0_MS + k * R_MS, 0.5, 0)
        state.update(T0_MS + k * R_MS, 0.5, 0)
        if k % 37 == 0:
            assert back.to_bytes() == state.to_bytes()
    assert len(back.to_bytes()) == len(state.to_bytes()) == 900


def test_a_replay_of_a_settled_slot_is_a_duplicate_kept_or_read_back() -> None:
    state = MeterState.new(CONFIG)
    kwh = 0.123456  # not whole Wh: the settled slot holds it rounded
    state.update(T0_MS, kwh, 0)
    state.update(T0_MS + 60 * R_MS, 1.0, 0)
    kept = MeterState.from_bytes(state.to_bytes(), CONFIG)  # `state` is rounded in memory too
    fresh = MeterState.new(CONFIG)
    fresh.update(T0_MS, kwh, 0)
    fresh.update(T0_MS + 60 * R_MS, 1.0, 0)  # not written: still exact in memory
    for s in (state, kept, fresh):
        assert s.update(T0_MS, kwh, 1) is Outcome.DUPLICATE
        assert s.update(T0_MS, kwh + 0.001, 1) is Outcome.TOO_LATE
        assert s.update(T0_MS, kwh + 0.00001, 1) is Outcome.DUPLICATE  # same as stored


def afresh(state: MeterState) -> MeterState:
    """A copy of ``state`` (its arrays as they are in memory) without its kept settled codes,
    so that its encoding starts from scratch."""
    baseline = state.register_baseline
    fields = StateFields(
        state.head_slot,
        state.last_arrival_ms,
        None if baseline is None else baseline[0],
        None if baseline is None else baseline[1],
        state._values.copy(),
        state._flags.copy(),
    )
    return MeterState(state.config, fields)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["kwh", "kwh", "kwh", "register", "write"]),
            st.integers(-3, 40),
            st.one_of(st.floats(-3.0, 3.0, width=32), st.floats(0.0, 2e3)),
        ),
        max_size=80,
    )
)
def test_encoding_only_newly_settled_slots_gives_the_full_encoding(
    ops: list[tuple[str, int, float]],
) -> None:
    config = WindowConfig(900, lookback_slots=24, allowed_lateness_slots=5)
    state = MeterState.new(config)
    top = 0
    for kind, step, value in ops:
        if kind == "write":
            data = state.to_bytes()
            assert data == afresh(state).to_bytes()
            state = MeterState.from_bytes(data, config) if step % 2 else state
            continue
        top = max(top, top + step)
        ts = T0_MS + (top if step >= 0 else top + step) * 900_000
        if kind == "register":
            state.update_register(ts, abs(value), 0)
        else:
            state.update(ts, value, 0)
    assert state.to_bytes() == afresh(state).to_bytes()


# ---------------------------------------------------------------------------------- version 1


def test_version_1_is_read() -> None:
    state = sample_state()
    old = v1_bytes(state)
    assert len(old) == 1724
    back = MeterState.from_bytes(old, CONFIG)
    assert back.to_bytes() == state.to_bytes()
    assert (back.head_slot, back.last_arrival_ms, back.register_baseline) == (
        state.head_slot,
        state.last_arrival_ms,
        state.register_baseline,
    )
    empty = MeterState.new(CONFIG)
    assert MeterState.from_bytes(v1_bytes(empty), CONFIG).to_bytes() == empty.to_bytes()


def test_version_1_is_checked() -> None:
    old = bytearray(v1_bytes(sample_state()))
    with pytest.raises(StateDecodeError, match=r"expected 1724 .*format version 1"):
        MeterState.from_bytes(bytes(old[:-1]), CONFIG)
    old[100] ^= 1
    with pytest.raises(StateDecodeError, match="corrupt"):
        MeterState.from_bytes(bytes(old), CONFIG)
    old[100] ^= 1
    old[40 + 4 * 336] = 4  # IMPUTED_* is never stored
    with pytest.raises(StateDecodeError, match="slot flag 4"):
        MeterState.from_bytes(reseal(bytes(old)), CONFIG)


# ------------------------------------------------------------------------------- bad bytes


@pytest.mark.parametrize("cut", [0, 1, 10, 43, 47, 500, 899])
def test_truncated_bytes(cut: int) -> None:
    data = sample_state().to_bytes()[:cut]
    with pytest.raises(StateDecodeError, match=r"truncated|bytes are not|expected 900"):
        MeterState.from_bytes(data, CONFIG)


def test_padded_bytes() -> None:
    with pytest.raises(StateDecodeError, match="expected 900"):
        MeterState.from_bytes(sample_state().to_bytes() + b"\x00", CONFIG)


@pytest.mark.parametrize("position", [45, 500, 700, 850, 897])
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
    data[2] = 3
    with pytest.raises(StateDecodeError, match="format version 3, this build reads versions 1"):
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


@pytest.mark.parametrize("lateness", [1, 47, 49, 336])
def test_other_lateness_reads_fine(lateness: int) -> None:
    other = WindowConfig(1800, 336, allowed_lateness_slots=lateness, interpolate_max_gap_slots=8)
    state = sample_state()
    data = state.to_bytes()
    back = MeterState.from_bytes(data, other)
    np.testing.assert_array_equal(back.get().values_kwh, state.get().values_kwh)
    rewritten = back.to_bytes()  # with this config's recent slots
    assert len(rewritten) == encoded_size(336, lateness)
    if lateness >= 48:  # nothing was rounded further
        assert MeterState.from_bytes(rewritten, CONFIG).to_bytes() == data


def test_bad_counts_and_unknown_header_bits() -> None:
    data = bytearray(sample_state().to_bytes())
    data[40:42] = struct.pack("<H", 337)
    with pytest.raises(StateDecodeError, match="337 recent slots"):
        MeterState.from_bytes(reseal(bytes(data)), CONFIG)
    big = big_values_state()
    data = bytearray(big.to_bytes())
    first = 44 + 2 * (336 - 48 - 101 + 48)  # the code of the slot holding 900.5
    assert data[first : first + 2] == struct.pack("<H", EXCEPTION_CODE)
    data[first : first + 2] = struct.pack("<H", 8192)
    with pytest.raises(StateDecodeError, match="2 exceptions for 1 excepted"):
        MeterState.from_bytes(reseal(bytes(data)), big.config)
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
    if state.head_slot is not None:
        got, want = back.get().values_kwh, state.get().values_kwh
        np.testing.assert_array_equal(bits_of(got), bits_of(want))


def test_a_register_spread_over_settled_slots_is_encoded_afresh() -> None:
    # a mixed meter: interval readings move the head on, then a register delta lands on slots
    # that are settled already (register readings are not held to allowed_lateness_slots)
    config = WindowConfig(1800, 24, 4)
    state = MeterState.new(config)
    state.update_register(T0_MS, 100.0, 0)
    for k in range(1, 16):
        state.update(T0_MS + k * R_MS, 0.25, 0)
    state.to_bytes()  # keeps the settled codes
    state.update_register(T0_MS + 10 * R_MS, 101.2345, 0)  # spreads over slots 1..10, settled
    data = state.to_bytes()
    assert data == afresh(state).to_bytes()
    spread = decode_state(data, config).values_kwh[24 - 16 + 1 : 24 - 16 + 11]
    each = settle(float(np.float32((101.2345 - 100.0) / 10)))  # rounded to 0.1 Wh
    np.testing.assert_array_equal(bits_of(spread), bits_of([each] * 10))
    state.update_register(T0_MS + 10 * R_MS, 101.5, 0)  # the same slot again: added to slot 10
    assert state.to_bytes() == afresh(state).to_bytes()


def test_a_first_reading_encodes_as_from_scratch_and_its_settled_codes_are_kept() -> None:
    # an empty state's first reading (an interval reading, a register baseline) knows its
    # settled slots are all MISSING without encoding them; a backfill in order writes settled
    # slots and encodes them as ever
    config = WindowConfig(1800, 24, 4)
    first = MeterState.new(config)
    first.update(T0_MS + 30 * R_MS, 0.5, 0)
    assert first._settled is not None  # known from the empty window, not encoded
    assert first.to_bytes() == afresh(first).to_bytes()
    codes = first._settled.codes
    assert codes == struct.pack("<H", NAN_CODE) * 20
    first.update(T0_MS + 31 * R_MS, 0.25, 0)
    first.update(T0_MS + 29 * R_MS, 0.125, 0)  # late, recent
    assert first.to_bytes() == afresh(first).to_bytes()

    register = MeterState.new(config)
    register.update_register(T0_MS + 30 * R_MS, 100.0, 0)
    assert register.to_bytes() == afresh(register).to_bytes()
    register.update_register(T0_MS + 33 * R_MS, 101.5, 0)  # spread over recent slots
    assert register.to_bytes() == afresh(register).to_bytes()

    backfill = MeterState.new(config)
    slots = np.arange(1, 31)
    backfill._extend_in_order(slots, np.linspace(0.1, 3.0, 30), 0)
    assert backfill.to_bytes() == afresh(backfill).to_bytes()
    assert decode_state(backfill.to_bytes(), config).values_kwh[0] == settle(
        float(np.float32(np.linspace(0.1, 3.0, 30)[6]))
    )

    # a state whose window is not empty without a head (built from fields) is encoded afresh
    fields = StateFields(
        None, 0, None, None, np.full(24, 0.75, np.float32), np.full(24, 1, np.uint8)
    )
    odd = MeterState(config, fields)
    odd.update(T0_MS + 30 * R_MS, 0.5, 0)
    assert odd._settled is None
    assert odd.to_bytes() == afresh(odd).to_bytes()

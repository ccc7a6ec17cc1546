"""impute(): exact values on hand-made windows."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamer.state import SlotFlag, impute
from streamer.state.imputation import impute_rows

# short names keep the hand-made windows readable
M = SlotFlag.MISSING
OB = SlotFlag.OBSERVED
CO = SlotFlag.CORRECTED
SP = SlotFlag.REGISTER_SPREAD
IN = SlotFlag.IMPUTED_INTERPOLATED
D = SlotFlag.IMPUTED_DAY
W = SlotFlag.IMPUTED_WEEK
NAN = float("nan")


def window(pairs: Sequence[tuple[float, int]]) -> tuple[np.ndarray, np.ndarray]:
    values = np.array([v for v, _ in pairs], dtype=np.float32)
    flags = np.array([f for _, f in pairs], dtype=np.uint8)
    return values, flags


def test_interior_gap_of_two_is_interpolated() -> None:
    values, flags = window([(1.0, OB), (NAN, M), (NAN, M), (4.0, CO), (5.0, SP)])
    out_v, out_f = impute(values, flags, slots_per_day=48, interpolate_max_gap_slots=4)
    assert out_v.tolist() == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert out_f.tolist() == [OB, IN, IN, CO, SP]
    assert out_v.dtype == np.float64
    assert out_f.dtype == np.uint8


def test_inputs_are_not_modified() -> None:
    values, flags = window([(1.0, OB), (NAN, M), (3.0, OB)])
    before_v, before_f = values.copy(), flags.copy()
    impute(values, flags, 48, 4)
    np.testing.assert_array_equal(values, before_v)
    np.testing.assert_array_equal(flags, before_f)


def test_long_gap_takes_the_same_slot_one_day_earlier() -> None:
    # 4 slots per day; the gap at index 5..7 (3 slots) exceeds interpolate_max_gap_slots=2.
    values, flags = window(
        [
            (1.0, OB),
            (2.0, OB),
            (3.0, OB),
            (4.0, OB),
            (5.0, OB),
            (NAN, M),
            (NAN, M),
            (NAN, M),
            (9.0, OB),
        ]
    )
    out_v, out_f = impute(values, flags, slots_per_day=4, interpolate_max_gap_slots=2)
    assert out_v.tolist() == [1.0, 2.0, 3.0, 4.0, 5.0, 2.0, 3.0, 4.0, 9.0]
    assert out_f.tolist() == [OB, OB, OB, OB, OB, D, D, D, OB]


def test_long_gap_falls_back_to_one_week_earlier() -> None:
    # 1 slot per day, so one week is 7 slots back; index 6..9 is a gap of 4 > 3.
    pairs = [(10.0, OB), (11.0, OB), (12.0, OB), (13.0, OB), (14.0, OB), (15.0, OB)]
    pairs += [(NAN, M), (NAN, M), (NAN, M), (NAN, M), (20.0, OB)]
    values, flags = window(pairs)
    out_v, out_f = impute(values, flags, slots_per_day=1, interpolate_max_gap_slots=3)
    # gap 6..9 has length 4 > 3. Index 6: day -> 5 (15.0). Index 7: day -> 6 is missing (not a
    # real source even though it gets imputed), week -> 0 (10.0). Index 8: week -> 1 (11.0).
    # Index 9: week -> 2 (12.0).
    assert out_v.tolist()[6:10] == [15.0, 10.0, 11.0, 12.0]
    assert out_f.tolist()[6:10] == [D, W, W, W]


def test_unfillable_slots_stay_nan_and_missing() -> None:
    values, flags = window([(NAN, M), (NAN, M), (3.0, OB), (NAN, M), (NAN, M), (NAN, M), (7.0, OB)])
    out_v, out_f = impute(values, flags, slots_per_day=48, interpolate_max_gap_slots=2)
    assert np.isnan(out_v[[0, 1, 3, 4, 5]]).all()
    assert out_v[[2, 6]].tolist() == [3.0, 7.0]
    assert out_f.tolist() == [M, M, OB, M, M, M, OB]


def test_leading_gap_is_never_interpolated() -> None:
    # 2 slots per day: index 0..1 lead (no day/week source), index 2..3 gap of 2 (interior).
    values, flags = window([(NAN, M), (NAN, M), (NAN, M), (5.0, OB), (6.0, OB)])
    out_v, out_f = impute(values, flags, slots_per_day=2, interpolate_max_gap_slots=4)
    assert np.isnan(out_v[:3]).all()
    assert out_f.tolist() == [M, M, M, OB, OB]


def test_trailing_gap_uses_day_not_interpolation() -> None:
    values, flags = window([(1.0, OB), (2.0, OB), (3.0, OB), (NAN, M)])
    out_v, out_f = impute(values, flags, slots_per_day=2, interpolate_max_gap_slots=4)
    assert out_v.tolist() == [1.0, 2.0, 3.0, 2.0]
    assert out_f.tolist() == [OB, OB, OB, D]


def test_gap_exactly_at_limit_interpolates_and_one_more_does_not() -> None:
    at_limit = window([(0.0, OB), (NAN, M), (NAN, M), (NAN, M), (4.0, OB)])
    v, f = impute(*at_limit, slots_per_day=100, interpolate_max_gap_slots=3)
    assert v.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
    over = window([(0.0, OB), (NAN, M), (NAN, M), (NAN, M), (NAN, M), (5.0, OB)])
    v, f = impute(*over, slots_per_day=100, interpolate_max_gap_slots=3)
    assert np.isnan(v[1:5]).all()
    assert f.tolist() == [OB, M, M, M, M, OB]


def test_zero_max_gap_disables_interpolation() -> None:
    values, flags = window([(1.0, OB), (NAN, M), (3.0, OB)])
    v, f = impute(values, flags, slots_per_day=1, interpolate_max_gap_slots=0)
    assert v.tolist() == [1.0, 1.0, 3.0]
    assert f.tolist() == [OB, D, OB]


def test_imputed_values_never_feed_other_imputations() -> None:
    # Index 2 is interpolated from 1 and 3. Index 4..6 is a long gap: the day source of index 4
    # is index 2, which is only imputed, so index 4 stays missing; index 5 takes index 3.
    values, flags = window(
        [(NAN, M), (1.0, OB), (NAN, M), (3.0, OB), (NAN, M), (NAN, M), (NAN, M), (8.0, OB)]
    )
    v, f = impute(values, flags, slots_per_day=2, interpolate_max_gap_slots=1)
    assert v[2] == 2.0
    assert f[2] == IN
    assert np.isnan(v[4])
    assert f.tolist()[4:7] == [M, D, M]
    assert v[5] == 3.0


def test_all_missing_and_all_known() -> None:
    v, f = impute(np.full(4, np.nan), np.zeros(4, dtype=np.uint8), 1, 4)
    assert np.isnan(v).all()
    assert (f == M).all()
    v, f = impute(np.arange(4.0), np.ones(4, dtype=np.uint8), 1, 4)
    assert v.tolist() == [0.0, 1.0, 2.0, 3.0]


def test_mismatched_shapes_are_rejected() -> None:
    with pytest.raises(ValueError, match="one length"):
        impute(np.zeros(3), np.zeros(4, dtype=np.uint8), 1, 4)


@st.composite
def windows(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, int, int]:
    n = draw(st.integers(1, 80))
    flags = np.array(draw(st.lists(st.sampled_from([0, 0, 1, 2, 3]), min_size=n, max_size=n)))
    values = np.array(
        draw(st.lists(st.floats(0.0, 50.0, width=32), min_size=n, max_size=n)), dtype=np.float32
    )
    values[flags == 0] = np.nan
    return values, flags.astype(np.uint8), draw(st.integers(1, 30)), draw(st.integers(0, 6))


@settings(max_examples=200, deadline=None)
@given(windows())
def test_real_values_are_kept_and_imputed_values_come_from_real_ones(
    case: tuple[np.ndarray, np.ndarray, int, int],
) -> None:
    values, flags, per_day, max_gap = case
    out_v, out_f = impute(values, flags, per_day, max_gap)
    real = flags > 0
    np.testing.assert_array_equal(out_v[real], values[real].astype(np.float64))
    np.testing.assert_array_equal(out_f[real], flags[real])
    assert set(np.unique(out_f[~real]).tolist()) <= {M, IN, D, W}
    assert np.isnan(out_v[out_f == M]).all()
    assert np.isfinite(out_v[out_f != M]).all()
    for i in np.flatnonzero(out_f == D):
        assert real[i - per_day] and out_v[i] == values[i - per_day]
    for i in np.flatnonzero(out_f == W):
        assert real[i - 7 * per_day] and out_v[i] == values[i - 7 * per_day]
        assert i - per_day < 0 or not real[i - per_day]
    known = np.flatnonzero(real)
    if known.size:
        lo, hi = values[known].min(), values[known].max()
        interp = out_v[out_f == IN]
        assert ((interp >= lo - 1e-9) & (interp <= hi + 1e-9)).all()


@st.composite
def window_rows(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Several windows of one length: gaps of every kind, NaN under a real flag, rows with no
    gap and rows with no real value, slots_per_day below, within and beyond the window."""
    n = draw(st.integers(1, 80))
    rows = draw(st.integers(1, 6))
    kind = st.sampled_from(["mixed", "gappy", "full", "empty"])
    values = np.empty((rows, n), dtype=np.float32)
    flags = np.empty((rows, n), dtype=np.uint8)
    for r in range(rows):
        choice = draw(kind)
        palette = {"mixed": [0, 0, 1, 2, 3], "gappy": [0, 0, 0, 0, 1], "full": [1, 2, 3]}
        row_flags = (
            [0] * n
            if choice == "empty"
            else draw(st.lists(st.sampled_from(palette[choice]), min_size=n, max_size=n))
        )
        flags[r] = row_flags
        values[r] = draw(
            st.lists(
                st.one_of(st.floats(-5.0, 50.0, width=32), st.just(float("nan"))),
                min_size=n,
                max_size=n,
            )
        )
    values[flags == 0] = np.nan
    return values, flags, draw(st.integers(1, 30)), draw(st.integers(0, 6))


@settings(max_examples=300, deadline=None)
@given(window_rows())
def test_rows_imputed_together_equal_each_row_imputed_alone(
    case: tuple[np.ndarray, np.ndarray, int, int],
) -> None:
    values, flags, per_day, max_gap = case
    before_v, before_f = values.copy(), flags.copy()
    out_v, out_f = impute_rows(values, flags, per_day, max_gap)
    assert out_v.dtype == np.float64 and out_f.dtype == np.uint8
    assert out_v.shape == out_f.shape == values.shape
    for i in range(values.shape[0]):
        row_v, row_f = impute(values[i], flags[i], per_day, max_gap)
        assert out_v[i].tobytes() == row_v.tobytes()  # the same doubles, NaN included
        np.testing.assert_array_equal(out_f[i], row_f)
    np.testing.assert_array_equal(values, before_v)
    np.testing.assert_array_equal(flags, before_f)


@pytest.mark.parametrize("seed", range(5))
def test_rows_imputed_together_on_week_long_windows(seed: int) -> None:
    """336-slot windows (a week of 30 minutes) with random gaps, as the worker reads them."""
    rng = np.random.default_rng(seed)
    rows, n = 64, 336
    values = rng.gamma(2.0, 0.2, size=(rows, n)).astype(np.float32)
    flags = rng.choice(np.array([1, 2, 3], dtype=np.uint8), size=(rows, n), p=[0.9, 0.05, 0.05])
    for r in range(rows):
        for _ in range(rng.integers(0, 6)):  # gaps of 1 to 100 slots
            start = int(rng.integers(0, n))
            flags[r, start : start + int(rng.integers(1, 100))] = 0
    values[flags == 0] = np.nan
    out_v, out_f = impute_rows(values, flags, 48, 4)
    for i in range(rows):
        row_v, row_f = impute(values[i], flags[i], 48, 4)
        assert out_v[i].tobytes() == row_v.tobytes()
        np.testing.assert_array_equal(out_f[i], row_f)


def _impute_slot_by_slot(
    values: np.ndarray, flags: np.ndarray, per_day: int, max_gap: int
) -> tuple[np.ndarray, np.ndarray]:
    """impute()'s rules written out one slot at a time: the reference for impute_rows."""
    real = ((flags >= 1) & (flags <= 3)) & np.isfinite(values)
    out_v = np.where(real, values, np.nan).astype(np.float64)
    out_f = np.where(real, flags, M).astype(np.uint8)
    n = values.shape[0]
    for s in np.flatnonzero(~real).tolist():
        left = next((i for i in range(s - 1, -1, -1) if real[i]), None)
        right = next((i for i in range(s + 1, n) if real[i]), None)
        if left is not None and right is not None and right - left - 1 <= max_gap:
            weight = (s - left) / (right - left)
            out_v[s] = float(values[left]) + (float(values[right]) - float(values[left])) * weight
            out_f[s] = IN
        elif s >= per_day and real[s - per_day]:
            out_v[s], out_f[s] = values[s - per_day], D
        elif s >= 7 * per_day and real[s - 7 * per_day]:
            out_v[s], out_f[s] = values[s - 7 * per_day], W
    return out_v, out_f


@pytest.mark.parametrize("seed", range(4))
def test_young_windows_match_the_rules_slot_by_slot(seed: int) -> None:
    """Windows of meters younger than the lookback (their first slots never had a reading: the
    worker skips them, since nothing can fill them), beside full and empty ones."""
    rng = np.random.default_rng(seed)
    rows, n = 48, 120
    values = rng.gamma(2.0, 0.2, size=(rows, n)).astype(np.float32)
    flags = rng.choice(
        np.array([0, 1, 2, 3], dtype=np.uint8), size=(rows, n), p=[0.3, 0.5, 0.1, 0.1]
    )
    for r in range(rows):
        flags[r, : int(rng.integers(0, n + 1))] = 0  # young: nothing before its first reading
    flags[0] = 0  # no reading at all
    flags[1] = 1  # every slot read
    flags[2, :-1] = 0  # one reading, the newest
    values[flags == 0] = np.nan
    out_v, out_f = impute_rows(values, flags, 10, 3)
    for i in range(rows):
        ref_v, ref_f = _impute_slot_by_slot(values[i], flags[i], 10, 3)
        np.testing.assert_allclose(out_v[i], ref_v, rtol=1e-12, equal_nan=True)
        np.testing.assert_array_equal(out_f[i], ref_f)


def test_rows_need_two_dimensions_of_one_shape() -> None:
    with pytest.raises(ValueError, match="2-D"):
        impute_rows(np.zeros(3), np.zeros(3, dtype=np.uint8), 1, 4)
    with pytest.raises(ValueError, match="one shape"):
        impute_rows(np.zeros((2, 3)), np.zeros((2, 4), dtype=np.uint8), 1, 4)
    with pytest.raises(ValueError, match="slots_per_day"):
        impute_rows(np.zeros((2, 3)), np.zeros((2, 3), dtype=np.uint8), 0, 4)


def test_rows_given_as_strided_views_are_read_not_written() -> None:
    values = np.asfortranarray(np.array([[1.0, np.nan, 3.0], [np.nan, 2.0, np.nan]]))
    flags = np.asfortranarray(np.array([[1, 0, 1], [0, 1, 0]], dtype=np.uint8))
    out_v, out_f = impute_rows(values.T.T, flags, 48, 4)
    assert out_v.tolist()[0] == [1.0, 2.0, 3.0]
    assert out_f.tolist() == [[1, 4, 1], [0, 1, 0]]
    assert np.isnan(values[0, 1])  # the input is untouched

"""Filling gaps in a window for reading (never written back to state)."""

from __future__ import annotations

import numpy as np

from streamer.state.flags import SlotFlag, real_mask

DAYS_PER_WEEK = 7
# plain numpy scalars: enum attribute access costs more than the arithmetic here
_MISSING = np.uint8(SlotFlag.MISSING)
_INTERPOLATED = np.uint8(SlotFlag.IMPUTED_INTERPOLATED)
_DAY = np.uint8(SlotFlag.IMPUTED_DAY)
_WEEK = np.uint8(SlotFlag.IMPUTED_WEEK)


def impute(
    values_kwh: np.ndarray,
    flags: np.ndarray,
    slots_per_day: int,
    interpolate_max_gap_slots: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Fill the gaps of one window, oldest..newest; pure, inputs are not modified.

    Sources are only real values (``OBSERVED``, ``CORRECTED``, ``REGISTER_SPREAD``, finite); an
    imputed value never feeds another imputation.

    * Interior gaps (real values on both sides) of at most ``interpolate_max_gap_slots`` slots:
      linear interpolation between the two neighbouring real values -> ``IMPUTED_INTERPOLATED``.
    * Every other gap slot (longer interior gaps, leading and trailing gaps): the same slot one day
      earlier if real (``IMPUTED_DAY``), else one week earlier (``IMPUTED_WEEK``), else ``NaN``
      and ``MISSING``.

    Returns ``(values, flags)``: new float64 and uint8 arrays of the input's length.

    >>> import numpy as np
    >>> v, f = impute(np.array([1.0, np.nan, np.nan, 4.0]), np.array([1, 0, 0, 1]), 48, 4)
    >>> v.tolist(), f.tolist()
    ([1.0, 2.0, 3.0, 4.0], [1, 4, 4, 1])
    """
    src = np.asarray(values_kwh, dtype=np.float64)
    src_flags = np.asarray(flags, dtype=np.uint8)
    if src.shape != src_flags.shape or src.ndim != 1:
        raise ValueError(
            f"impute needs two 1-D arrays of one length, got values {src.shape} and flags "
            f"{src_flags.shape}; pass the window's values_kwh and flags together."
        )
    out_values, out_flags = impute_rows(
        src[None, :], src_flags[None, :], slots_per_day, interpolate_max_gap_slots
    )
    return out_values[0], out_flags[0]


def impute_rows(
    values_kwh: np.ndarray,
    flags: np.ndarray,
    slots_per_day: int,
    interpolate_max_gap_slots: int,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`impute` of every row of ``(B, L)`` windows at once; pure, inputs not modified.

    Row ``i`` of the result is ``impute(values_kwh[i], flags[i], ...)`` (:func:`impute` is this
    function on one row): the steps of :func:`impute` on the flattened windows, the neighbours
    of a gap found among the real slots of all rows and kept only when in the gap's own row.
    Costs a few passes over the array plus work per gap slot, not numpy calls per row.

    Returns ``(values, flags)``: new ``(B, L)`` float64 and uint8 arrays.

    >>> import numpy as np
    >>> v, f = impute_rows(np.array([[1.0, np.nan, 3.0], [1.0, 2.0, 3.0]]),
    ...                    np.array([[1, 0, 1], [1, 1, 1]]), 48, 4)
    >>> v.tolist(), f.tolist()
    ([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]], [[1, 4, 1], [1, 1, 1]])
    """
    out_values = np.array(values_kwh, dtype=np.float64, order="C")  # a copy, filled in place
    out_flags = np.array(flags, dtype=np.uint8, order="C")
    if out_values.shape != out_flags.shape or out_values.ndim != 2:
        raise ValueError(
            f"impute_rows needs two 2-D arrays of one shape (rows, slots), got values "
            f"{out_values.shape} and flags {out_flags.shape}; stack the windows' values and flags."
        )
    if slots_per_day <= 0:
        raise ValueError(f"slots_per_day={slots_per_day} must be > 0 (86400 / resolution).")
    size = out_values.shape[1]
    values = out_values.reshape(-1)  # views: row r, slot s is flat index r * size + s
    flat_flags = out_flags.reshape(-1)
    known = real_mask(flat_flags) & np.isfinite(values)
    gaps = ~known
    if not gaps.any():
        return out_values, out_flags
    # only real values are sources, and only the slots they fill are written: reading a
    # source from the array being filled is reading the input
    values[gaps] = np.nan
    flat_flags[gaps] = _MISSING
    known_idx = np.flatnonzero(known)
    if known_idx.size == 0:
        return out_values, out_flags
    # a slot before its row's first real one stays missing: no real value precedes it to
    # interpolate from, and a day or a week earlier lies before it too (a young meter's
    # window is mostly such slots: they are left out of the work per gap slot)
    rows_known = known.reshape(out_values.shape)
    first = rows_known.argmax(axis=1)  # 0 for a row of no real slot: all of it stays
    first[~rows_known[:, 0] & (first == 0)] = size
    gaps.reshape(out_values.shape)[np.arange(size)[None, :] < first[:, None]] = False
    unknown = np.flatnonzero(gaps)
    if unknown.size == 0:
        return out_values, out_flags

    row = unknown // size
    after = np.searchsorted(known_idx, unknown)  # position in known_idx of the next real
    previous = known_idx[np.maximum(after - 1, 0)]
    following = known_idx[np.minimum(after, known_idx.size - 1)]
    short = (
        (after > 0)
        & (previous // size == row)  # a real slot before the gap, in its row
        & (after < known_idx.size)
        & (following // size == row)  # and one after it
        & (following - previous - 1 <= interpolate_max_gap_slots)
    )
    if short.any():
        slots = unknown[short]
        left, right = previous[short], following[short]
        weight = (slots - left) / (right - left)  # the row's own slot differences
        values[slots] = values[left] + (values[right] - values[left]) * weight
        flat_flags[slots] = _INTERPOLATED

    pending = unknown[~short]
    column = pending - row[~short] * size
    for lag, flag in ((slots_per_day, _DAY), (DAYS_PER_WEEK * slots_per_day, _WEEK)):
        if pending.size == 0 or lag >= size:
            break
        inside = column >= lag
        usable = inside & known[np.where(inside, pending - lag, 0)]
        take = pending[usable]
        values[take] = values[take - lag]
        flat_flags[take] = flag
        pending, column = pending[~usable], column[~usable]
    return out_values, out_flags

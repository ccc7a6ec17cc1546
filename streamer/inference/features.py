"""Model inputs from a batch of meter histories: the one function training and serving share.

``build_inputs(history_kwh (B, L'), end_ms (B,), spec) -> ModelInputs`` gives the ``(B, L, F)``
float32 tensor for the model (``L = spec.lookback_slots``: the newest ``L`` columns, NaN-padded
on the left when fewer are given) and the per-row ``scale`` that turns the model's scaled outputs
back into kWh (:func:`unscale`).

Features (any subset, in any order, named in the model card):

- ``load_scaled``: ``kwh / scale`` with ``scale = mean(|finite kwh in the lookback|) + epsilon``;
  missing slots are ``0``;
- ``is_missing``: ``1`` where the slot's value is NaN, else ``0``;
- ``tod_sin``, ``tod_cos``: time of day of the slot's end on the unit circle;
- ``dow_sin``, ``dow_cos``: position in the week (Monday 00:00 = 0) of the slot's end;
- ``is_holiday``: ``1`` when the date of the slot's start is in ``spec.holidays``.

Calendar features read the clock ``spec.calendar_time`` names: ``"utc"`` (models trained before
local time, such as ``lstm:1``: the row's zone is ignored) or ``"local"``, the wall-clock time of
the row's own zone (``time_zone``: one IANA name for the batch or one per row), so that a
meter's evening stays at 18:00 across daylight-saving changes and its week starts at local
Monday midnight.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from streamer.forecast.local_time import UTC_ZONE, TimeZones, row_zones, wall_ms
from streamer.inference.errors import FeatureError

FloatArray = npt.NDArray[np.float64]
Float32Array = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]

LOAD_FEATURE: Final = "load_scaled"
KNOWN_FEATURES: Final = (
    LOAD_FEATURE,
    "is_missing",
    "tod_sin",
    "tod_cos",
    "dow_sin",
    "dow_cos",
    "is_holiday",
)
DEFAULT_FEATURES: Final = KNOWN_FEATURES[:6]
DEFAULT_EPSILON: Final = 1e-3
CALENDAR_FEATURES: Final = frozenset({"tod_sin", "tod_cos", "dow_sin", "dow_cos", "is_holiday"})
#: The clocks calendar features can read: UTC (older models), or the meter's local time.
CALENDAR_UTC: Final = "utc"
CALENDAR_LOCAL: Final = "local"
CALENDAR_TIMES: Final = (CALENDAR_UTC, CALENDAR_LOCAL)
MS_PER_DAY: Final = 86_400_000
MS_PER_WEEK: Final = 7 * MS_PER_DAY
#: 1970-01-01 was a Thursday: shift epoch days by 3 so that Monday 00:00 UTC is week phase 0.
_EPOCH_WEEKDAY_MS: Final = 3 * MS_PER_DAY
#: Calendar arrays kept per distinct input (the worker's chunks of a batch share one origin, and
#: a zone's wall-clock conversion of 336 slots costs more than the rest of the calendar).
_CALENDAR_CACHE_ENTRIES: Final = 64
#: ... for inputs of up to this many distinct origins (a training set's thousands are made anew).
_CALENDAR_CACHE_ORIGINS: Final = 16
_calendar_cache: dict[tuple[object, ...], npt.NDArray[Any]] = {}


@dataclass(frozen=True, slots=True)
class FeatureSpec:
    """What :func:`build_inputs` computes; built from a model card or a training config."""

    features: tuple[str, ...]
    lookback_slots: int
    resolution_seconds: int
    epsilon: float = DEFAULT_EPSILON
    holidays: frozenset[date] = field(default_factory=frozenset)
    calendar_time: str = CALENDAR_UTC

    def __post_init__(self) -> None:
        if self.calendar_time not in CALENDAR_TIMES:
            raise FeatureError(
                f"calendar_time must be one of {list(CALENDAR_TIMES)}, got {self.calendar_time!r}"
            )
        unknown = [f for f in self.features if f not in KNOWN_FEATURES]
        if unknown:
            raise FeatureError(
                f"unknown feature(s) {unknown}; this streamer computes {list(KNOWN_FEATURES)} "
                "(upgrade streamer or retrain the model with known features)"
            )
        if LOAD_FEATURE not in self.features:
            raise FeatureError(f"the feature list must contain {LOAD_FEATURE!r}")
        if len(set(self.features)) != len(self.features):
            raise FeatureError(f"duplicate features in {list(self.features)}")
        if self.lookback_slots < 1 or self.resolution_seconds < 1 or not self.epsilon > 0:
            raise FeatureError(
                "lookback_slots and resolution_seconds must be positive and epsilon > 0, got "
                f"{self.lookback_slots}, {self.resolution_seconds}, {self.epsilon}"
            )

    @property
    def reads_local_time(self) -> bool:
        """Whether the rows' zones change the inputs (local calendar features)."""
        return self.calendar_time == CALENDAR_LOCAL and not CALENDAR_FEATURES.isdisjoint(
            self.features
        )

    @property
    def load_index(self) -> int:
        """Position of ``load_scaled`` in :attr:`features`."""
        return self.features.index(LOAD_FEATURE)


@dataclass(frozen=True, slots=True)
class ModelInputs:
    """``values``: ``(B, L, F)`` float32; ``scale``: ``(B,)`` float64 kWh per scaled unit;
    ``finite_slots``: ``(B,)`` finite values in each row's lookback."""

    values: Float32Array
    scale: FloatArray
    finite_slots: IntArray


def holiday_set(dates: Iterable[date | str]) -> frozenset[date]:
    """Dates (or ISO ``YYYY-MM-DD`` strings) as a frozenset of :class:`datetime.date`."""
    return frozenset(d if isinstance(d, date) else date.fromisoformat(d) for d in dates)


def lookback_window(history_kwh: npt.ArrayLike, lookback_slots: int) -> FloatArray:
    """The newest ``lookback_slots`` columns of ``(B, L')`` as float64, NaN-padded on the left."""
    history = np.asarray(history_kwh, dtype=np.float64)
    if history.ndim != 2:
        raise FeatureError(f"history must be 2-D (rows, slots), got shape {history.shape}")
    have = history.shape[1]
    if have >= lookback_slots:
        return np.ascontiguousarray(history[:, have - lookback_slots :])
    pad = np.full((history.shape[0], lookback_slots - have), np.nan)
    return np.concatenate([pad, history], axis=1)


def row_scale(window: FloatArray, epsilon: float) -> tuple[FloatArray, IntArray]:
    """``mean(|finite values|) + epsilon`` per row (``epsilon`` alone for an all-NaN row) and
    the number of finite values per row."""
    finite = np.isfinite(window)
    counts = finite.sum(axis=1).astype(np.int64)
    total = np.where(finite, np.abs(window), 0.0).sum(axis=1)
    mean_abs = np.divide(total, counts, out=np.zeros(window.shape[0]), where=counts > 0)
    scale: FloatArray = mean_abs + epsilon
    return scale, counts


def slot_end_times(end_ms: npt.ArrayLike, slots: int, resolution_seconds: int) -> IntArray:
    """``(B, slots)`` end time of each slot, oldest first, the last one ``end_ms``."""
    ends = np.asarray(end_ms, dtype=np.int64)
    offsets = np.arange(slots - 1, -1, -1, dtype=np.int64) * np.int64(resolution_seconds * 1000)
    out: IntArray = ends[:, None] - offsets[None, :]
    return out


def build_inputs(
    history_kwh: npt.ArrayLike,
    end_ms: npt.ArrayLike,
    spec: FeatureSpec,
    time_zone: TimeZones = UTC_ZONE,
) -> ModelInputs:
    """The model input for each row (see the module docstring).

    Calendar features are computed once per distinct ``end_ms`` and zone (a batch of meters
    usually shares a few) and copied to the rows.
    """
    window = lookback_window(history_kwh, spec.lookback_slots)
    ends = np.asarray(end_ms)
    if ends.shape != (window.shape[0],) or not np.issubdtype(ends.dtype, np.integer):
        raise FeatureError(
            f"end_ms must be a ({window.shape[0]},) integer array of epoch ms, got shape "
            f"{ends.shape} dtype {ends.dtype}"
        )
    scale, counts = row_scale(window, spec.epsilon)
    rows, slots = window.shape
    values = np.empty((rows, slots, len(spec.features)), dtype=np.float32)
    missing = ~np.isfinite(window)
    distinct, inverse, times = _calendar_times(ends.astype(np.int64), slots, spec, time_zone)
    for k, name in enumerate(spec.features):
        if name == LOAD_FEATURE:
            values[:, :, k] = np.where(missing, 0.0, window / scale[:, None])
        elif name == "is_missing":
            values[:, :, k] = missing
        elif distinct.size == 1:  # one origin for the whole batch (usual): broadcast its row
            values[:, :, k] = _calendar(name, times, spec)[0]
        else:
            values[:, :, k] = _calendar(name, times, spec)[inverse.reshape(-1)]
    return ModelInputs(values=values, scale=scale, finite_slots=counts)


def _calendar_times(
    ends: IntArray, slots: int, spec: FeatureSpec, time_zone: TimeZones
) -> tuple[IntArray, IntArray, IntArray]:
    """Distinct origins (by end and zone), each row's index into them, and their ``(D, slots)``
    slot end times on the clock the calendar features read (UTC or local wall-clock ms)."""
    if not spec.reads_local_time:
        distinct, inverse = np.unique(ends, return_inverse=True)
        return distinct, inverse, slot_end_times(distinct, slots, spec.resolution_seconds)
    zones, zone_of_row = row_zones(time_zone, ends.shape[0])
    if len(zones) == 1:
        distinct, inverse = np.unique(ends, return_inverse=True)
        times = slot_end_times(distinct, slots, spec.resolution_seconds)
        return distinct, inverse, _wall_ms(times, zones[0])
    pairs, inverse = np.unique(
        np.stack([zone_of_row.astype(np.int64), ends], axis=1), axis=0, return_inverse=True
    )
    times = slot_end_times(pairs[:, 1], slots, spec.resolution_seconds)
    for k, zone in enumerate(zones):
        rows = np.flatnonzero(pairs[:, 0] == k)
        times[rows] = _wall_ms(times[rows], zone)
    return pairs[:, 1], inverse, times


def _cached(
    what: tuple[object, ...], times: IntArray, make: Callable[[], npt.NDArray[Any]]
) -> npt.NDArray[Any]:
    """``make()`` of ``times``, kept under ``what`` and those times (read-only: callers share
    it), unless they hold more than :data:`_CALENDAR_CACHE_ORIGINS` origins."""
    if times.ndim and times.shape[0] > _CALENDAR_CACHE_ORIGINS:
        return make()
    key = (*what, times.shape, times.tobytes())
    found = _calendar_cache.get(key)
    if found is None:
        found = make()
        found.flags.writeable = False
        if len(_calendar_cache) >= _CALENDAR_CACHE_ENTRIES:
            _calendar_cache.clear()
        _calendar_cache[key] = found
    return found


def _wall_ms(times: IntArray, zone: str) -> IntArray:
    """:func:`wall_ms` of ``times``, kept per distinct ``times`` and zone (the same values)."""
    out: IntArray = _cached(("wall", zone), times, lambda: wall_ms(times, zone))
    return out


def _calendar(name: str, times: IntArray, spec: FeatureSpec) -> FloatArray:
    """Calendar feature ``name`` of slots ending at ``times`` (UTC or wall-clock ms), kept per
    distinct ``times``."""
    holidays = spec.holidays if name == "is_holiday" else None
    what = (name, spec.resolution_seconds, holidays)
    out: FloatArray = _cached(what, times, lambda: _make_calendar(name, times, spec))
    return out


def _make_calendar(name: str, times: IntArray, spec: FeatureSpec) -> FloatArray:
    if name in ("tod_sin", "tod_cos"):
        angle = (2.0 * np.pi / MS_PER_DAY) * np.mod(times, MS_PER_DAY).astype(np.float64)
        out: FloatArray = np.sin(angle) if name == "tod_sin" else np.cos(angle)
        return out
    if name in ("dow_sin", "dow_cos"):
        phase = np.mod(times + _EPOCH_WEEKDAY_MS, MS_PER_WEEK).astype(np.float64)
        angle = (2.0 * np.pi / MS_PER_WEEK) * phase
        out = np.sin(angle) if name == "dow_sin" else np.cos(angle)
        return out
    if name == "is_holiday":
        return _holiday_flags(times - spec.resolution_seconds * 1000, spec.holidays)
    raise FeatureError(f"unknown feature {name!r}")  # guarded by FeatureSpec


def _holiday_flags(start_ms: IntArray, holidays: frozenset[date]) -> FloatArray:
    if not holidays:
        return np.zeros(start_ms.shape)
    epoch_days = np.array([(d - date(1970, 1, 1)).days for d in sorted(holidays)], dtype=np.int64)
    days = np.floor_divide(start_ms, MS_PER_DAY)
    return np.isin(days, epoch_days).astype(np.float64)


def scale_targets(target_kwh: npt.ArrayLike, scale: FloatArray) -> FloatArray:
    """Training targets ``(B, H)`` in the model's scaled units."""
    out: FloatArray = np.asarray(target_kwh, dtype=np.float64) / scale[:, None]
    return out


def unscale(outputs: npt.ArrayLike, scale: FloatArray) -> FloatArray:
    """Model outputs ``(B, H, Q)`` back to kWh: multiplied by each row's ``scale``."""
    data = np.asarray(outputs, dtype=np.float64)
    out: FloatArray = data * scale.reshape((-1,) + (1,) * (data.ndim - 1))
    return out

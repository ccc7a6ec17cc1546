"""Online calibration of a forecast's quantile band, per meter and horizon, distribution-free.

A model's p10..p90 band may hold far less (or more) than 80% of the actuals on meters it never
saw. The calibrator learns, from the forecasts matched with their actuals, how much to widen (or
narrow) each half of the band so that each side is exceeded at its nominal rate:

- the published upper quantiles are ``p50 + (q - p50) * exp(a_hi)``, the lower ones
  ``p50 - (p50 - q) * exp(a_lo)`` (``p50`` and the point forecast are never moved);
- each matched actual nudges the log-multipliers by online quantile tracking (Robbins-Monro, as
  adaptive conformal inference): ``a_hi += step * (1[actual above the calibrated p90] - 0.1)``,
  ``a_lo += step * (1[actual below the calibrated p10] - 0.1)``. In the long run each side is
  exceeded 10% of the time whatever the model or the meter (the guarantee of online conformal
  methods needs no distributional assumption), so the band covers 80%;
- per tracked horizon of the forecast ledger (1, 4, 12, 24, 48 slots); a forecast step uses
  the smallest tracked horizon at or after it;
- a meter's log-multipliers are offsets from a fleet prior (one calibrator per worker, updated
  with every meter's matches, with a tenth of the step): a meter never seen before is published
  with the fleet's calibration from its first forecast, and its own offsets learn how it
  differs.

Multipliers scale the band's own half-widths, so one prior fits meters of any size. State per
meter: :attr:`CalibrationConfig.encoded_size` bytes (36 with the default horizons).

The log-multipliers are stored as float16. In memory they are Python floats already rounded to
float16 (:mod:`struct`'s ``e`` format rounds as numpy does, to nearest even), so a calibrator
read back from its bytes equals the one kept in memory, and an update costs no numpy call.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from itertools import chain
from math import exp, isfinite
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from streamer.accuracy.errors import AccuracyConfigError, AccuracyStateDecodeError
from streamer.accuracy.ledger_config import DEFAULT_HORIZONS
from streamer.accuracy.match import Match
from streamer.drift.sealed import OVERHEAD, fingerprint, seal, unseal

MAGIC = b"IC"
VERSION = 1
#: A log-multiplier stays within +-this (a band at most e**4 ~ 55 times wider or narrower).
MAX_LOG = 4.0
#: Matches counted per horizon, at most.
MAX_COUNT = 65535
#: The fleet prior's step, relative to a meter's (see :meth:`CalibrationConfig.for_prior`).
PRIOR_STEP_RATIO = 0.1

F16 = npt.NDArray[np.float16]
F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class CalibrationConfig:
    """``step``: how far one match moves a log-multiplier (0 turns calibration off);
    ``low``/``high``: the levels calibrated (the ledger's p10 and p90)."""

    horizons: tuple[int, ...] = DEFAULT_HORIZONS
    step: float = 0.05
    low: float = 0.1
    high: float = 0.9

    def __post_init__(self) -> None:
        if not self.horizons or list(self.horizons) != sorted(set(self.horizons)):
            raise AccuracyConfigError(f"calibration horizons must increase, got {self.horizons}")
        if not (0.0 <= self.step <= 1.0 and 0 < self.low < self.high < 1):
            raise AccuracyConfigError("calibration needs 0 <= step <= 1 and 0 < low < high < 1")

    @property
    def enabled(self) -> bool:
        return self.step > 0.0

    def for_prior(self) -> CalibrationConfig:
        """The fleet prior's configuration: it learns from every meter's matches (thousands a
        slot on a fleet), so a step :data:`PRIOR_STEP_RATIO` as large keeps its noise low."""
        return replace(self, step=self.step * PRIOR_STEP_RATIO)

    @cached_property
    def encoded_size(self) -> int:
        return OVERHEAD + len(self.horizons) * _ROW.size

    @cached_property
    def fingerprint(self) -> int:
        return fingerprint(struct.pack(f"<{len(self.horizons)}H", *self.horizons))

    @cached_property
    def _index(self) -> dict[int, int]:
        return {h: i for i, h in enumerate(self.horizons)}

    @cached_property
    def _steps(self) -> tuple[bool, float, float, float, float]:
        """``enabled`` and the four moves of :meth:`IntervalCalibrator.update`: of the lower
        log-multiplier when the actual was below the band and when it was not, then of the
        upper one when above and when not (each the very double the update's formula gives)."""
        step = self.step
        return (
            self.enabled,
            step * (1.0 - self.low),
            step * (0.0 - self.low),
            step * (1.0 - (1 - self.high)),
            step * (0.0 - (1 - self.high)),
        )

    @cached_property
    def _rows(self) -> struct.Struct:
        """All horizons' rows of the state body (``_ROW`` repeated), packed in one call."""
        return struct.Struct("<" + _ROW.format[1:] * len(self.horizons))

    def bucket_of_steps(self, horizon_slots: int) -> npt.NDArray[np.intp]:
        """For forecast steps ``1..horizon_slots``: the index of the tracked horizon used."""
        steps = np.arange(1, horizon_slots + 1)
        tracked = np.asarray(self.horizons)
        index: npt.NDArray[np.intp] = np.minimum(
            np.searchsorted(tracked, steps, side="left"), tracked.size - 1
        )
        return index


_ROW = struct.Struct("<eeH")  # a_lo, a_hi (float16), matches (uint16)


class IntervalCalibrator:
    """Log-multipliers of the band's lower and upper halves per tracked horizon.

    :attr:`log_low`, :attr:`log_high` and :attr:`matches` read them as numpy arrays (copies);
    assigning to :attr:`log_low` or :attr:`log_high` sets them (rounded to float16, broadcast
    to the horizons).

    >>> calibrator = IntervalCalibrator(CalibrationConfig(horizons=(1,), step=0.5))
    >>> _ = calibrator.update(Match(1, 1.0, 0.5, 1.0, 1.5, 3.0))  # above p90: widen the top
    >>> round(float(np.exp(calibrator.log_high[0])), 3), int(calibrator.matches[0])
    (1.568, 1)
    """

    # ``_encoded``: the state's bytes as it is (None once an update changed it)
    __slots__ = ("_count", "_encoded", "_high", "_low", "config")

    def __init__(self, config: CalibrationConfig) -> None:
        self.config = config
        self._encoded: bytes | None = None
        size = len(config.horizons)
        # float16 values as Python floats (see the module docstring), and uint16 counts
        self._low: list[float] = [0.0] * size
        self._high: list[float] = [0.0] * size
        self._count: list[int] = [0] * size

    @property
    def log_low(self) -> F16:
        """The lower half's log-multiplier per tracked horizon (a read-only copy)."""
        return _frozen(np.array(self._low, dtype=np.float16))

    @log_low.setter
    def log_low(self, values: npt.ArrayLike) -> None:
        self._low = _float16_list(values, len(self._low))
        self._encoded = None

    @property
    def log_high(self) -> F16:
        """The upper half's log-multiplier per tracked horizon (a read-only copy)."""
        return _frozen(np.array(self._high, dtype=np.float16))

    @log_high.setter
    def log_high(self, values: npt.ArrayLike) -> None:
        self._high = _float16_list(values, len(self._high))
        self._encoded = None

    @property
    def matches(self) -> npt.NDArray[np.uint16]:
        """Matches learnt from per tracked horizon, at most :data:`MAX_COUNT` (a read-only
        copy)."""
        return _frozen(np.array(self._count, dtype=np.uint16))

    def band(self, match: Match, prior: IntervalCalibrator | None = None) -> tuple[float, float]:
        """The calibrated p10 and p90 of ``match``'s forecast with the current multipliers."""
        i = self.config._index.get(match.horizon_slots)
        if i is None:
            return match.p10, match.p90
        low, high = self._blended(i, prior)
        return (
            match.p50 - (match.p50 - match.p10) * exp(low),
            match.p50 + (match.p90 - match.p50) * exp(high),
        )

    def _blended(self, i: int, prior: IntervalCalibrator | None) -> tuple[float, float]:
        """The log-multipliers in use: the prior's plus this calibrator's offsets."""
        low, high = self._low[i], self._high[i]
        if prior is None or prior is self:
            return low, high
        return low + prior._low[i], high + prior._high[i]

    def update(self, match: Match, prior: IntervalCalibrator | None = None) -> bool | None:
        """Learn from one match; whether its actual was inside the calibrated band before the
        update (None: not a tracked horizon or a value not finite). With ``prior``, the band
        judged is the blended one the meter's forecast was published with."""
        return self.learn(match.horizon_slots, match.p10, match.p50, match.p90, match.actual, prior)

    def learn(
        self,
        horizon_slots: int,
        p10: float,
        p50: float,
        p90: float,
        actual: float,
        prior: IntervalCalibrator | None = None,
    ) -> bool | None:
        """:meth:`update` from a match's values (the scoring path, before its Match is made)."""
        config = self.config
        i = config._index.get(horizon_slots)
        if i is None:
            return None
        if not (isfinite(p10) and isfinite(p50) and isfinite(p90) and isfinite(actual)):
            return None
        # the band as :meth:`band` gives it, inlined (the hot path of scoring)
        a_low, a_high = self._low[i], self._high[i]
        if prior is None or prior is self:
            b_low, b_high = a_low, a_high
        else:
            b_low, b_high = a_low + prior._low[i], a_high + prior._high[i]
        below = actual < p50 - (p50 - p10) * exp(b_low)
        above = actual > p50 + (p90 - p50) * exp(b_high)
        enabled, low_below, low_not, high_above, high_not = config._steps
        if enabled:
            self._encoded = None
            a_low += low_below if below else low_not
            a_high += high_above if above else high_not
            # clamp to +-MAX_LOG (a NaN stays NaN, as with min(max(...)))
            if a_low < -MAX_LOG:
                a_low = -MAX_LOG
            elif a_low > MAX_LOG:
                a_low = MAX_LOG
            if a_high < -MAX_LOG:
                a_high = -MAX_LOG
            elif a_high > MAX_LOG:
                a_high = MAX_LOG
            self._low[i], self._high[i] = _HALF_PAIR.unpack(_HALF_PAIR.pack(a_low, a_high))
            count = self._count
            if count[i] < MAX_COUNT:
                count[i] += 1
        return not (below or above)

    def multipliers(
        self, horizon_slots: int, prior: IntervalCalibrator | None = None
    ) -> tuple[F64, F64]:
        """``exp`` of the (blended) log-multipliers for forecast steps ``1..horizon_slots``."""
        low, high = batch_multipliers([self], prior, horizon_slots)
        return low[0], high[0]

    def to_bytes(self) -> bytes:
        if self._encoded is not None:
            return self._encoded
        body = self.config._rows.pack(
            *chain.from_iterable(zip(self._low, self._high, self._count, strict=True))
        )
        encoded = self._encoded = seal(MAGIC, VERSION, 0, self.config.fingerprint, body)
        return encoded

    @classmethod
    def from_bytes(cls, data: bytes, config: CalibrationConfig) -> IntervalCalibrator:
        flags, body = unseal(
            data,
            magic=MAGIC,
            version=VERSION,
            fingerprint_=config.fingerprint,
            what="interval calibration state",
            error=AccuracyStateDecodeError,
        )
        if len(body) != len(config.horizons) * _ROW.size:
            raise AccuracyStateDecodeError(
                f"calibration state of {len(body)} bytes does not fit {len(config.horizons)} "
                "horizons; start the meter's calibration afresh"
            )
        values = config._rows.unpack(body)
        calibrator = cls.__new__(cls)
        calibrator.config = config
        calibrator._low = list(values[0::3])  # float16 values, as stored
        calibrator._high = list(values[1::3])
        calibrator._count = list(values[2::3])
        # what to_bytes writes for it (a sum is NaN where a half is: its payload is not kept)
        halves = sum(calibrator._low) + sum(calibrator._high)
        calibrator._encoded = (
            data if type(data) is bytes and not flags and halves == halves else None
        )
        return calibrator


_Array = TypeVar("_Array", bound="np.ndarray[Any, Any]")
#: Two float16, to round a pair of Python floats as float16 storage does (pack, then unpack).
_HALF_PAIR = struct.Struct("<2e")


def _float16_list(values: npt.ArrayLike, size: int) -> list[float]:
    """``values`` (broadcast to ``size``) rounded to float16, as Python floats."""
    rounded = np.broadcast_to(np.asarray(values, dtype=np.float16), (size,))
    out: list[float] = rounded.astype(np.float64).tolist()
    return out


def _frozen(array: _Array) -> _Array:
    """``array``, made read-only (writing to a copy would be lost: assign the attribute)."""
    array.setflags(write=False)
    return array


def level_column(levels: Sequence[float], level: float) -> int | None:
    """The column of ``level`` among a forecast's quantile ``levels`` (None: not there)."""
    return next((i for i, lv in enumerate(levels) if math.isclose(lv, level, abs_tol=1e-9)), None)


def batch_multipliers(
    calibrators: Sequence[IntervalCalibrator],
    prior: IntervalCalibrator | None,
    horizon_slots: int,
) -> tuple[F64, F64]:
    """``(B, H)`` lower and upper multipliers of ``B`` meters' calibrators (their offsets on the
    ``prior``), for forecast steps ``1..horizon_slots``, in a few numpy calls."""
    config = calibrators[0].config
    low = np.array([c._low for c in calibrators], dtype=np.float64)
    high = np.array([c._high for c in calibrators], dtype=np.float64)
    if prior is not None:
        low += np.array(prior._low, dtype=np.float64)
        high += np.array(prior._high, dtype=np.float64)
    index = config.bucket_of_steps(horizon_slots)
    return np.exp(low[:, index]), np.exp(high[:, index])


def calibrate_quantiles(
    quantiles_kwh: F64,
    levels: Sequence[float],
    median_column: int,
    low_multiplier: F64,
    high_multiplier: F64,
) -> F64:
    """``(B, H, Q)`` quantiles with each row's lower levels pulled away from (or towards) its
    median by ``low_multiplier`` ``(B, H)`` and its upper levels by ``high_multiplier``.

    Monotone in the level (the multipliers are positive), and a quantile that was not negative
    is not made negative (energy of a consumption meter).
    """
    median = quantiles_kwh[:, :, median_column : median_column + 1]
    out = np.array(quantiles_kwh, dtype=np.float64, copy=True)
    lower = [i for i, level in enumerate(levels) if level < levels[median_column]]
    upper = [i for i, level in enumerate(levels) if level > levels[median_column]]
    if lower:
        raw = quantiles_kwh[:, :, lower]
        moved = median - (median - raw) * low_multiplier[:, :, None]
        out[:, :, lower] = np.where(raw >= 0.0, np.maximum(moved, 0.0), moved)
    if upper:
        out[:, :, upper] = (
            median + (quantiles_kwh[:, :, upper] - median) * high_multiplier[:, :, None]
        )
    return out

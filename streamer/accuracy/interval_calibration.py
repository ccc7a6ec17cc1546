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
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cached_property

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

    >>> calibrator = IntervalCalibrator(CalibrationConfig(horizons=(1,), step=0.5))
    >>> _ = calibrator.update(Match(1, 1.0, 0.5, 1.0, 1.5, 3.0))  # above p90: widen the top
    >>> round(float(np.exp(calibrator.log_high[0])), 3), int(calibrator.matches[0])
    (1.568, 1)
    """

    __slots__ = ("config", "log_high", "log_low", "matches")

    def __init__(self, config: CalibrationConfig) -> None:
        self.config = config
        size = len(config.horizons)
        # float16, as stored: a record decoded from its bytes equals the one kept in memory
        self.log_low: F16 = np.zeros(size, dtype=np.float16)
        self.log_high: F16 = np.zeros(size, dtype=np.float16)
        self.matches = np.zeros(size, dtype=np.uint16)

    def band(self, match: Match, prior: IntervalCalibrator | None = None) -> tuple[float, float]:
        """The calibrated p10 and p90 of ``match``'s forecast with the current multipliers."""
        i = self.config._index.get(match.horizon_slots)
        if i is None:
            return match.p10, match.p90
        low, high = self._blended(i, prior)
        return (
            match.p50 - (match.p50 - match.p10) * math.exp(low),
            match.p50 + (match.p90 - match.p50) * math.exp(high),
        )

    def _blended(self, i: int, prior: IntervalCalibrator | None) -> tuple[float, float]:
        """The log-multipliers in use: the prior's plus this calibrator's offsets."""
        low, high = float(self.log_low[i]), float(self.log_high[i])
        if prior is None or prior is self:
            return low, high
        return low + float(prior.log_low[i]), high + float(prior.log_high[i])

    def update(self, match: Match, prior: IntervalCalibrator | None = None) -> bool | None:
        """Learn from one match; whether its actual was inside the calibrated band before the
        update (None: not a tracked horizon or a value not finite). With ``prior``, the band
        judged is the blended one the meter's forecast was published with."""
        config = self.config
        i = config._index.get(match.horizon_slots)
        values = (match.p10, match.p50, match.p90, match.actual)
        if i is None or not all(math.isfinite(v) for v in values):
            return None
        low, high = self.band(match, prior)
        below, above = match.actual < low, match.actual > high
        if config.enabled:
            step = config.step
            a_low = float(self.log_low[i]) + step * ((1.0 if below else 0.0) - config.low)
            a_high = float(self.log_high[i]) + step * ((1.0 if above else 0.0) - (1 - config.high))
            self.log_low[i] = min(max(a_low, -MAX_LOG), MAX_LOG)
            self.log_high[i] = min(max(a_high, -MAX_LOG), MAX_LOG)
            if self.matches[i] < MAX_COUNT:
                self.matches[i] += 1
        return not (below or above)

    def multipliers(
        self, horizon_slots: int, prior: IntervalCalibrator | None = None
    ) -> tuple[F64, F64]:
        """``exp`` of the (blended) log-multipliers for forecast steps ``1..horizon_slots``."""
        low, high = batch_multipliers([self], prior, horizon_slots)
        return low[0], high[0]

    def to_bytes(self) -> bytes:
        body = b"".join(
            _ROW.pack(float(lo), float(hi), int(n))
            for lo, hi, n in zip(self.log_low, self.log_high, self.matches, strict=True)
        )
        return seal(MAGIC, VERSION, 0, self.config.fingerprint, body)

    @classmethod
    def from_bytes(cls, data: bytes, config: CalibrationConfig) -> IntervalCalibrator:
        _, body = unseal(
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
        calibrator = cls(config)
        for i, (lo, hi, n) in enumerate(_ROW.iter_unpack(body)):
            calibrator.log_low[i], calibrator.log_high[i], calibrator.matches[i] = lo, hi, n
        return calibrator


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
    low = np.stack([c.log_low for c in calibrators]).astype(np.float64)
    high = np.stack([c.log_high for c in calibrators]).astype(np.float64)
    if prior is not None:
        low += prior.log_low.astype(np.float64)
        high += prior.log_high.astype(np.float64)
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

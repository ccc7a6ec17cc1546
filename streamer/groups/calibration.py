"""The band of a group total, calibrated online against realised group totals.

A group's centre is the sum of its members' expected values (:mod:`.expected`). Its band
cannot be built from the members' bands: summed quantiles assume the members err together
(far too wide for a feeder of a hundred households), an independence approximation assumes
they never do (far too narrow: the weather moves every meter of a feeder at once). Both are
wrong by an amount nobody knows in advance, so the band is learnt from what actually happened.

**Empirical residual quantiles (split-conformal, online).** For each matched pair of one group
(the total it was forecast, ``F``, and the total realised, ``A``) the calibrator keeps the
residual in units of the group's level,

    ``r = (A - F) / S``,

in a ring buffer of the last :attr:`GroupCalibrationConfig.window` pairs of the pair's horizon
bucket (a step ``h`` uses the smallest bucket ``>= h``). ``S`` is the mean ``|A|`` of the
group's pairs (a running mean, then an exponential one over :data:`LEVEL_PAIRS` pairs: days of
pairs, so it does not follow the daily shape of the load), kept in its state. A forecast ``F``
for a step is published as

- centre ``F + S * mean(r)``: the expected total, the bucket's mean error learnt away, and
- quantile ``q`` at ``F + S * empirical_quantile(r, q')``, where ``q'`` starts at ``q``.

The residuals of past pairs are exchangeable with the next one as long as the model's errors
are stationary over the window, so the band holds its nominal share of the realised totals
without any assumption about their distribution (the argument of split-conformal prediction,
here on a sliding window). They are not quite: the errors of a group total come in spells of
weather (a stormy week after a calm one), and a window of a few weeks of them holds only a
few independent spells. So each bucket also tracks the level ``q'`` it publishes by adaptive
conformal inference (Gibbs and Candes, 2021): every pair learnt moves ``q'`` by
``ACI_RATE / window * (q - 1[r < quantile(r, q')])``, which keeps the long-run share of
actuals below each published quantile at ``q`` even while the errors change; ``q'`` stays in
``[0, 1]`` (at most the window's extremes are published). On a second simulated fleet (1,000
meters in Europe/London, October to November, errors growing through the autumn) this raised
the coverage of ``lstm:2``'s feeder bands from 0.72 to 0.77 (substations 0.70 to 0.75) and
left those of the 2,000-meter fleet of the next paragraph at 0.81 and 0.82 instead of 0.83
and 0.84.

**Why residuals in units of a level, not ratios ``A / F``.** A ratio is scale-free too, and
lets the band follow the load's daily shape. But a feeder with rooftop PV has totals near zero
or negative at noon on a sunny day: there a ratio explodes, changes sign and orders the band
backwards. ``S`` is positive whatever the sign of ``F`` (a net-PV group's mean ``|A|``), so the
band ``F + S * q(r)`` is ordered for negative and zero totals alike, and continuous through
zero. We also tried the ratio's robust cousin, residuals in units of ``|F| + lambda * S``
(multiplicative where the total is large, floored near zero), on the simulated fleet (2,000
meters, a quarter with PV, 20 feeders and 4 substations, day-ahead, ``lstm:2``; before the
adaptive levels above were added): with
``lambda`` = 0.25 / 0.5 / 1 against plain ``S``, coverage 0.81 / 0.82 / 0.82 against 0.83, but
mean p10/p90 pinball loss 4.6% / 4.4% / 4.3% of the mean total against 4.2%, bias -1.5% / -1.2%
/ -0.9% against -0.3%, feeder MAE 4.73 / 4.62 / 4.54 kWh against 4.41. The group errors there
come from weather shared by the whole group (clouds over the PV at noon, cold evenings), which
are not proportional to the forecast total; a ratio's mean, applied to every slot of a bucket,
carries the noon PV errors into the evening peak.

**Prior.** A worker keeps one more calibrator, updated with every group's pairs
(:meth:`GroupCalibrationConfig.for_prior`: a longer window). Its residuals are in units of each
group's own level, so they fit any group whatever its size; a bucket in which a group has fewer
than :attr:`~GroupCalibrationConfig.min_pairs` pairs is published with the prior's residuals
(and the group's level taken from the forecast itself, ``mean |F|``, until it has pairs), and
with :attr:`~GroupCalibrationConfig.default_band` (as ratios of ``|F|``) before the prior has
pairs either.

**What to feed it.** The pairs of one bucket should mix the times of day it is published for.
A worker forecasting every slot does so by learning the pairs of its tracked horizons (one
per bucket and slot, as the per-meter ledger keeps them); a day-ahead backtest, whose origins
are a day apart, learns every step of the day (:mod:`streamer.evaluate.group_backtest`).

**State.** A fixed :meth:`GroupCalibrationConfig.encoded_size` bytes per group (2,670 with the
defaults): residuals as float16 (3 significant digits of a band that is itself a few percent of
the level wide), the level as float32, per bucket the pairs counted, the ring's write position
and the levels in use (float32). The group's state expires with its membership: a group whose
last member left is dropped.
"""

from __future__ import annotations

import itertools
import struct
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Final

import numpy as np
import numpy.typing as npt

from streamer.drift.sealed import OVERHEAD, fingerprint, seal, unseal
from streamer.groups.errors import GroupError, GroupStateDecodeError

MAGIC: Final = b"GC"
VERSION: Final = 1
#: Pairs over which the group's level ``S`` is averaged (a running mean up to this many pairs,
#: then an exponential mean with this span): 85 days of a day-ahead backtest's pairs, about
#: two days of a worker that learns every step of every slot.
LEVEL_PAIRS: Final = 4096
#: A residual is clipped to +-this many units (a realised total this far off is a data error).
MAX_RESIDUAL: Final = 1000.0
#: Pairs counted per bucket, at most.
MAX_PAIRS: Final = 2**32 - 1
#: A level ``S`` at most this (kWh) gives no residual (a group with nothing to measure).
EPSILON_KWH: Final = 1e-9
MAX_WINDOW: Final = 65535
#: Adaptive conformal inference: a pair moves each published level by this over the window.
ACI_RATE: Final = 2.0
#: The prior's window, relative to a group's (see :meth:`GroupCalibrationConfig.for_prior`).
PRIOR_WINDOW_RATIO: Final = 16

F64 = npt.NDArray[np.float64]
_HEAD = struct.Struct("<fI")  # level S (float32), pairs averaged into it (uint32)
_BUCKET = struct.Struct("<IH")  # pairs counted (uint32), ring write position (uint16)


@dataclass(frozen=True)
class GroupCalibrationConfig:
    """``horizons``: the buckets' last steps (a step ``h`` uses the smallest bucket ``>= h``,
    the last bucket beyond it); ``window``: residuals kept per bucket; ``min_pairs``: a
    group's own pairs in a bucket before its own residuals are used (else the prior's, else
    ``default_band``); ``levels``: the published quantile levels; ``default_band``: the band
    as ratios of the forecast total at the lowest and highest level before anything was learnt
    (levels between are interpolated linearly, the centre is the forecast).

    ``horizons``, ``window`` and ``levels`` shape the stored state; ``min_pairs`` and
    ``default_band`` only how it is published, and may change without discarding it.
    """

    horizons: tuple[int, ...] = (1, 4, 12, 24, 48)
    window: int = 256
    min_pairs: int = 24
    levels: tuple[float, ...] = (0.1, 0.5, 0.9)
    default_band: tuple[float, float] = (0.85, 1.15)

    def __post_init__(self) -> None:
        hs = self.horizons
        if not hs or hs[0] < 1 or any(b <= a for a, b in itertools.pairwise(hs)):
            raise GroupError(f"group calibration horizons must increase from 1, got {hs}")
        if not 1 <= self.window <= MAX_WINDOW:
            raise GroupError(f"window={self.window}: keep 1..{MAX_WINDOW} residuals per bucket")
        if not 1 <= self.min_pairs <= self.window:
            raise GroupError(
                f"min_pairs={self.min_pairs} must be in 1..window ({self.window}): a bucket "
                "never holds more than window pairs"
            )
        lv = self.levels
        if (
            not lv
            or any(not 0 < q < 1 for q in lv)
            or any(b <= a for a, b in itertools.pairwise(lv))
        ):
            raise GroupError(f"levels must increase inside (0, 1), got {lv}")
        low, high = self.default_band
        if not 0 <= low <= 1 <= high:
            raise GroupError(
                f"default_band={self.default_band}: give ratios (low, high) with "
                "0 <= low <= 1 <= high, e.g. (0.85, 1.15)"
            )

    def for_prior(self) -> GroupCalibrationConfig:
        """The prior's configuration: it learns every group's pairs, so it keeps
        :data:`PRIOR_WINDOW_RATIO` times as many (at most :data:`MAX_WINDOW`) to hold more than
        the last few slots of a fleet. A worker with many groups should also feed it a
        sample of them (say, the groups whose id hashes into one bucket in ten)."""
        return replace(self, window=min(self.window * PRIOR_WINDOW_RATIO, MAX_WINDOW))

    def encoded_size(self) -> int:
        """Bytes of one group's state (:meth:`GroupCalibrator.to_bytes`)."""
        return OVERHEAD + _HEAD.size + len(self.horizons) * self._row_size

    @property
    def _row_size(self) -> int:
        """Bytes of one bucket: counters, the levels in use (float32), the ring (float16)."""
        return _BUCKET.size + 4 * len(self.levels) + 2 * self.window

    @cached_property
    def fingerprint(self) -> int:
        """Names what the stored bytes mean: the buckets, the window and the levels."""
        return fingerprint(
            struct.pack(
                f"<{len(self.horizons)}HH{len(self.levels)}d",
                *self.horizons,
                self.window,
                *self.levels,
            )
        )

    def bucket_of(self, steps: npt.ArrayLike) -> npt.NDArray[np.intp]:
        """The bucket index of each step (1-based slots ahead)."""
        tracked = np.asarray(self.horizons)
        index: npt.NDArray[np.intp] = np.minimum(
            np.searchsorted(tracked, np.asarray(steps), side="left"), tracked.size - 1
        )
        return index

    @cached_property
    def default_residuals(self) -> F64:
        """``(Q,)`` residual quantiles (in units of ``|F|``) of :attr:`default_band`."""
        low, high = self.default_band
        levels = np.asarray(self.levels)
        if levels.size == 1:
            return np.array([(low + high) / 2.0 - 1.0])
        share = (levels - levels[0]) / (levels[-1] - levels[0])
        out: F64 = low + share * (high - low) - 1.0
        return out


@dataclass(frozen=True)
class GroupBand:
    """A group's published forecast over ``H`` steps."""

    mean_kwh: F64
    """``(H,)`` the centre: the expected total."""
    quantiles_kwh: F64
    """``(H, Q)`` at the configuration's levels, non-decreasing along ``Q``."""
    calibrated: npt.NDArray[np.bool_]
    """``(H,)`` whether learnt residuals (the group's own or the prior's) were used."""


class GroupCalibrator:
    """Residuals of one group's (or, as the prior, every group's) totals per horizon bucket.

    >>> config = GroupCalibrationConfig(horizons=(1,), window=8, min_pairs=4)
    >>> calibrator = GroupCalibrator(config)
    >>> calibrator.update([1, 1, 1, 1], [100.0] * 4, [90.0, 100.0, 110.0, 120.0])
    4
    >>> band = calibrator.publish([1], [200.0])
    >>> round(float(band.mean_kwh[0]), 1), band.quantiles_kwh[0].round(1).tolist()
    (205.0, [193.0, 205.0, 217.0])
    >>> bool(band.calibrated[0]), calibrator.pairs().tolist()
    (True, [4])
    """

    __slots__ = (
        "_level",
        "_level_pairs",
        "_pairs",
        "_position",
        "config",
        "levels_used",
        "residuals",
    )

    def __init__(self, config: GroupCalibrationConfig) -> None:
        self.config = config
        buckets = len(config.horizons)
        # float16, as stored: a calibrator decoded from its bytes equals the one in memory
        self.residuals = np.full((buckets, config.window), np.nan, dtype=np.float16)
        self._pairs = np.zeros(buckets, dtype=np.int64)
        self._position = np.zeros(buckets, dtype=np.int64)
        self._level = 0.0
        self._level_pairs = 0
        # the levels whose residual quantiles are published, per bucket (float32, as stored)
        self.levels_used = np.tile(np.asarray(config.levels, dtype=np.float32), (buckets, 1))

    @property
    def level_kwh(self) -> float:
        """The group's level ``S``: the mean ``|realised total|`` of its recent pairs."""
        return self._level

    def pairs(self) -> npt.NDArray[np.int64]:
        """Pairs learnt per bucket (the last :attr:`~GroupCalibrationConfig.window` are kept)."""
        return self._pairs.copy()

    def update(
        self, steps: npt.ArrayLike, forecast_kwh: npt.ArrayLike, actual_kwh: npt.ArrayLike
    ) -> int:
        """Learn from matched pairs of this group, oldest first: each pair's step (1-based slots
        ahead), its forecast total (the sum of the members' expected values) and the realised
        total. Pairs with a value that is not finite or a step below 1 are skipped, and all
        of them while the group's level is zero (nothing measured yet); returns how many were
        kept."""
        step = np.atleast_1d(np.asarray(steps))
        forecast = np.atleast_1d(np.asarray(forecast_kwh, dtype=np.float64))
        actual = np.atleast_1d(np.asarray(actual_kwh, dtype=np.float64))
        try:
            step, forecast, actual = np.broadcast_arrays(step, forecast, actual)
        except ValueError:
            raise GroupError(
                f"steps {step.shape}, forecasts {forecast.shape} and actuals {actual.shape} "
                "must be 1-D arrays of the same length"
            ) from None
        ok = np.isfinite(forecast) & np.isfinite(actual) & (step >= 1)
        if not ok.any():
            return 0
        step, forecast, actual = step[ok].astype(np.int64), forecast[ok], actual[ok]
        self._learn_level(np.abs(actual))
        if self._level <= EPSILON_KWH:
            return 0
        residual = np.clip((actual - forecast) / self._level, -MAX_RESIDUAL, MAX_RESIDUAL).astype(
            np.float16
        )
        bucket = self.config.bucket_of(step)
        window = self.config.window
        for b in np.unique(bucket).tolist():
            self._track_levels(b, residual[bucket == b])
            new = residual[bucket == b][-window:]  # only the newest window can stay
            slots = (self._position[b] + np.arange(new.size)) % window
            self.residuals[b, slots] = new
            self._position[b] = (self._position[b] + new.size) % window
            self._pairs[b] = min(int(self._pairs[b]) + int((bucket == b).sum()), MAX_PAIRS)
        return int(residual.size)

    def _track_levels(self, bucket: int, residual: npt.NDArray[np.float16]) -> None:
        """Adaptive conformal inference: move each published level by ``ACI_RATE / window``
        per pair towards the level that the pairs say is exceeded at the nominal rate."""
        kept = self._kept(bucket)
        if ACI_RATE <= 0 or kept.size < self.config.min_pairs:
            return
        used = self.levels_used[bucket].astype(np.float64)
        quantiles = np.quantile(kept.astype(np.float64), used)
        below = (residual.astype(np.float64)[:, None] < quantiles[None, :]).sum(axis=0)
        step = ACI_RATE / self.config.window
        moved = used + step * (residual.size * np.asarray(self.config.levels) - below)
        self.levels_used[bucket] = np.clip(moved, 0.0, 1.0)

    def _learn_level(self, magnitude: F64) -> None:
        """Fold ``|A|`` of new pairs into the level: exactly the running mean while fewer than
        :data:`LEVEL_PAIRS` pairs were seen, then (a batch at a time) an exponential mean."""
        count = magnitude.size
        seen = min(self._level_pairs + count, LEVEL_PAIRS)
        weight = min(1.0, count / seen)
        level = self._level + (float(magnitude.mean()) - self._level) * weight
        self._level = float(np.float32(level))  # float32, as stored
        self._level_pairs = min(self._level_pairs + count, MAX_PAIRS)

    def _kept(self, bucket: int) -> npt.NDArray[np.float16]:
        return self.residuals[bucket, : min(int(self._pairs[bucket]), self.config.window)]

    def publish(
        self,
        steps: npt.ArrayLike,
        forecast_kwh: npt.ArrayLike,
        prior: GroupCalibrator | None = None,
    ) -> GroupBand:
        """The band of forecast totals ``forecast_kwh`` at ``steps`` (``(H,)`` each).

        Per bucket: this group's residuals when it has ``min_pairs`` there, else the prior's
        when it has (both times this group's level, or the mean ``|forecast|`` of this call
        while it has none), else the default band (ratios of ``|forecast|``, centre =
        forecast). A forecast that is not finite gives NaN."""
        config = self.config
        step = np.atleast_1d(np.asarray(steps))
        forecast = np.atleast_1d(np.asarray(forecast_kwh, dtype=np.float64))
        if step.shape != forecast.shape or step.ndim != 1:
            raise GroupError(
                f"steps {step.shape} and forecasts {forecast.shape} must be 1-D arrays of the "
                "same length"
            )
        bucket = config.bucket_of(np.maximum(step, 1))
        buckets = len(config.horizons)
        centre = np.zeros(buckets)
        spread = np.tile(config.default_residuals, (buckets, 1))
        learnt = np.zeros(buckets, dtype=np.bool_)
        for b in np.unique(bucket).tolist():
            owner = self
            if self._kept(b).size < config.min_pairs and prior is not None:
                owner = prior
            source = owner._kept(b)
            if source.size >= config.min_pairs:
                values = source.astype(np.float64)
                centre[b] = values.mean()
                spread[b] = np.quantile(values, owner.levels_used[b].astype(np.float64))
                learnt[b] = True
        level = self._level if self._level_pairs else _mean_magnitude(forecast)
        unit = np.where(learnt[bucket], level, np.abs(forecast))
        quantiles = forecast[:, None] + unit[:, None] * spread[bucket]
        quantiles = np.maximum.accumulate(quantiles, axis=1)  # ordered to the last ulp
        return GroupBand(
            mean_kwh=forecast + unit * centre[bucket],
            quantiles_kwh=quantiles,
            calibrated=learnt[bucket],
        )

    def to_bytes(self) -> bytes:
        """The state in :meth:`GroupCalibrationConfig.encoded_size` bytes (sealed, versioned)."""
        parts = [_HEAD.pack(self._level, self._level_pairs)]
        for b in range(len(self.config.horizons)):
            parts.append(_BUCKET.pack(int(self._pairs[b]), int(self._position[b])))
            parts.append(self.levels_used[b].astype("<f4").tobytes())
            parts.append(self.residuals[b].astype("<f2").tobytes())
        return seal(MAGIC, VERSION, 0, self.config.fingerprint, b"".join(parts))

    @classmethod
    def from_bytes(cls, data: bytes, config: GroupCalibrationConfig) -> GroupCalibrator:
        """Decode :meth:`to_bytes`; :class:`~streamer.groups.errors.GroupStateDecodeError` when
        the bytes are corrupt, of another format version, or written with other buckets or
        window (start the group's calibration afresh)."""
        _, body = unseal(
            data,
            magic=MAGIC,
            version=VERSION,
            fingerprint_=config.fingerprint,
            what="group calibration state",
            error=GroupStateDecodeError,
        )
        row = config._row_size
        if len(body) != _HEAD.size + len(config.horizons) * row:
            raise GroupStateDecodeError(
                f"group calibration state of {len(body)} bytes does not fit "
                f"{len(config.horizons)} buckets of {config.window}; start the group's "
                "calibration afresh"
            )
        calibrator = cls(config)
        calibrator._level, calibrator._level_pairs = _HEAD.unpack_from(body)
        for b in range(len(config.horizons)):
            offset = _HEAD.size + b * row
            pairs, position = _BUCKET.unpack_from(body, offset)
            if position >= config.window or not np.isfinite(calibrator._level):
                raise GroupStateDecodeError(
                    "group calibration state is inconsistent (ring position or level out of "
                    "range); start the group's calibration afresh"
                )
            calibrator._pairs[b], calibrator._position[b] = pairs, position
            offset += _BUCKET.size
            levels = np.frombuffer(body, dtype="<f4", count=len(config.levels), offset=offset)
            if not ((levels >= 0) & (levels <= 1)).all():
                raise GroupStateDecodeError(
                    "group calibration state holds levels outside [0, 1]; start the group's "
                    "calibration afresh"
                )
            calibrator.levels_used[b] = levels
            calibrator.residuals[b] = np.frombuffer(
                body, dtype="<f2", count=config.window, offset=offset + 4 * len(config.levels)
            )
        return calibrator


def _mean_magnitude(values: F64) -> float:
    finite = values[np.isfinite(values)]
    return float(np.abs(finite).mean()) if finite.size else 0.0

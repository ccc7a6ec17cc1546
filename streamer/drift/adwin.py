"""ADWIN: an adaptive window that drops its older part when the mean has changed."""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from typing import Self

from streamer.drift.errors import DriftConfigError, DriftStateDecodeError
from streamer.drift.sealed import OVERHEAD, fingerprint, seal, unseal

MAGIC = b"AD"
VERSION = 1
_DRIFT = 1
_FIXED = struct.Struct("<qqddB")  # tick, width, total, variance, levels
_BUCKET = struct.Struct("<dd")  # total, variance
#: Smallest number of values on either side of a cut (River's ``min_window_length``).
MIN_WINDOW_LENGTH = 5


@dataclass(frozen=True, slots=True)
class AdwinConfig:
    """Parameters of :class:`Adwin`.

    - ``delta``: confidence of a cut; smaller means fewer false alarms and slower detection.
    - ``clock``: the window is checked for a cut every ``clock`` values (0 mod ``clock``).
    - ``max_buckets``: buckets kept per level of the exponential histogram (River's
      ``max_buckets``; more buckets, finer cut points).
    - ``grace_period``: no check before the window holds more than this many values.
    - ``max_levels``: levels of the histogram (bucket sizes ``1, 2, ... 2**(max_levels-1)``).
      This bounds memory: the window holds at most ``max_buckets * (2**max_levels - 1)`` values
      (5115 with the defaults, 106 days of 30-minute slots); beyond it, the oldest bucket is
      dropped as if a cut had removed it (no drift is reported for that).

    ``max_buckets`` and ``max_levels`` shape the stored state (its fingerprint); the others can
    change without resetting restored detectors.
    """

    delta: float = 0.002
    clock: int = 32
    max_buckets: int = 5
    grace_period: int = 10
    max_levels: int = 10

    def __post_init__(self) -> None:
        if not 0.0 < self.delta < 1.0:
            raise DriftConfigError(f"Adwin delta must lie in (0, 1), got {self.delta}")
        if self.clock < 1:
            raise DriftConfigError(f"Adwin clock must be >= 1, got {self.clock}")
        if not 2 <= self.max_buckets <= 64:
            raise DriftConfigError(f"Adwin max_buckets must lie in 2..64, got {self.max_buckets}")
        if self.grace_period < 2 * MIN_WINDOW_LENGTH:
            raise DriftConfigError(
                f"Adwin grace_period must be >= {2 * MIN_WINDOW_LENGTH} (a cut needs "
                f"{MIN_WINDOW_LENGTH} values on each side), got {self.grace_period}"
            )
        if not 1 <= self.max_levels <= 40:
            raise DriftConfigError(f"Adwin max_levels must lie in 1..40, got {self.max_levels}")

    def fingerprint(self) -> int:
        """Identifies the parameters that shape the stored state."""
        return fingerprint(struct.pack("<II", self.max_buckets, self.max_levels))

    @property
    def max_width(self) -> int:
        """The most values the window can hold."""
        return self.max_buckets * ((1 << self.max_levels) - 1)

    @property
    def max_encoded_size(self) -> int:
        """Upper bound of :meth:`Adwin.to_bytes` length: ``45 + L + 16 * M * L`` bytes."""
        return encoded_size(self.max_levels, self.max_buckets * self.max_levels)


def encoded_size(levels: int, buckets: int) -> int:
    """Length of the bytes of a window with ``levels`` levels and ``buckets`` buckets."""
    return OVERHEAD + _FIXED.size + levels + buckets * _BUCKET.size


_DEFAULTS = AdwinConfig()


class Adwin:
    """ADWIN (Bifet & Gavaldà 2007), following MOA's and River's ``drift.ADWIN``.

    The window is an exponential histogram: level ``i`` holds up to ``max_buckets`` buckets
    of ``2**i`` values (their sum and their variance term). Every ``clock`` values, each split
    of the window into an older part ``W0`` and a newer part ``W1`` (at bucket boundaries, at
    least 5 values each) is tested; when the means differ by more than::

        eps = sqrt(2 m v d) + 2/3 d m,   m = 1/(n0 - 4) + 1/(n1 - 4),
        d = ln(2 ln(n) / delta),         v = variance of the whole window

    ``drift_detected`` is True for this update and the window starts afresh (as River does on
    the update after a drift: a window cut only at bucket boundaries keeps some of the old
    regime and alarms again a ``clock`` later). Non-finite values are skipped.

    State: variable size, at most :attr:`AdwinConfig.max_encoded_size` bytes (855 with the
    defaults): 45 bytes, one byte per level and 16 per bucket.
    """

    __slots__ = ("_config", "_drift", "_levels", "_tick", "_total", "_variance", "_width")

    def __init__(
        self,
        delta: float = _DEFAULTS.delta,
        clock: int = _DEFAULTS.clock,
        max_buckets: int = _DEFAULTS.max_buckets,
        grace_period: int = _DEFAULTS.grace_period,
        max_levels: int = _DEFAULTS.max_levels,
    ) -> None:
        self._config = AdwinConfig(delta, clock, max_buckets, grace_period, max_levels)
        self._drift = False
        self._clear()

    def _clear(self) -> None:
        # _levels[i] holds the buckets of 2**i values, oldest first, as [total, variance] lists.
        self._levels: list[list[list[float]]] = []
        self._tick = 0
        self._width = 0
        self._total = 0.0
        self._variance = 0.0

    # ------------------------------------------------------------------ construction / bytes

    @classmethod
    def from_config(cls, config: AdwinConfig) -> Self:
        """A fresh detector with ``config``'s parameters."""
        return cls(
            config.delta, config.clock, config.max_buckets, config.grace_period, config.max_levels
        )

    def clone(self) -> Self:
        """A fresh detector with this one's parameters."""
        return type(self).from_config(self._config)

    def to_bytes(self) -> bytes:
        """The window as bytes (at most ``config.max_encoded_size``); equal states, equal bytes."""
        parts = [
            _FIXED.pack(self._tick, self._width, self._total, self._variance, len(self._levels)),
            bytes(len(level) for level in self._levels),
        ]
        parts.extend(_BUCKET.pack(t, v) for level in self._levels for t, v in level)
        return seal(
            MAGIC,
            VERSION,
            _DRIFT if self._drift else 0,
            self._config.fingerprint(),
            b"".join(parts),
        )

    @classmethod
    def from_bytes(cls, data: bytes, config: AdwinConfig) -> Self:
        """Read :meth:`to_bytes` output; raises DriftStateDecodeError when it does not fit."""
        flags, body = unseal(
            data,
            magic=MAGIC,
            version=VERSION,
            fingerprint_=config.fingerprint(),
            what="ADWIN state",
            error=DriftStateDecodeError,
        )

        def bad(why: str) -> DriftStateDecodeError:
            return DriftStateDecodeError(
                f"ADWIN state is inconsistent ({why}); start this meter's detector afresh"
            )

        if flags not in (0, _DRIFT) or len(body) < _FIXED.size:
            raise bad(f"flags {flags:#x}, body of {len(body)} bytes")
        tick, width, total, variance, n_levels = _FIXED.unpack_from(body)
        counts = body[_FIXED.size : _FIXED.size + n_levels]
        if n_levels > config.max_levels or len(counts) != n_levels:
            raise bad(f"{n_levels} levels, at most {config.max_levels}")
        if any(c < 1 or c > config.max_buckets for c in counts):
            raise bad(f"bucket counts {list(counts)} outside 1..{config.max_buckets}")
        if len(body) != _FIXED.size + n_levels + sum(counts) * _BUCKET.size:
            raise bad(f"{len(body)} body bytes for bucket counts {list(counts)}")
        if width != sum(c << i for i, c in enumerate(counts)) or tick < 0:
            raise bad(f"width {width} does not match the buckets, or tick {tick} < 0")
        detector = cls.from_config(config)
        offset = _FIXED.size + n_levels
        for count in counts:
            level = []
            for _ in range(count):
                t, v = _BUCKET.unpack_from(body, offset)
                level.append([t, v])
                offset += _BUCKET.size
            detector._levels.append(level)
        detector._tick, detector._width = tick, width
        detector._total, detector._variance = total, variance
        detector._drift = bool(flags & _DRIFT)
        return detector

    def restore(self, data: bytes) -> Self:
        """:meth:`from_bytes` with this detector's parameters."""
        return type(self).from_bytes(data, self._config)

    # ------------------------------------------------------------------ reads

    @property
    def config(self) -> AdwinConfig:
        """The parameters."""
        return self._config

    @property
    def drift_detected(self) -> bool:
        """True on the update that found a drift."""
        return self._drift

    @property
    def n(self) -> int:
        """The window width (values it summarises)."""
        return self._width

    @property
    def width(self) -> int:
        """Same as :attr:`n`."""
        return self._width

    @property
    def mean(self) -> float:
        """Mean of the window (0.0 when empty)."""
        return self._total / self._width if self._width else 0.0

    @property
    def variance(self) -> float:
        """Variance of the window (0.0 when empty)."""
        return max(self._variance / self._width, 0.0) if self._width else 0.0

    @property
    def n_buckets(self) -> int:
        """Buckets held (memory is ``16 * n_buckets`` bytes plus a small constant)."""
        return sum(len(level) for level in self._levels)

    # ------------------------------------------------------------------ updates

    def update(self, x: float) -> Self:
        """Take one value; non-finite values are skipped. Returns ``self``."""
        self._drift = False
        value = float(x)
        if not math.isfinite(value):
            return self
        self._insert(value)
        self._tick += 1
        config = self._config
        if (
            self._tick % config.clock == 0
            and self._width > config.grace_period
            and self._cut_found()
        ):
            self._clear()
            self._drift = True
        return self

    def reset(self) -> None:
        """Back to the fresh state."""
        self._drift = False
        self._clear()

    def _insert(self, value: float) -> None:
        if not self._levels:
            self._levels.append([])
        self._levels[0].append([value, 0.0])
        self._width += 1
        if self._width > 1:
            d = value - self._total / (self._width - 1)
            self._variance += (self._width - 1) * d * d / self._width
        self._total += value
        self._compress()

    def _compress(self) -> None:
        limit = self._config.max_buckets
        level = 0
        while level < len(self._levels) and len(self._levels[level]) > limit:
            if level + 1 == self._config.max_levels:
                self._delete_oldest()  # top level full: the window forgets its oldest bucket
                break
            (t1, v1), (t2, v2) = self._levels[level][0], self._levels[level][1]
            size = float(1 << level)
            u1, u2 = t1 / size, t2 / size
            merged = [t1 + t2, v1 + v2 + size * size * (u1 - u2) ** 2 / (2.0 * size)]
            del self._levels[level][:2]
            if level + 1 == len(self._levels):
                self._levels.append([])
            self._levels[level + 1].append(merged)
            level += 1

    def _delete_oldest(self) -> None:
        """Drop the oldest bucket (and its values from the totals)."""
        top = len(self._levels) - 1
        total, variance = self._levels[top].pop(0)
        if not self._levels[top]:
            self._levels.pop()
        size = 1 << top
        self._width -= size
        if self._width == 0:
            self._total = 0.0
            self._variance = 0.0
            return
        self._total -= total
        u = total / size
        rest_mean = self._total / self._width
        self._variance -= variance + size * self._width * (u - rest_mean) ** 2 / (
            size + self._width
        )

    def _cut_found(self) -> bool:
        """Whether some split of the window into older and newer buckets has distinct means."""
        n0, n1 = 0, self._width
        u0, u1 = 0.0, self._total
        for level in range(len(self._levels) - 1, -1, -1):
            size = 1 << level
            buckets = self._levels[level]
            last = len(buckets) - 1
            for k, (total, _) in enumerate(buckets):
                n0 += size
                n1 -= size
                u0 += total
                u1 -= total
                if level == 0 and k == last:
                    return False  # the newer part would be empty
                if (
                    n0 >= MIN_WINDOW_LENGTH
                    and n1 >= MIN_WINDOW_LENGTH
                    and self._cut(n0, n1, u0 / n0 - u1 / n1)
                ):
                    return True
        return False

    def _cut(self, n0: int, n1: int, mean_difference: float) -> bool:
        width = self._width
        d = math.log(2.0 * math.log(width) / self._config.delta)
        m = 1.0 / (n0 - MIN_WINDOW_LENGTH + 1) + 1.0 / (n1 - MIN_WINDOW_LENGTH + 1)
        v = max(self._variance / width, 0.0)
        eps = math.sqrt(2.0 * m * v * d) + 2.0 / 3.0 * d * m
        return abs(mean_difference) > eps

    def __repr__(self) -> str:
        return (
            f"Adwin(width={self._width}, mean={self.mean:.4g}, buckets={self.n_buckets}, "
            f"config={self._config})"
        )

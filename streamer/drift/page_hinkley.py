"""Page-Hinkley test for a change in the mean of a stream (per meter: forecast residuals)."""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from functools import cached_property
from typing import Literal, Self

from streamer.drift.errors import DriftConfigError, DriftStateDecodeError
from streamer.drift.sealed import fingerprint, seal, unseal

Mode = Literal["both", "up", "down"]

MAGIC = b"PH"
VERSION = 1
_DRIFT = 1
_UP = 2
_DOWN = 4
_VALID_FLAGS = (0, _DRIFT | _UP, _DRIFT | _DOWN)
_BODY = struct.Struct("<qddddd")
#: Length of :meth:`PageHinkley.to_bytes` (8-byte header, 48-byte body, 4-byte CRC).
ENCODED_SIZE = 8 + _BODY.size + 4


@dataclass(frozen=True)
class PageHinkleyConfig:
    """Parameters of :class:`PageHinkley`.

    The defaults are for standardised residuals (about N(0, 1) while the model fits) of
    30-minute slots: measured with ``python -m streamer.drift.calibration``, no alarm on 200
    i.i.d. N(0, 1) streams of 2000 values, alarms on 6 % of AR(1) streams with lag-1
    correlation 0.5 (77 % at 0.7: raise ``threshold`` or feed block means if the residuals are
    that correlated); a shift of the mean by 1 (2) standard deviations is found after a median
    of 44 (15) values, one of 0.5 mostly not at all (``delta`` tolerates it). River's defaults
    (``delta=0.005, threshold=50``) are for another scale.

    - ``delta``: the change in mean that is tolerated, in the unit of the input; the cumulative
      sums drift by ``-delta`` per value while nothing changes. About half the smallest shift
      worth detecting.
    - ``threshold``: alarm when a cumulative sum rose ``threshold`` above its minimum (mode
      ``up``) or fell that far below its maximum (``down``); ``both`` watches both.
    - ``alpha``: fading factor of the cumulative sums (1 = no fading).
    - ``min_instances``: no alarm before this many values since the last reset or drift.

    Only ``delta`` and ``alpha`` shape the stored state (its fingerprint): a new ``threshold``,
    ``min_instances`` or ``mode`` applies to restored detectors without a reset.
    """

    delta: float = 0.5
    threshold: float = 25.0
    alpha: float = 1.0 - 1e-4
    min_instances: int = 48
    mode: Mode = "both"

    def __post_init__(self) -> None:
        if not (math.isfinite(self.delta) and self.delta >= 0.0):
            raise DriftConfigError(f"PageHinkley delta must be finite and >= 0, got {self.delta}")
        if not (math.isfinite(self.threshold) and self.threshold > 0.0):
            raise DriftConfigError(
                f"PageHinkley threshold must be finite and > 0, got {self.threshold}"
            )
        if not 0.0 < self.alpha <= 1.0:
            raise DriftConfigError(
                f"PageHinkley alpha must lie in (0, 1] (1 = no fading), got {self.alpha}"
            )
        if self.min_instances < 1:
            raise DriftConfigError(
                f"PageHinkley min_instances must be >= 1, got {self.min_instances}"
            )
        if self.mode not in ("both", "up", "down"):
            raise DriftConfigError(
                f"PageHinkley mode must be 'both', 'up' or 'down', got {self.mode!r}"
            )

    def fingerprint(self) -> int:
        """Identifies the parameters that shape the stored state (``alpha``, ``delta``)."""
        return self._fingerprint

    @cached_property
    def _fingerprint(self) -> int:
        # computed once per configuration: every detector decoded with it checks it
        return fingerprint(struct.pack("<dd", self.alpha, self.delta))


_DEFAULTS = PageHinkleyConfig()


class PageHinkley:
    """Page-Hinkley change detector (as in River's ``drift.PageHinkley``).

    For each value ``x`` (skipped when not finite)::

        mean = running mean since the last reset
        up   = alpha * up + (x - mean) - delta     # drift "up" when up - min(up) > threshold
        down = alpha * down + (x - mean) + delta   # "down" when max(down) - down > threshold

    tested once ``n >= min_instances``. On a drift the statistics restart from zero (the next
    value is the first of the new regime) and ``drift_detected`` / ``drift_direction`` say so
    until the next update.

    Expected input: a standardised residual, ideally N(0, 1) while the model fits (see
    :func:`streamer.drift.residual.standardized_residual`). State: 60 bytes
    (:data:`ENCODED_SIZE`).

    >>> ph = PageHinkley(delta=0.5, threshold=5.0, min_instances=5)
    >>> [i for i, x in enumerate([0.0] * 10 + [3.0] * 10) if ph.update(x).drift_detected]
    [12]
    >>> ph.drift_direction is None  # cleared by the later updates
    True
    """

    # ``_encoded``: the bytes of the state as it is (None once an update changed it), so that
    # a record rewritten with its detector untouched does not encode it again
    __slots__ = (
        "_config",
        "_direction",
        "_down",
        "_encoded",
        "_max_down",
        "_mean",
        "_min_up",
        "_n",
        "_up",
    )

    def __init__(
        self,
        delta: float = _DEFAULTS.delta,
        threshold: float = _DEFAULTS.threshold,
        alpha: float = _DEFAULTS.alpha,
        min_instances: int = _DEFAULTS.min_instances,
        mode: Mode = _DEFAULTS.mode,
    ) -> None:
        self._config = PageHinkleyConfig(delta, threshold, alpha, min_instances, mode)
        self._direction: Literal["up", "down"] | None = None
        self._clear_statistics()

    def _clear_statistics(self) -> None:
        self._encoded: bytes | None = None
        self._n = 0
        self._mean = 0.0
        self._up = 0.0
        self._down = 0.0
        self._min_up = math.inf
        self._max_down = -math.inf

    # ------------------------------------------------------------------ construction / bytes

    @classmethod
    def from_config(cls, config: PageHinkleyConfig) -> Self:
        """A fresh detector with ``config``'s parameters (``config`` itself, checked when it was
        made: frozen, it is shared by every detector made from it)."""
        detector = cls.__new__(cls)
        detector._config = config
        detector._direction = None
        detector._clear_statistics()
        return detector

    def clone(self) -> Self:
        """A fresh detector with this one's parameters."""
        return type(self).from_config(self._config)

    def to_bytes(self) -> bytes:
        """The state as :data:`ENCODED_SIZE` bytes; equal states give equal bytes."""
        if self._encoded is not None:
            return self._encoded
        flags = _DRIFT if self._direction is not None else 0
        if self._direction == "up":
            flags |= _UP
        elif self._direction == "down":
            flags |= _DOWN
        body = _BODY.pack(self._n, self._mean, self._up, self._down, self._min_up, self._max_down)
        encoded = self._encoded = seal(MAGIC, VERSION, flags, self._config.fingerprint(), body)
        return encoded

    @classmethod
    def from_bytes(cls, data: bytes, config: PageHinkleyConfig) -> Self:
        """Read :meth:`to_bytes` output; raises DriftStateDecodeError when it does not fit."""
        flags, body = unseal(
            data,
            magic=MAGIC,
            version=VERSION,
            fingerprint_=config.fingerprint(),
            what="Page-Hinkley state",
            error=DriftStateDecodeError,
        )
        if len(body) != _BODY.size or flags not in _VALID_FLAGS:
            raise DriftStateDecodeError(
                f"Page-Hinkley state has {len(body) + 8 + 4} bytes and flags {flags:#x}, "
                f"expected {ENCODED_SIZE} bytes; start this meter's detector afresh"
            )
        n, mean, up, down, min_up, max_down = _BODY.unpack(body)
        if n < 0:
            raise DriftStateDecodeError(
                f"Page-Hinkley state holds n={n}; start this meter's detector afresh"
            )
        detector = cls.__new__(cls)  # every slot is set below: no fresh state to build first
        detector._config = config
        detector._n, detector._mean = n, mean
        detector._up, detector._down = up, down
        detector._min_up, detector._max_down = min_up, max_down
        detector._direction = "up" if flags & _UP else "down" if flags & _DOWN else None
        # checked above: these bytes are what to_bytes writes for the state read
        detector._encoded = data if type(data) is bytes else None
        return detector

    def restore(self, data: bytes) -> Self:
        """:meth:`from_bytes` with this detector's parameters."""
        return type(self).from_bytes(data, self._config)

    # ------------------------------------------------------------------ reads

    @property
    def config(self) -> PageHinkleyConfig:
        """The parameters."""
        return self._config

    @property
    def drift_detected(self) -> bool:
        """True on the update that found a drift."""
        return self._direction is not None

    @property
    def drift_direction(self) -> Literal["up", "down"] | None:
        """``"up"`` (mean rose) or ``"down"`` on the update that found a drift, else None."""
        return self._direction

    @property
    def n(self) -> int:
        """Values seen since the last reset or drift."""
        return self._n

    @property
    def mean(self) -> float:
        """Running mean of those values (0.0 when none)."""
        return self._mean

    @property
    def up_statistic(self) -> float:
        """Current ``up - min(up)`` (an alarm when above ``threshold``); 0.0 when empty."""
        return 0.0 if self._n == 0 else self._up - self._min_up

    @property
    def down_statistic(self) -> float:
        """Current ``max(down) - down``; 0.0 when empty."""
        return 0.0 if self._n == 0 else self._max_down - self._down

    # ------------------------------------------------------------------ updates

    def update(self, x: float) -> Self:
        """Take one value; non-finite values are skipped. Returns ``self``."""
        self._direction = None
        self._encoded = None
        value = float(x)
        if not math.isfinite(value):
            return self
        config = self._config
        self._n += 1
        self._mean += (value - self._mean) / self._n
        deviation = value - self._mean
        self._up = config.alpha * self._up + deviation - config.delta
        self._down = config.alpha * self._down + deviation + config.delta
        self._min_up = min(self._min_up, self._up)
        self._max_down = max(self._max_down, self._down)
        if self._n < config.min_instances:
            return self
        if config.mode != "down" and self._up - self._min_up > config.threshold:
            self._clear_statistics()
            self._direction = "up"
        elif config.mode != "up" and self._max_down - self._down > config.threshold:
            self._clear_statistics()
            self._direction = "down"
        return self

    def reset(self) -> None:
        """Back to the fresh state."""
        self._direction = None
        self._clear_statistics()

    def __repr__(self) -> str:
        return (
            f"PageHinkley(n={self._n}, mean={self._mean:.4g}, up={self.up_statistic:.4g}, "
            f"down={self.down_statistic:.4g}, config={self._config})"
        )

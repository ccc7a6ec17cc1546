"""One meter's recent accuracy: exponentially weighted MAE and sMAPE."""

from __future__ import annotations

import math
import struct
import sys
from dataclasses import dataclass
from math import isfinite
from typing import Self

from streamer.accuracy.errors import AccuracyConfigError, AccuracyStateDecodeError
from streamer.drift.sealed import OVERHEAD, fingerprint, seal, unseal

MAGIC = b"RA"
VERSION = 1
_BODY = struct.Struct("<qddd")  # n, weight, sum of absolute errors, sum of sMAPE terms
#: Length of :meth:`RollingAccuracy.to_bytes`.
ENCODED_SIZE = OVERHEAD + _BODY.size
#: Largest finite float: ``0.0 <= v <= _MAX`` is ``isfinite(v) and v >= 0``.
_MAX = sys.float_info.max


def smape_term(actual: float, forecast: float) -> float:
    """``200 |a - f| / (|a| + |f|)`` in percent, 0 when both are 0 (as
    :func:`streamer.evaluate.metrics.smape_terms`)."""
    denominator = abs(actual) + abs(forecast)
    return 0.0 if denominator == 0.0 else 200.0 * abs(actual - forecast) / denominator


#: ``_constants`` by half-life (a handful: one per configuration).
_CONSTANTS: dict[float, tuple[float, float, int]] = {}


def _constants(half_life: float) -> tuple[float, float, int]:
    """The checked ``half_life`` as a float, its decay per pair and the state's fingerprint;
    raises AccuracyConfigError for a half-life that is not a positive number of pairs."""
    known = _CONSTANTS.get(half_life)
    if known is not None:
        return known
    if not (math.isfinite(half_life) and half_life > 0.0):
        raise AccuracyConfigError(f"half_life must be a positive number of pairs, got {half_life}")
    half = float(half_life)
    known = (half, 0.5 ** (1.0 / half), fingerprint(struct.pack("<d", half)))
    if len(_CONSTANTS) < 64:  # (a positive finite float: equal keys are the same double)
        _CONSTANTS[half_life] = known
    return known


@dataclass(frozen=True, slots=True)
class AccuracySnapshot:
    """Weighted means over the recent pairs; NaN before the first pair.

    ``n``: pairs taken since the last reset (unweighted count).
    """

    mae_kwh: float
    smape_pct: float
    n: int


class RollingAccuracy:
    """Exponentially weighted MAE and sMAPE of one meter's forecasts (River's ``update`` /
    ``get``).

    Each pair's weight halves every ``half_life`` later pairs; the means divide by the sum of
    the weights, so they are unbiased from the first pair on::

        S = decay * S + |a - f|,  W = decay * W + 1,  MAE = S / W,  decay = 2 ** (-1 / half_life)

    ``half_life`` counts pairs: fed every match of the default ledger (5 horizons, one slot
    each), the default 240 pairs is about one day of 30-minute slots. State: 44 bytes.

    >>> acc = RollingAccuracy(half_life=1.0)
    >>> acc.update(1.0, 0.0).update(2.0, 2.0).get()
    AccuracySnapshot(mae_kwh=0.3333333333333333, smape_pct=66.66666666666667, n=2)
    """

    # ``_encoded``: the state's bytes as it is (None once an update changed it)
    __slots__ = ("_abs", "_decay", "_encoded", "_half_life", "_n", "_smape", "_weight")

    def __init__(self, half_life: float = 240.0) -> None:
        self._half_life, self._decay, _ = _constants(half_life)
        self._encoded: bytes | None = None
        self._n = 0
        self._weight = 0.0
        self._abs = 0.0
        self._smape = 0.0

    @property
    def half_life(self) -> float:
        """Pairs after which a pair's weight has halved."""
        return self._half_life

    @property
    def n(self) -> int:
        """Pairs taken since the last reset."""
        return self._n

    def update(self, actual: float, forecast: float) -> Self:
        """Take one (actual, forecast) pair in kWh; skipped unless both are finite."""
        a, f = float(actual), float(forecast)
        if not (isfinite(a) and isfinite(f)):
            return self
        d = self._decay
        self._encoded = None
        error = abs(a - f)
        denominator = abs(a) + abs(f)
        self._n += 1
        self._weight = d * self._weight + 1.0
        self._abs = d * self._abs + error
        # smape_term, inlined
        self._smape = d * self._smape + (0.0 if denominator == 0.0 else 200.0 * error / denominator)
        return self

    def get(self) -> AccuracySnapshot:
        """The current weighted MAE (kWh) and sMAPE (percent, 0..200)."""
        if self._n == 0:
            return AccuracySnapshot(math.nan, math.nan, 0)
        return AccuracySnapshot(self._abs / self._weight, self._smape / self._weight, self._n)

    def reset(self) -> None:
        """Forget every pair."""
        self._encoded = None
        self._n = 0
        self._weight = self._abs = self._smape = 0.0

    def clone(self) -> Self:
        """A fresh accumulator with the same half-life."""
        return type(self)(self._half_life)

    def _fingerprint(self) -> int:
        return _constants(self._half_life)[2]

    def to_bytes(self) -> bytes:
        """:data:`ENCODED_SIZE` bytes; equal states give equal bytes."""
        if self._encoded is not None:
            return self._encoded
        body = _BODY.pack(self._n, self._weight, self._abs, self._smape)
        encoded = self._encoded = seal(MAGIC, VERSION, 0, self._fingerprint(), body)
        return encoded

    @classmethod
    def from_bytes(cls, data: bytes, half_life: float = 240.0) -> Self:
        """Read :meth:`to_bytes` output written with the same ``half_life``; raises
        AccuracyStateDecodeError otherwise."""
        half, decay, fingerprint_ = _constants(half_life)
        flags, body = unseal(
            data,
            magic=MAGIC,
            version=VERSION,
            fingerprint_=fingerprint_,
            what="rolling accuracy state",
            error=AccuracyStateDecodeError,
        )
        if flags != 0 or len(body) != _BODY.size:
            raise AccuracyStateDecodeError(
                f"rolling accuracy state has flags {flags:#x} and {len(body)} body bytes; "
                "start this meter's accuracy afresh"
            )
        n, weight, total_abs, total_smape = _BODY.unpack(body)
        if n < 0 or not (
            0.0 <= weight <= _MAX and 0.0 <= total_abs <= _MAX and 0.0 <= total_smape <= _MAX
        ):
            raise AccuracyStateDecodeError(
                "rolling accuracy state holds negative or non-finite sums; start this meter's "
                "accuracy afresh"
            )
        acc = cls.__new__(cls)  # every slot is set below
        acc._half_life, acc._decay = half, decay
        acc._n, acc._weight, acc._abs, acc._smape = n, weight, total_abs, total_smape
        acc._encoded = data if type(data) is bytes else None  # what to_bytes writes for it
        return acc

    def restore(self, data: bytes) -> Self:
        """:meth:`from_bytes` with this accumulator's half-life."""
        return type(self).from_bytes(data, self._half_life)

    def __repr__(self) -> str:
        snap = self.get()
        return (
            f"RollingAccuracy(mae_kwh={snap.mae_kwh:.4g}, smape_pct={snap.smape_pct:.4g}, "
            f"n={snap.n}, half_life={self._half_life})"
        )

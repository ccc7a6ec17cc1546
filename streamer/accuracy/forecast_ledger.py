"""One meter's forecasts for future slots, kept until the actuals arrive."""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from streamer.accuracy.errors import AccuracyInputError, AccuracyStateDecodeError
from streamer.accuracy.ledger_config import VALUES_PER_ENTRY, LedgerConfig
from streamer.accuracy.match import Match
from streamer.drift.sealed import seal, unseal

MAGIC = b"FL"
VERSION = 1
_HAS_HEAD = 1
_HEAD = struct.Struct("<q")
_VALUE_DTYPE = np.dtype("<f2")
_FLOAT16_MAX = float(np.finfo(np.float16).max)
#: The quantile levels a ledger stores, in the column order of ``record``'s ``quantiles``.
LEDGER_LEVELS = (0.1, 0.5, 0.9)


def quantile_columns(levels: Sequence[float], wanted: Sequence[float] = LEDGER_LEVELS) -> list[int]:
    """Column of each ``wanted`` level in a forecast's ``levels`` (to pick p10, p50, p90 out of
    ``ForecastBatch.quantiles_kwh``); raises AccuracyInputError when one is missing."""
    out = []
    for level in wanted:
        found = [i for i, lv in enumerate(levels) if math.isclose(lv, level, abs_tol=1e-9)]
        if not found:
            raise AccuracyInputError(
                f"the forecast has quantile levels {list(levels)}, the ledger needs {level}; "
                "serve a model whose card lists 0.1, 0.5 and 0.9 in quantile_levels"
            )
        out.append(found[0])
    return out


class ForecastLedger:
    """Per meter: for each tracked horizon ``h``, the forecast of each of the next ``h``
    target slots issued ``h`` slots before it; :meth:`match` pairs them with the actual.

    Layout: horizon ``h`` has a ring of ``h`` entries, the forecast for target slot ``t`` at
    position ``t mod h``; an entry is (point, p10, p50, p90) as float16, NaN when empty. With
    forecasts every slot, the ring of ``h`` holds exactly the targets ``head + 1 .. head + h``
    (``head``: the newest origin recorded). Bytes: :attr:`LedgerConfig.encoded_size`, 732 with
    the default horizons (1, 4, 12, 24, 48).

    Order of calls: the actual of a slot must be matched before a forecast from that slot (or
    a later one) is recorded, since recording origin ``o`` drops every entry whose target is
    ``<= o`` (it could no longer be told apart from a later target). That is the worker's
    order: a reading closes its slot (match), then the meter is forecast from it (record). So a
    reading that comes after a later slot already produced a forecast is not matched, and
    neither is a correction (an entry is matched once). With a forecast cadence of ``k``
    slots, a horizon ``h`` entry exists for the targets whose origin was a forecast slot.

    Values are stored as float16 (3 significant digits, clamped to +-65504 kWh).

    >>> ledger = ForecastLedger()
    >>> ledger.record(100, np.arange(1.0, 49.0), np.repeat(np.arange(1.0, 49.0)[:, None], 3, 1))
    5
    >>> [(m.horizon_slots, m.point) for m in ledger.match(101, 1.5)]
    [(1, 1.0)]
    >>> [(m.horizon_slots, m.point) for m in ledger.match(104, 4.0)]
    [(4, 4.0)]
    """

    __slots__ = ("_config", "_head", "_values")

    def __init__(self, config: LedgerConfig | None = None) -> None:
        self._config = config if config is not None else LedgerConfig()
        self._head: int | None = None
        self._values = np.full((self._config.entries, VALUES_PER_ENTRY), np.nan, _VALUE_DTYPE)

    # ------------------------------------------------------------------ bytes

    def to_bytes(self) -> bytes:
        """``config.encoded_size`` bytes; equal ledgers give equal bytes."""
        flags = 0 if self._head is None else _HAS_HEAD
        body = _HEAD.pack(0 if self._head is None else self._head) + self._values.tobytes()
        return seal(MAGIC, VERSION, flags, self._config.fingerprint(), body)

    @classmethod
    def from_bytes(cls, data: bytes, config: LedgerConfig | None = None) -> ForecastLedger:
        """Read :meth:`to_bytes` output; raises AccuracyStateDecodeError when it does not fit."""
        ledger = cls(config)
        cfg = ledger._config
        flags, body = unseal(
            data,
            magic=MAGIC,
            version=VERSION,
            fingerprint_=cfg.fingerprint(),
            what="forecast ledger state",
            error=AccuracyStateDecodeError,
        )
        expected = _HEAD.size + cfg.entries * VALUES_PER_ENTRY * _VALUE_DTYPE.itemsize
        if flags not in (0, _HAS_HEAD) or len(body) != expected:
            raise AccuracyStateDecodeError(
                f"forecast ledger state has flags {flags:#x} and {len(body)} body bytes, "
                f"expected {expected}; start this meter's ledger afresh"
            )
        values = np.frombuffer(body, _VALUE_DTYPE, offset=_HEAD.size).reshape(-1, VALUES_PER_ENTRY)
        empty = np.isnan(values)
        if np.isinf(values).any() or (empty.any(axis=1) != empty.all(axis=1)).any():
            raise AccuracyStateDecodeError(
                "forecast ledger state holds partial or infinite entries; start this meter's "
                "ledger afresh"
            )
        if flags == 0 and not empty.all():
            raise AccuracyStateDecodeError(
                "forecast ledger state has entries but no head slot; start this meter's ledger "
                "afresh"
            )
        ledger._values = values.copy()
        ledger._head = _HEAD.unpack_from(body)[0] if flags else None
        return ledger

    # ------------------------------------------------------------------ reads

    @property
    def config(self) -> LedgerConfig:
        """The horizons kept."""
        return self._config

    @property
    def head_origin_slot(self) -> int | None:
        """The newest origin slot recorded (None before the first forecast)."""
        return self._head

    @property
    def pending(self) -> int:
        """Forecast entries waiting for their actual."""
        return int(np.count_nonzero(~np.isnan(self._values[:, 0])))

    # ------------------------------------------------------------------ updates

    def record(self, origin_slot: int, point: npt.ArrayLike, quantiles: npt.ArrayLike) -> int:
        """Keep the forecast issued at ``origin_slot`` (the newest history slot).

        ``point``: ``(H,)`` kWh for slots ``origin + 1 .. origin + H``; ``quantiles``:
        ``(H, 3)`` p10, p50, p90 (pick them with :func:`quantile_columns`). Horizons beyond
        ``H`` are not kept; neither is an entry with a non-finite value. An origin older than
        the newest recorded is ignored (a stale or replayed forecast); the same origin again
        replaces its entries. Returns the number of entries kept.
        """
        origin = int(origin_slot)
        pt = np.asarray(point, dtype=np.float64)
        qs = np.asarray(quantiles, dtype=np.float64)
        if pt.ndim != 1 or qs.shape != (pt.size, 3):
            raise AccuracyInputError(
                f"point must be (H,) and quantiles (H, 3) (p10, p50, p90), got {pt.shape} and "
                f"{qs.shape}"
            )
        head = self._head
        if head is not None and origin < head:
            return 0
        self._expire(origin)
        self._head = origin
        hs, offsets, _, _ = self._config.row_arrays
        usable = hs <= pt.size
        if not usable.all():
            hs, offsets = hs[usable], offsets[usable]
        entries = np.empty((hs.size, VALUES_PER_ENTRY), dtype=np.float64)
        entries[:, 0] = pt[hs - 1]
        entries[:, 1:] = qs[hs - 1]
        finite = np.isfinite(entries).all(axis=1)
        # + 0.0 turns -0.0 into 0.0 so that equal forecasts give equal bytes.
        entries = np.clip(entries, -_FLOAT16_MAX, _FLOAT16_MAX) + 0.0
        entries[~finite] = np.nan
        self._values[offsets + origin % hs] = entries
        return int(np.count_nonzero(finite))

    def _expire(self, origin: int) -> None:
        """Drop the entries for targets ``head + 1 .. origin`` (see the class docstring)."""
        head = self._head
        if head is None or origin <= head:
            return
        gap = origin - head
        _, _, row_h, position = self._config.row_arrays
        # a row at ring position p of horizon h holds targets t = p (mod h); one of
        # head + 1 .. head + gap has that residue when (p - head - 1) mod h < gap
        self._values[(position - (head + 1)) % row_h < gap] = np.nan

    def match(self, slot: int, actual_kwh: float) -> list[Match]:
        """The kept forecasts for target ``slot`` paired with ``actual_kwh``, by increasing
        horizon; each entry is returned once and then dropped. Empty when the actual is not
        finite (nothing is dropped then)."""
        head = self._head
        actual = float(actual_kwh)
        if head is None or not math.isfinite(actual):
            return []
        target = int(slot)
        hs, offsets, _, _ = self._config.row_arrays
        due = (hs >= target - head) & (target > head)
        if not due.any():
            return []
        rows = (offsets + target % hs)[due]
        values = self._values[rows]
        full = ~np.isnan(values[:, 0])
        out = [
            Match(int(h), float(v[0]), float(v[1]), float(v[2]), float(v[3]), actual)
            for h, v in zip(hs[due][full].tolist(), values[full].tolist(), strict=True)
        ]
        self._values[rows[full]] = np.nan
        return out

    def __repr__(self) -> str:
        return (
            f"ForecastLedger(head_origin_slot={self._head}, pending={self.pending}, "
            f"horizons={self._config.horizons})"
        )
